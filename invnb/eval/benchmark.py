"""The synthetic benchmark: every attribution method on held-out shapes, scored by the same rules.

Each method of :func:`invnb.attribution.available_methods` explains the class
an embedded model (:data:`invnb.models.EMBEDDED_MODELS`: the SmallVGG or the
SmallResNet, :attr:`BenchmarkConfig.model`) predicts on held-out images of
:mod:`invnb.datasets.synthetic`
(batch ``b`` is ``make_shapes(batch_size, seed=HELD_OUT_SEED + b)``), and every
map is scored identically (:func:`score_map`): deletion / insertion (RISE),
pointing game and mass in the object mask, the method's own kept input where it
has one (:attr:`invnb.attribution.Explanation.kept`), the map's soft and hard
kept inputs, and the paper's trade-off sweeps (:mod:`invnb.eval.tradeoff`).
Row ``object_mask`` is a reference: the object's ground-truth mask used as the map.
Rows ``<method>.<kind>`` are maps of another kind made from a method's own kept
input (:func:`invnb.inverse.attribution_map`); rows ``<method>.pp`` are a method's own map
post-processed as the default inverse's (clipped, weighted, filled:
:func:`invnb.inverse.postprocess_map`), so that every method gets the same post-processing.

The work is split into items (one row on one batch, its trade-off sweeps, the
inverse's ``mask_weight`` sweep, a timing), each computed once and stored
(:class:`invnb.runs.ResultStore`), serially or on a Dask cluster
(:func:`invnb.runs.run_items` with :func:`benchmark_task`). :func:`run_benchmark`
runs them all and returns the summary (:mod:`invnb.eval.benchmark_report`).

Examples
--------
>>> config = BenchmarkConfig(n_images=4, batch_size=2)                       # doctest: +SKIP
>>> summary = run_benchmark(config, "runs/tiny", methods=["saliency", "inverse"])  # doctest: +SKIP
>>> summary.rows[0]["pointing_game"]                                          # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor

from invnb._utils.classes import predicted_classes
from invnb._utils.precision import full_precision
from invnb.attribution.base import available_methods, make_method
from invnb.datasets.download import sha256sum
from invnb.datasets.synthetic import HELD_OUT_SEED, make_shapes, normalize
from invnb.eval.causal import TIE_ORDERS, deletion_curve, insertion_curve
from invnb.eval.localisation import POINTING_RTOL, mass_in_mask, pointing_game
from invnb.eval.tradeoff import (
    DEFAULT_EXPONENTS,
    DEFAULT_FRACTIONS,
    MAP_KINDS,
    TRADEOFF_MAX_AMOUNT,
    keep_soft,
    keep_top_fraction,
    kept_input_scores,
)
from invnb.inverse.maps import attribution_map, postprocess_map
from invnb.inverse.settings import (
    DEFAULT_MAP_CLIP,
    DEFAULT_MAP_FILL_SIGMA,
    DEFAULT_MAP_SIGMA,
    DEFAULT_MAP_SMOOTHING,
)
from invnb.runs.store import ResultStore
from invnb.runs.tasks import ItemTask, run_items, worker_cached

__all__ = ["BenchmarkConfig", "HARD_FRACTION", "OBJECT_MASK", "TIE_SEED", "TOPK", "benchmark_methods",
           "benchmark_item", "benchmark_keys", "benchmark_task", "run_benchmark", "score_map", "split_row"]

#: The reference row: the object's ground-truth mask used as the map.
OBJECT_MASK = "object_mask"
#: Ranks of re-identification.
TOPK = (1, 5)
#: Seed of the random tie orders shared by every method.
TIE_SEED = 0
#: Share of pixels kept by the ``hard20`` columns.
HARD_FRACTION = 0.2
#: Default ``mask_weight`` sweep of the inverse's own kept input.
MASK_WEIGHTS = (0.25, 0.5, 1.0, 2.0, 4.0)
#: The derived row ``<method>.pp``: the method's map post-processed as the default inverse's.
POSTPROCESSED = "pp"
#: That post-processing: the default setting's clip, weighting and fill (:func:`invnb.inverse.postprocess_map`).
PP_OPTIONS = {"sigma": DEFAULT_MAP_SIGMA, "smoothing": DEFAULT_MAP_SMOOTHING, "fill_sigma": DEFAULT_MAP_FILL_SIGMA,
              "clip": DEFAULT_MAP_CLIP}


@dataclass(frozen=True)
class BenchmarkConfig:
    """What the benchmark's numbers depend on (and how to split the work).

    Parameters
    ----------
    n_images, batch_size : int
        Held-out images, and images per stored item.
    step : int
        Pixels per deletion / insertion step (128: 32 steps at 64x64).
    rise_masks, ig_steps, occlusion_window, occlusion_stride, ep_steps : int
        The baselines' settings (RISE masks, integrated-gradients steps, occlusion patch and
        stride, extremal perturbation's Adam steps).
    tie_orders : int
        Seeded random tie orders averaged in deletion / insertion.
    tradeoff_images : int, optional
        Images that enter the trade-off sweeps (None: all).
    paper_batched : bool
        Run ``inverse_paper`` on a whole item at once (its solver is per image: only
        rounding differs; for GPUs).
    checkpoint : str, optional
        The embedded model's state dict (None: the bundled one).
    device : str
        ``"cpu"`` or ``"cuda"``.
    model : {"smallvgg", "smallresnet"}
        The embedded model explained (:func:`invnb.models.load_embedded`); part of the
        protocol, so that items of one model are never reused for another.
    """

    n_images: int = 500
    batch_size: int = 50
    step: int = 128
    rise_masks: int = 1000
    ig_steps: int = 50
    occlusion_window: int = 8
    occlusion_stride: int = 4
    ep_steps: int = 40
    tie_orders: int = TIE_ORDERS
    tradeoff_images: int | None = None
    paper_batched: bool = False
    checkpoint: str | None = None
    device: str = "cpu"
    model: str = "smallvgg"

    def __post_init__(self):
        from invnb.models.embedded import EMBEDDED_MODELS

        if self.model not in EMBEDDED_MODELS:
            raise ValueError(f"BenchmarkConfig.model must be one of {', '.join(EMBEDDED_MODELS)}, got {self.model!r}")
        for name in ("n_images", "batch_size", "step", "rise_masks", "ig_steps", "occlusion_window",
                     "occlusion_stride", "ep_steps", "tie_orders"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"BenchmarkConfig.{name} must be an integer >= 1, got {value!r}")
        if self.tradeoff_images is not None and self.tradeoff_images < 0:
            raise ValueError(f"tradeoff_images must be None (all) or >= 0, got {self.tradeoff_images}")

    @property
    def n_batches(self) -> int:
        return math.ceil(self.n_images / self.batch_size)

    def batch_len(self, b: int) -> int:
        """Images in batch `b`."""
        return min(self.batch_size, self.n_images - b * self.batch_size)

    def tradeoff_count(self, b: int) -> int:
        """Images of batch `b` that enter the trade-off sweeps."""
        total = self.n_images if self.tradeoff_images is None else min(self.tradeoff_images, self.n_images)
        return max(0, min(self.batch_len(b), total - b * self.batch_size))

    def method_kwargs(self, name: str) -> dict:
        """Keyword arguments of :func:`invnb.attribution.make_method` for method `name`."""
        return {
            "rise": {"n_masks": self.rise_masks, "seed": 0, "batch_size": 100},
            "integrated_gradients": {"n_steps": self.ig_steps},
            "occlusion": {"window": self.occlusion_window, "stride": self.occlusion_stride},
            "random": {"seed": 0},
            "inverse_paper": {"batch_size": None} if self.paper_batched else {},
            "extremal_perturbation": {"steps": self.ep_steps},
        }.get(name, {})

    def protocol(self) -> dict:
        """The stored configuration: items computed under another protocol are never reused."""
        from invnb.models.embedded import embedded_checkpoint

        return {
            "model": self.model, "checkpoint_sha256": sha256sum(self.checkpoint or embedded_checkpoint(self.model)),
            "batch_size": self.batch_size,
            "seed_base": HELD_OUT_SEED, "step": self.step, "rise_masks": self.rise_masks, "ig_steps": self.ig_steps,
            "occlusion_window": self.occlusion_window, "occlusion_stride": self.occlusion_stride,
            "tradeoff_images": self.tradeoff_images, "fractions": list(DEFAULT_FRACTIONS),
            "exponents": list(DEFAULT_EXPONENTS), "tie_orders": self.tie_orders, "tie_seed": TIE_SEED,
            "pointing_rtol": POINTING_RTOL, "hard_fraction": HARD_FRACTION,
            "tradeoff_max_amount": TRADEOFF_MAX_AMOUNT, "ep_steps": self.ep_steps,
        }


def benchmark_methods() -> list[str]:
    """Every row the benchmark can compute: the registered methods, then the object mask."""
    return available_methods() + [OBJECT_MASK]


def split_row(row: str) -> tuple[str, str | None]:
    """``"inverse.abs"`` -> ``("inverse", "abs")``; a method's own map -> ``(name, None)``."""
    base, _, kind = row.partition(".")
    return base, kind or None


