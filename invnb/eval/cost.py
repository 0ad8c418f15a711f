"""What a layer-wise inverse costs, counted in passes of its own model.

The unit is the *forward-equivalent*: the inverse's wall time on a batch
divided by the wall time of the model's forward pass on the same batch, on
the same device with the same number of threads, both measured in one run.
A ratio of two timings taken side by side depends far less on the machine
than either timing: "50 forward-equivalents" means that inverting a batch
takes as long as 50 forward passes of it, whatever the hardware.

`measure_inverse_cost` times one setting on one batch and breaks the time
down by solved layer (from `invnb.inverse.InverseResult.stats`) and, for
``mask_weight="auto"``, by the candidates each image went through.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable, Optional

import torch

__all__ = ["LayerCost", "InverseCost", "time_forward", "measure_inverse_cost", "layer_costs", "environment",
           "cost_markdown"]


@dataclass
class LayerCost:
    """What one solved layer cost on a batch.

    Attributes
    ----------
    index, name : int, str
        The layer's position and name in the inverse's `invnb.layers.LayerStack`.
    iterations_mean, iterations_max : float, int
        Solver iterations per image of the kept solution (with ``mask_weight="auto"``:
        of the chosen candidate's walk), mean and maximum over the batch.
    iterations_total_mean : float
        Iterations per image summed over every walk that solved this layer for
        it (all candidates tried with ``"auto"``; equal to ``iterations_mean``
        for a fixed weight).
    seconds : float
        Wall seconds spent solving this layer for the whole batch, all walks together.
    """

    index: int
    name: str
    iterations_mean: float
    iterations_max: int
    iterations_total_mean: float
    seconds: float


@dataclass
class InverseCost:
    """One setting's cost on one batch (see `measure_inverse_cost`).

    Attributes
    ----------
    setting : str
        A label for the setting measured.
    batch_size : int
        Images in the batch.
    forward_seconds, inverse_seconds : float
        Wall seconds of the model's forward pass on the batch and of one
        `invert` of the batch (medians of their repeats).
    forward_cpu_seconds, inverse_cpu_seconds : float
        The same as CPU time of this process (all its threads): on a machine
        shared with other jobs it is less disturbed than wall time.
    layers : list of LayerCost
        Per solved layer, top first.
    candidates_tried : list of int or None
        Per image, how many ``mask_weight`` candidates were walked (None when
        the result does not say, e.g. a fixed weight).
    mask_weight : list of float or None
        Per image, the weight used.
    inverse_images_timed : int or None
        When the inverse was timed on only the first images of the batch and
        its times scaled to the batch (see `measure_inverse_cost`), how many;
        `layers`, `candidates_tried` and `mask_weight` then cover those images.
    """

    setting: str
    batch_size: int
    forward_seconds: float
    inverse_seconds: float
    forward_cpu_seconds: float
    inverse_cpu_seconds: float
    layers: list
    candidates_tried: Optional[list] = None
    mask_weight: Optional[list] = None
    inverse_images_timed: Optional[int] = None

    @property
    def forward_equivalents(self) -> float:
        """Inverse wall time over forward wall time on the same batch (per image, as both cover the batch)."""
        return self.inverse_seconds / self.forward_seconds

    @property
    def forward_equivalents_cpu(self) -> float:
        """The same ratio of CPU times."""
        return self.inverse_cpu_seconds / self.forward_cpu_seconds

    def as_dict(self) -> dict:
        """A JSON-ready dict: every field, the two ratios and seconds per image."""
        out = asdict(self)
        out.update(forward_equivalents=self.forward_equivalents,
                   forward_equivalents_cpu=self.forward_equivalents_cpu,
                   inverse_seconds_per_image=self.inverse_seconds / self.batch_size,
                   forward_seconds_per_image=self.forward_seconds / self.batch_size)
        if self.candidates_tried is not None:
            out["candidates_tried_mean"] = sum(self.candidates_tried) / len(self.candidates_tried)
        return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_forward(model: torch.nn.Module, x: torch.Tensor, repeats: int = 5,
                 clock: Callable[[], float] = time.perf_counter) -> tuple:
    """Wall and CPU seconds of ``model(x)`` (no gradients), once per repeat.

    Parameters
    ----------
    model : torch.nn.Module
        The model, on `x`'s device.
    x : torch.Tensor
        The batch ``(N, ...)``.
    repeats : int
        Timed passes (>= 1).
    clock : callable
        Wall clock (seconds); `time.perf_counter` unless a test substitutes one.

    Returns
    -------
    tuple of list of float
        ``(wall, cpu)``, `repeats` values each.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    wall, cpu = [], []
    with torch.no_grad():
        for _ in range(repeats):
            _sync(x.device)
            t0, c0 = clock(), time.process_time()
            model(x)
            _sync(x.device)
            wall.append(clock() - t0)
            cpu.append(time.process_time() - c0)
    return wall, cpu


def layer_costs(result) -> list:
    """`LayerCost` of every solved layer of an `invnb.inverse.InverseResult`, top first."""
    out = []
    for s in result.stats:
        it = s.iterations.double()
        total = getattr(s, "iterations_total", None)
        total = it if total is None else total.double()
        out.append(LayerCost(int(s.index), str(s.name), float(it.mean()), int(s.iterations.max()),
                             float(total.mean()), float(s.seconds)))
    return out


def measure_inverse_cost(inverse, x: torch.Tensor, target=None, *, setting: str = "", forward_repeats: int = 5,
                         inverse_repeats: int = 1, warmup: bool = True, inverse_images: Optional[int] = None,
                         clock: Callable[[], float] = time.perf_counter) -> InverseCost:
    """Time `invert` of a batch beside the model's forward pass on it.

    The forward pass is timed `forward_repeats` times before the inverse and
    as many times after each of its `inverse_repeats` runs; the medians of
    the forward and of the inverse timings count, so that a change of the
    machine's load during the run shows in both. With `warmup`, one forward
    pass and one inverse of the first image run untimed first: they fill the
    caches a long run fills once (the inverse's operator norms, its check of
    the model), which a cost per image should not count.

    Parameters
    ----------
    inverse : invnb.inverse.LayerwiseInverse
        The setting to time; its ``model`` is the forward pass timed.
    x : torch.Tensor
        The batch ``(N, C, H, W)``, on the model's device.
    target : optional
        As `LayerwiseInverse.invert` (None: the predicted classes).
    setting : str
        Label stored in the result.
    forward_repeats : int
        Forward passes timed before the inverse and after each of its runs (>= 1).
    inverse_repeats : int
        Timed runs of the inverse (>= 1); the breakdown is the last run's.
    warmup : bool
        Run the untimed warm-up first.
    inverse_images : int, optional
        Time the inverse on the first `inverse_images` images only and scale
        its times by ``N / inverse_images``; the forward pass is still timed
        on the whole batch. Only for a setting that inverts one image at a
        time (``batch_size=1``, as the paper setting), whose time is the sum
        of its images'. None (default): the whole batch.
    clock : callable
        Wall clock; `time.perf_counter` unless a test substitutes one.

    Returns
    -------
    InverseCost
        ``forward_equivalents`` is ``inverse_seconds / forward_seconds``.

    Examples
    --------
    >>> from invnb.inverse import LayerwiseInverse
    >>> cost = measure_inverse_cost(LayerwiseInverse(model), x, setting="default")
    >>> cost.forward_equivalents > 1, cost.layers[0].name
    (True, 'classifier.6')
    """
    model = inverse.model
    n = int(x.shape[0])
    k = n if inverse_images is None else int(inverse_images)
    if not 1 <= k <= n:
        raise ValueError(f"inverse_images must lie in 1..{n} (the batch), got {inverse_images!r}")
    if inverse_repeats < 1:
        raise ValueError(f"inverse_repeats must be >= 1, got {inverse_repeats}")
    if warmup:
        with torch.no_grad():
            model(x)
        inverse.invert(x[:1], _first(target, 1, n))
    wall, cpu = time_forward(model, x, forward_repeats, clock)
    inv_wall, inv_cpu = [], []
    for _ in range(inverse_repeats):
        _sync(x.device)
        t0, c0 = clock(), time.process_time()
        res = inverse.invert(x[:k], _first(target, k, n))
        _sync(x.device)
        inv_wall.append((clock() - t0) * n / k)
        inv_cpu.append((time.process_time() - c0) * n / k)
        w, c = time_forward(model, x, forward_repeats, clock)
        wall, cpu = wall + w, cpu + c
    tried = getattr(res, "candidates_tried", None)
    return InverseCost(
        setting=setting, batch_size=n,
        forward_seconds=statistics.median(wall), inverse_seconds=statistics.median(inv_wall),
        forward_cpu_seconds=statistics.median(cpu), inverse_cpu_seconds=statistics.median(inv_cpu),
        layers=layer_costs(res),
        candidates_tried=None if tried is None else [int(v) for v in tried.tolist()],
        mask_weight=None if res.mask_weight is None else [float(v) for v in res.mask_weight.tolist()],
        inverse_images_timed=None if k == n else k)


def _first(target, k: int, n: int):
    """The target of the first `k` of `n` images (a per-image target is sliced; None or one class is kept)."""
    if isinstance(target, torch.Tensor):
        return target[:k] if target.dim() > 0 and target.shape[0] == n else target
    if isinstance(target, (list, tuple)):
        return target[:k]
    return target


def environment(device: torch.device | str = "cpu") -> dict:
    """Where a measurement ran: device name, torch version, threads, git commit of invnb's source."""
    from invnb.runs.provenance import git_commit

    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo") as fh:
                name = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), name)
        except OSError:
            pass
    return {"device": str(device), "device_name": name, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "git_commit": git_commit()}