def _model(name: str, checkpoint: str | None, device: str):
    from invnb.models.embedded import load_embedded

    return load_embedded(name, checkpoint, device=torch.device(device))


def _batch(config: BenchmarkConfig, b: int):
    data = make_shapes(config.batch_len(b), seed=HELD_OUT_SEED + b).to(torch.device(config.device))
    return data, normalize(data.images)


def score_map(model, data, x: Tensor, classes: Tensor, maps: Tensor, kept: Tensor | None, failed: Tensor,
              config: BenchmarkConfig) -> dict:
    """Every per-image score of one map (and of its method's own kept input) under the shared rules.

    Parameters
    ----------
    model : nn.Module
        The classifier explained.
    data : invnb.datasets.ShapesData
        The batch (masks, distractor masks, labels).
    x : Tensor
        ``(N, C, H, W)`` normalised images; `classes` ``(N,)`` the explained classes.
    maps : Tensor
        ``(N, H, W)`` the map; NaN counts as 0.
    kept : Tensor or None
        ``(N, C, H, W)`` the method's own kept input, if it has one.
    failed : Tensor
        ``(N,)`` bool; a failed image's own kept input counts as not re-identified.
    config : BenchmarkConfig

    Returns
    -------
    dict
        Per-image tensors: ``deletion_auc`` (lower is better), ``insertion_auc``, ``pointing_game``,
        ``pointing_game_strict``, ``mass_in_mask``, ``mass_on_distractor`` (NaN without a
        distractor; lower is better), ``own_*`` (NaN without a kept input), ``soft_*``,
        ``hard20_*``, the curves' scores, and the map itself (``attributions``).
    """
    n = len(x)
    nan = torch.full((n,), float("nan"), device=x.device)
    maps = torch.nan_to_num(maps.float(), nan=0.0).to(x.device)
    curve_kw = {"target": classes, "step": config.step, "tie_orders": config.tie_orders, "seed": TIE_SEED}
    dele = deletion_curve(model, x, maps, **curve_kw)
    ins = insertion_curve(model, x, maps, **curve_kw)
    failed = failed.to(x.device)
    out = {"attributions": maps, "deletion_scores": dele.scores, "insertion_scores": ins.scores,
           "deletion_auc": dele.auc, "insertion_auc": ins.auc}
    if kept is None:
        out.update(own_amount=nan, own_reid_top1=nan, own_reid_top5=nan)
    else:
        own = kept_input_scores(model, kept.to(x.device), x, classes, TOPK)
        out.update(own_amount=own["amount"], own_reid_top1=(own["top1"] & ~failed).float(),
                   own_reid_top5=(own["top5"] & ~failed).float())
    soft = kept_input_scores(model, keep_soft(x, maps), x, classes, TOPK)
    hard = kept_input_scores(model, keep_top_fraction(x, maps, HARD_FRACTION, seed=TIE_SEED), x, classes, TOPK)
    dis = data.has_distractor.to(x.device)
    out.update(
        soft_amount=soft["amount"], soft_reid_top1=soft["top1"].float(),
        hard20_amount=hard["amount"], hard20_reid_top1=hard["top1"].float(),
        pointing_game=pointing_game(maps, data.masks, rtol=POINTING_RTOL),
        pointing_game_strict=pointing_game(maps, data.masks),
        mass_in_mask=mass_in_mask(maps, data.masks),
        mass_on_distractor=torch.where(dis, mass_in_mask(maps, data.distractor_masks), nan),
        has_distractor=dis, failed=failed, classes=classes, labels=data.labels,
    )
    return out