def cost_markdown(run: dict) -> str:
    """A markdown table of a forward-equivalents run, with its command and environment under it.

    Parameters
    ----------
    run : dict
        What ``benchmarks/bench_forward_equivalents.py --out`` writes: ``rows`` (each an
        `InverseCost.as_dict` with ``model`` and ``size``), ``command`` and ``environment``.

    Returns
    -------
    str
        One row per model, size, setting and batch size: forward-equivalents (wall and CPU time),
        seconds per image of the inverse, milliseconds per image of the forward pass, and the
        candidates of ``mask_weight="auto"`` walked per image.

    Examples
    --------
    >>> row = dict(model="m", size=64, setting="default", batch_size=2, forward_equivalents=30.0,
    ...            forward_equivalents_cpu=31.0, inverse_seconds_per_image=0.05, forward_seconds_per_image=0.002)
    >>> env = {"device": "cpu", "device_name": "x", "torch": "2", "threads": 1, "git_commit": "abc"}
    >>> print(cost_markdown({"rows": [row], "command": "python b.py", "environment": env}).splitlines()[2])
    | m | 64 | default | 2 | 30.0 | 31.0 | 0.050 | 2.00 | - |
    """
    lines = ["| model | px | setting | batch | forward-equivalents | (CPU time) | inverse s/image | "
             "forward ms/image | candidates/image |",
             "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in run["rows"]:
        cand = r.get("candidates_tried_mean")
        timed = r.get("inverse_images_timed")
        setting = r["setting"] + (f" (timed on {timed} of {r['batch_size']})" if timed else "")
        lines.append(f"| {r['model']} | {r['size']} | {setting} | {r['batch_size']} | "
                     f"{r['forward_equivalents']:.1f} | {r['forward_equivalents_cpu']:.1f} | "
                     f"{r['inverse_seconds_per_image']:.3f} | {r['forward_seconds_per_image'] * 1e3:.2f} | "
                     f"{'-' if cand is None else f'{cand:.2f}'} |")
    env = run["environment"]
    lines += ["", f"Command: `{run['command']}`", "",
              f"Device: {env['device']} ({env['device_name']}), {env['threads']} torch thread(s), torch "
              f"{env['torch']}, commit `{str(env.get('git_commit'))[:7]}`."]
    return "\n".join(lines) + "\n"