def _method(name: str, model, config: BenchmarkConfig, b: int = 0):
    kwargs = config.method_kwargs(name)
    if name == "random":  # each batch's noise from a seed of its own: an item depends on nothing else
        kwargs = {**kwargs, "seed": b}
    return make_method(name, model, **kwargs)


def _evaluate(row: str, b: int, config: BenchmarkConfig, model) -> dict:
    """Map, curves and scores of one method (or the object mask) on batch `b`."""
    data, x = _batch(config, b)
    classes = predicted_classes(model, x)
    start = time.perf_counter()
    if row == OBJECT_MASK:
        maps, kept, failed, extra = data.masks.to(x.dtype), None, torch.zeros(len(x), dtype=torch.bool), {}
        postprocessed = True  # a reference, not a method: never post-processed
    else:
        exp = _method(row, model, config, b).explain(x, target=classes)
        maps, kept, failed, extra = exp.attribution, exp.kept, exp.failed, exp.extra
        postprocessed = exp.postprocessed
    if x.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    out = score_map(model, data, x, classes, maps, kept, failed, config)
    if kept is not None:
        out["kept"] = kept  # the other map kinds of an inverse are made from it
    obj = kept_input_scores(model, x * data.masks.unsqueeze(1).to(x.dtype), x, classes, TOPK)
    out.update(extra, object_amount=obj["amount"], object_reid_top1=obj["top1"].float(), seconds=seconds, n=len(x),
               postprocessed=postprocessed)
    return out


def _evaluate_kind(row: str, b: int, config: BenchmarkConfig, model, store: ResultStore) -> dict:
    """A map derived from a method's stored item (no new explanation): another kind of map made from
    its kept input (``<method>.<kind>``), or its own map post-processed as the default inverse's
    (``<method>.pp``)."""
    base, kind = split_row(row)
    data, x = _batch(config, b)
    rec = store.load(f"{base}-b{b:03d}")
    device = x.device
    if kind == POSTPROCESSED:
        classes = torch.from_numpy(rec.arrays["classes"]).to(device)
        failed = torch.from_numpy(rec.arrays["failed"]).to(device)
        kept = torch.from_numpy(rec.arrays["kept"]).to(device) if "kept" in rec.arrays else None
        maps = postprocess_map(torch.from_numpy(rec.arrays["attributions"]).to(device), **PP_OPTIONS)
        out = score_map(model, data, x, classes, maps, kept, failed, config)
        out.update({k: rec.arrays[k] for k in ("object_amount", "object_reid_top1")})
        out.update(same_as_own_map=False, seconds=rec.scalars["seconds"], n=len(x))
        return out
    if "kept" not in rec.arrays:
        raise ValueError(f"row {row!r}: method {base!r} has no kept input to make a {kind!r} map from")
    kept = torch.from_numpy(rec.arrays["kept"]).to(device)
    classes = torch.from_numpy(rec.arrays["classes"]).to(device)
    maps = attribution_map(kept, x, kind)
    if bool(torch.allclose(maps, torch.from_numpy(rec.arrays["attributions"]).to(device), atol=1e-6)):
        return {"same_as_own_map": True, "seconds": rec.scalars["seconds"], "n": len(x)}
    failed = torch.from_numpy(rec.arrays["failed"]).to(device)
    out = score_map(model, data, x, classes, maps, kept, failed, config)
    out.update({k: rec.arrays[k] for k in ("object_amount", "object_reid_top1")})
    out.update(same_as_own_map=False, seconds=rec.scalars["seconds"], n=len(x))
    return out


def _tradeoff_maps(row: str, b: int, config: BenchmarkConfig, model, store: ResultStore) -> dict:
    """Hard top-k and soft-mask sweeps of a stored map on batch `b`."""
    _, x = _batch(config, b)
    rec = store.load(f"{row}-b{b:03d}")
    maps = torch.from_numpy(rec.arrays["attributions"]).to(x.device)
    classes = torch.from_numpy(rec.arrays["classes"]).to(x.device)
    m = config.tradeoff_count(b)
    x, maps, classes = x[:m], maps[:m], classes[:m]
    out = {}
    for mode, params in (("hard", DEFAULT_FRACTIONS), ("soft", DEFAULT_EXPONENTS)):
        if mode == "soft" and row == "uniform":
            continue  # x * 1 = x: the amount of the unmasked image is undefined
        if mode == "hard":
            kept = [keep_top_fraction(x, maps, p, seed=TIE_SEED) for p in params]
        else:
            kept = [keep_soft(x, maps, p) for p in params]
        scores = [kept_input_scores(model, k, x, classes, TOPK) for k in kept]
        out[f"{mode}_amount"] = torch.stack([s["amount"] for s in scores])
        for k in TOPK:
            out[f"{mode}_top{k}"] = torch.stack([s[f"top{k}"] for s in scores])
    return out


def _tradeoff_inverse(weight: float, b: int, config: BenchmarkConfig, model) -> dict:
    """The default inverse's own kept input at a fixed ``mask_weight`` on batch `b`."""
    from invnb.inverse.engine import LayerwiseInverse

    _, x = _batch(config, b)
    x = x[: config.tradeoff_count(b)]
    classes = predicted_classes(model, x)
    res = LayerwiseInverse(model, mask_weight=weight).invert(x, target=classes)
    s = kept_input_scores(model, res.input, x, classes, TOPK)
    failed = res.failed.to(x.device)
    return {"amount": s["amount"], "failed": failed, **{f"top{k}": s[f"top{k}"] & ~failed for k in TOPK}}


def _time(method: str, config: BenchmarkConfig, n_images: int) -> dict:
    """Seconds per image of one method on `n_images` images, on the CPU with one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cpu_config = dataclasses.replace(config, device="cpu")
        model = _model(config.model, config.checkpoint, "cpu")
        m = _method(method, model, cpu_config)
        x = normalize(make_shapes(n_images, seed=HELD_OUT_SEED).images)
        classes = predicted_classes(model, x)
        start, cpu = time.perf_counter(), time.process_time()
        m.explain(x, target=classes)
        # wall time, and the process's CPU time (close to the wall time of an idle machine)
        return {"seconds_per_image": (time.perf_counter() - start) / len(x),
                "cpu_seconds_per_image": (time.process_time() - cpu) / len(x), "n": len(x)}
    finally:
        torch.set_num_threads(threads)


def _batch_of(key: str) -> int:
    return int(key.rsplit("-b", 1)[1])


def benchmark_item(key: str, *, config: dict, store_dir: str | None = None, time_images: int = 0) -> dict:
    """Compute one stored item of the benchmark (picklable through :func:`benchmark_task`).

    Parameters
    ----------
    key : str
        ``<row>-b<batch:03d>`` (a method, ``object_mask`` or ``<inverse>.<kind>``),
        ``tradeoff-<row>-b<batch>``, ``tradeoff-inverse-w<weight>-b<batch>`` or ``time-<method>``.
    config : dict
        :class:`BenchmarkConfig` fields (``dataclasses.asdict``).
    store_dir : str, optional
        The result store's folder: items that start from another item (map kinds, trade-off
        sweeps) read it there.
    time_images : int
        Images of a ``time-<method>`` item.

    Returns
    -------
    dict
        Per-image arrays and scalars, as :func:`invnb.runs.run_items` stores them.
    """
    cfg = BenchmarkConfig(**config)
    if key.startswith("time-"):
        return _time(key[len("time-"):], cfg, time_images)
    if "-b" not in key or not key.rsplit("-b", 1)[1].isdigit():
        raise ValueError(f"bad benchmark item key {key!r}: expected e.g. 'saliency-b000' or 'tradeoff-rise-b003'")
    b = _batch_of(key)
    if not 0 <= b < cfg.n_batches:
        raise ValueError(f"item {key!r}: batch {b} is outside the {cfg.n_batches} batches of {cfg.n_images} images")
    model = worker_cached(_model, cfg.model, cfg.checkpoint, cfg.device)
    row = key.rsplit("-b", 1)[0]
    store = ResultStore(store_dir) if store_dir is not None else None
    with full_precision():
        if row.startswith("tradeoff-inverse-w"):
            return _tradeoff_inverse(float(row[len("tradeoff-inverse-w"):]), b, cfg, model)
        if row.startswith("tradeoff-"):
            return _tradeoff_maps(row[len("tradeoff-"):], b, cfg, model, _need(store, key))
        if split_row(row)[1] is not None:
            return _evaluate_kind(row, b, cfg, model, _need(store, key))
        return _evaluate(row, b, cfg, model)


def _need(store, key):
    if store is None:
        raise ValueError(f"item {key!r} starts from another stored item: pass store_dir")
    return store


def benchmark_keys(methods: Sequence[str], config: BenchmarkConfig) -> list[str]:
    """The map items ``<method>-b<batch:03d>`` of `methods` over every batch of `config`."""
    return [f"{m}-b{b:03d}" for m in methods for b in range(config.n_batches)]


def benchmark_task(config: BenchmarkConfig, store_dir: str | Path, time_images: int = 0) -> ItemTask:
    """The :class:`~invnb.runs.ItemTask` computing :func:`benchmark_item` (for serial or Dask runs)."""
    return ItemTask(benchmark_item, {"config": dataclasses.asdict(config), "store_dir": str(store_dir),
                                     "time_images": int(time_images)})


def run_benchmark(config: BenchmarkConfig, out: str | Path, methods: Sequence[str] | None = None,
                  map_kinds: Sequence[str] = MAP_KINDS, mask_weights: Sequence[float] = MASK_WEIGHTS,
                  time_images: int = 0, postprocess: bool = True, progress: bool = True, executor: Any = None):
    """Run (or resume) the benchmark into `out` and return its summary.

    Parameters
    ----------
    config : BenchmarkConfig
    out : path
        Run folder; items are stored in ``out/items`` and loaded, not recomputed, when the
        same call runs again (a stored item of another protocol is refused).
    methods : sequence of str, optional
        Rows to compute (default: :func:`benchmark_methods`, all of them).
    map_kinds : sequence of str
        Map kinds made from the kept input of each method that has one (the inverses,
        extremal perturbation), as extra rows ``<method>.<kind>`` (a kind equal to the
        method's own map is left out).
    mask_weights : sequence of float
        ``mask_weight`` sweep of the default inverse's own kept input (empty: none).
    time_images : int
        Also time each method on this many images on one CPU thread (0: no).
    postprocess : bool
        Also score each method's map post-processed as the default inverse's (``<method>.pp``,
        :data:`PP_OPTIONS`), unless its map is post-processed already.
    progress : bool
        Progress bars over the items.
    executor : optional
        A Dask (or ``concurrent.futures``) executor for the items.

    Returns
    -------
    invnb.eval.benchmark_report.BenchmarkSummary
        Table rows, standard errors, trade-off rows, mean curves; ``.write(out)`` saves them.
    """
    from invnb.eval.benchmark_report import summarise_run

    methods = list(benchmark_methods() if methods is None else methods)
    unknown = sorted(set(methods) - set(benchmark_methods()))
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose from {benchmark_methods()}")
    bad_kinds = sorted(set(map_kinds) - set(MAP_KINDS))
    if bad_kinds:
        raise ValueError(f"unknown map kinds {bad_kinds}; choose from {list(MAP_KINDS)}")
    out = Path(out)
    store = ResultStore(out / "items", config=config.protocol())
    task = benchmark_task(config, store.directory, time_images)
    batches = range(config.n_batches)
    tb = [b for b in batches if config.tradeoff_count(b) > 0]
    kw = {"progress": progress, "executor": executor}
    runs, trades, times = {}, {}, {}
    for name in methods:
        rows = [name]
        while rows:
            row = rows.pop(0)
            run = run_items(benchmark_keys([row], config), task, store, desc=row, **kw)
            if split_row(row)[1] is not None and all(r.scalars.get("same_as_own_map") for r in run.records):
                continue  # the method's own map already is of this kind
            if row == name and "kept" in run.records[0].arrays:  # a kept input of its own: its other maps
                rows += [f"{name}.{kind}" for kind in map_kinds]
            if row == name and postprocess and not run.records[0].scalars.get("postprocessed", False):
                rows.append(f"{name}.{POSTPROCESSED}")  # the same post-processing as the default inverse's map
            runs[row] = run.records
            trades[row] = run_items([f"tradeoff-{row}-b{b:03d}" for b in tb], task, store,
                                    desc=f"trade-off {row}", **kw).records
        if time_images and name != OBJECT_MASK:
            times[name] = run_items([f"time-{name}"], task, store, progress=False).records[0].scalars
    sweep = {}
    if "inverse" in methods:
        for w in mask_weights:
            sweep[float(w)] = run_items([f"tradeoff-inverse-w{w:g}-b{b:03d}" for b in tb], task, store,
                                        desc=f"trade-off inverse w={w:g}", **kw).records
    return summarise_run(config, runs, trades, sweep, times)

