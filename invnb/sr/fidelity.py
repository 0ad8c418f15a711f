"""Does the VDSR inverse reproduce VDSR's output? Fidelity, amount, cost and chirp curves per setting.

Four ways to invert VDSR on one image, by name (:data:`FIDELITY_SETTINGS`):

``"default"``  the ``"vdsr"`` setting: the layer-wise walk, then the output fit
               (:mod:`invnb.inverse.output_fit`), run here as the two steps so that each is timed
``"walk"``     the same walk without the output fit
``"paper"``    the released code's setting (``"vdsr_paper"``)
``"matched"``  the default with its ``mask_weight`` chosen per image (:func:`matching_weight`) so
               that its walk keeps the paper setting's amount of activation on that image

:func:`fidelity_record` measures one image with one of them: the amount of
activation, the output fidelity of ``y_hat = VDSR(x_hat)`` against
``y = VDSR(x)`` (:func:`invnb.sr.output_fidelity`, border = scale), the wall
time against VDSR's own forward time on the same input (forward-equivalents)
and, on the chirp, the attribution ``|x_hat| / |x|`` binned by radial local
frequency. :func:`run_fidelity` runs the grid of images, scales and settings
(``scripts/vdsr_fidelity.py`` is its command line); :func:`layer_fidelity`
says, per convolution, where the walk loses the output.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from invnb.eval.reid import amount_of_activation
from invnb.inverse.engine import LayerwiseInverse
from invnb.inverse.output_fit import fit_output
from invnb.inverse.settings import setting_kwargs
from invnb.sr.analysis import center_crop, output_fidelity
from invnb.sr.chirp import chirp_hr, chirp_profiles, lowest_band, lr_nyquist
from invnb.sr.datasets import load_embedded_sr_set
from invnb.sr.frequency import attribution_ratio
from invnb.sr.samples import make_sr_sample, y_to_tensor

__all__ = ["FIDELITY_SETTINGS", "FIDELITY_PHOTOS", "compare_tensors", "fidelity_images", "fidelity_inverse",
           "fidelity_record", "fidelity_report_text", "fidelity_row", "forward_seconds", "layer_fidelity", "matching_weight",
           "run_fidelity"]

#: The ways to invert VDSR that :func:`fidelity_record` knows (see the module's docstring).
FIDELITY_SETTINGS = ("default", "walk", "paper", "matched")
#: The embedded photographs whose centre crops :func:`fidelity_images` yields.
FIDELITY_PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "rocket")


def forward_seconds(model: nn.Module, x: torch.Tensor, repeats: int = 5) -> float:
    """Median wall time of one forward pass of `model` on `x` (no gradient, after one warm-up call)."""
    times = []
    with torch.no_grad():
        model(x)
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def fidelity_inverse(model: nn.Module, setting: str, mask_weight: float | None = None) -> LayerwiseInverse:
    """The inverse :func:`fidelity_record` runs first for `setting`: for ``"default"``, ``"walk"`` and
    ``"matched"`` the ``"vdsr"`` setting's walk without its output fit (`mask_weight` replaces its weight),
    for ``"paper"`` the ``"vdsr_paper"`` setting."""
    if setting not in FIDELITY_SETTINGS:
        raise ValueError(f"setting must be one of {FIDELITY_SETTINGS}, got {setting!r}")
    if setting == "paper":
        return LayerwiseInverse.from_setting(model, "vdsr_paper", keep_features=False)
    kw = {} if mask_weight is None else {"mask_weight": mask_weight}
    return LayerwiseInverse.from_setting(model, "vdsr", output_fit=None, keep_features=False, **kw)


def fidelity_record(model: nn.Module, x: torch.Tensor, scale: int, setting: str, chirp_rate: float | None = None,
                    mask_weight: float | None = None) -> dict:
    """Invert VDSR on one image with one setting; its fidelity, amount and cost.

    Parameters
    ----------
    model : nn.Module
        VDSR returning the residual.
    x : torch.Tensor
        ``(1, 1, H, W)`` bicubic luminance in [0, 1].
    scale : int
        SR factor (the border the fidelity shaves).
    setting : {"default", "walk", "paper", "matched"}
        See :data:`FIDELITY_SETTINGS`; ``"matched"`` needs `mask_weight`.
    chirp_rate : float, optional
        For the chirp: its constant ``c``; the record then has the binned attribution.
    mask_weight : float, optional
        Replaces the ``"vdsr"`` setting's weight (``"default"``, ``"walk"``, ``"matched"``).

    Returns
    -------
    dict
        ``setting, scale, size, amount, fidelity`` (:func:`invnb.sr.output_fidelity`), ``seconds``
        (the inverse's wall time), ``forward_seconds`` (:func:`forward_seconds`),
        ``forward_equivalents`` (their ratio), ``failed``, ``walk_seconds``; with the output fit
        (``"default"``, ``"matched"``) also ``fit_seconds``, ``fit_evaluations`` (network
        evaluations, forward and backward pass each), ``walk_relative_error`` (the walk's
        ``||F(x_hat) - y|| / ||y||``) and ``map_pearson_walk_fit`` (how much the fit changed the
        attribution ``|x_hat| / |x|``: Pearson correlation of the two maps); on the chirp
        ``profile`` (radial :class:`~invnb.sr.FrequencyBins` as a dict), ``band``
        (:func:`invnb.sr.lowest_band`) and ``lr_nyquist``; ``mask_weight`` when given.

    Examples
    --------
    >>> from invnb.models import VDSR
    >>> net = VDSR(depth=3, channels=4).eval()
    >>> rec = fidelity_record(net, torch.rand(1, 1, 16, 16), 2, "default")
    >>> sorted(rec["fidelity"]), rec["fit_evaluations"] <= 100
    (['correlation', 'mean_offset', 'norm_ratio', 'relative_error'], True)
    """
    if x.ndim != 4 or x.shape[:2] != (1, 1):
        raise ValueError(f"x must be one (1, 1, H, W) luminance image, got shape {tuple(x.shape)}")
    if setting == "matched" and mask_weight is None:
        raise ValueError("setting 'matched' needs the mask_weight chosen for the image (matching_weight)")
    with torch.no_grad():
        y = model(x)
    inv = fidelity_inverse(model, setting, mask_weight)
    t0 = time.perf_counter()
    res = inv.invert(x, target=y)
    rec = {"walk_seconds": time.perf_counter() - t0}
    x_hat = res.input
    if setting in ("default", "matched"):
        # what the "vdsr" setting's engine does after the walk (tests/sr/test_vdsr_fidelity.py checks it)
        vdsr = setting_kwargs("vdsr")
        walk_map = attribution_ratio(x_hat[0, 0], x[0, 0])
        fit = fit_output(inv.stack, x_hat, x, y, vdsr["output_fit"], vdsr["output_fit_evals"], skip=res.failed)
        x_hat = fit.x
        fit_map = attribution_ratio(x_hat[0, 0], x[0, 0])
        rec.update(fit_seconds=fit.seconds, fit_evaluations=int(fit.evaluations[0]),
                   walk_relative_error=float(fit.start_error[0]),
                   map_pearson_walk_fit=float(np.corrcoef(walk_map.ravel(), fit_map.ravel())[0, 1]))
    seconds = rec["walk_seconds"] + rec.get("fit_seconds", 0.0)
    with torch.no_grad():
        y_hat = model(x_hat)
    fwd = forward_seconds(model, x)

    def a(t):
        return t[0, 0].detach().double().cpu().numpy()

    rec.update(setting=setting, scale=scale, size=int(x.shape[-1]), amount=float(amount_of_activation(x_hat, x)[0]),
               fidelity=output_fidelity(a(y), a(y_hat), scale), seconds=seconds, forward_seconds=fwd,
               forward_equivalents=seconds / fwd, failed=bool(res.failed[0]))
    if mask_weight is not None:
        rec["mask_weight"] = float(mask_weight)
    if chirp_rate is not None:
        prof = chirp_profiles(attribution_ratio(a(x_hat), a(x)), chirp_rate)
        rec.update(profile=prof["radial"].to_dict(), band=lowest_band(prof["radial"]).to_dict(),
                   lr_nyquist=lr_nyquist(scale))
    return rec


def matching_weight(model: nn.Module, x: torch.Tensor, amount: float, tol: float = 0.02,
                    steps: int = 10) -> tuple[float, float]:
    """The ``mask_weight`` whose ``"vdsr"`` walk (without the output fit) keeps `amount` within `tol`.

    Bisection on ``log(mask_weight)`` in [0.01, 30] (the amount falls as the weight grows), at most
    `steps` walks.

    Returns
    -------
    mask_weight, amount : float
        The weight tried whose amount came closest to `amount`, and that amount.
    """
    with torch.no_grad():
        y = model(x)
    lo, hi = np.log(0.01), np.log(30.0)
    best = (np.inf, None, None)
    for _ in range(steps):
        w = float(np.exp(0.5 * (lo + hi)))
        got = float(amount_of_activation(fidelity_inverse(model, "walk", w).invert(x, target=y).input, x)[0])
        best = min(best, (abs(got - amount), w, got))
        if abs(got - amount) <= tol:
            break
        lo, hi = (np.log(w), hi) if got > amount else (lo, np.log(w))
    return best[1], best[2]


def fidelity_images(scale: int, chirp_sizes: Sequence[int] = (64,), photos: Sequence[str] = (),
                    crop: int = 64) -> Iterator[tuple[str, torch.Tensor, float | None]]:
    """The images of a fidelity run at one scale: ``(name, x (1, 1, H, W), chirp rate or None)``.

    The chirps ``sin(x^2/c) sin(y^2/c)`` of each side in `chirp_sizes` with ``c = 2 * side``, made the
    paper's way (cumulative modcrop), then the centre crops (side `crop`) of the embedded `photos`
    (names of :data:`FIDELITY_PHOTOS`).
    """
    for size in chirp_sizes:
        s = make_sr_sample(chirp_hr(size), scale, cumulative_crop=True, name=f"chirp{size}")
        yield s.name, y_to_tensor(s.im_b_y), 2.0 * size
    if photos:
        for s in load_embedded_sr_set(scale, names=list(photos)):
            yield s.name, y_to_tensor(center_crop(s, crop).im_b_y), None


def run_fidelity(model: nn.Module, scales: Sequence[int], settings: Sequence[str], chirp_sizes: Sequence[int] = (64,),
                 photos: Sequence[str] = (), crop: int = 64,
                 callback: Callable[[dict], None] | None = None) -> list[dict]:
    """:func:`fidelity_record` for every scale, image (:func:`fidelity_images`) and setting.

    ``"matched"`` takes the amount of the image's ``"paper"`` record, so ``"paper"`` must come
    before it in `settings`. Each record gets the image's ``image`` name; `callback` is called
    with each as soon as it is done.
    """
    bad = [s for s in settings if s not in FIDELITY_SETTINGS]
    if bad:
        raise ValueError(f"unknown settings {bad}; choose from {FIDELITY_SETTINGS}")
    if "matched" in settings and ("paper" not in settings or settings.index("paper") > settings.index("matched")):
        raise ValueError("setting 'matched' needs 'paper' before it (it matches the paper setting's amount)")
    runs = []
    for scale in scales:
        for name, x, rate in fidelity_images(scale, chirp_sizes, photos, crop):
            done = {}
            for setting in settings:
                weight = matching_weight(model, x, done["paper"]["amount"])[0] if setting == "matched" else None
                rec = fidelity_record(model, x, scale, setting, rate, weight)
                rec["image"] = name
                done[setting] = rec
                runs.append(rec)
                if callback is not None:
                    callback(rec)
    return runs


def fidelity_row(r: dict) -> str:
    """One line of text for a record of :func:`fidelity_record` (with its ``image``)."""
    f = r["fidelity"]
    extra = f"  mask_weight {r['mask_weight']:.3g}" if "mask_weight" in r else ""
    if "fit_evaluations" in r:
        extra += (f"  walk rel {r['walk_relative_error']:.2f}, fit {r['fit_evaluations']:3d} evals, "
                  f"map corr walk/fit {r['map_pearson_walk_fit']:.3f}")
    return (f"{r['image']:10s} x{r['scale']} {r['setting']:8s} amount {r['amount']:.3f}  corr {f['correlation']:.3f}  "
            f"rel {f['relative_error']:.3f}  norm {f['norm_ratio']:.3f}  {r['seconds']:6.1f} s "
            f"({r['forward_equivalents']:5.0f} fwd){extra}")


def fidelity_report_text(result: dict) -> str:
    """A fidelity run's summary (``command``, ``commit``, ``weights``, ``threads``, ``torch``, ``runs``) as
    text: one row per record, then means per image group (chirp, photos), scale and setting."""
    lines = [f"{result['command']}  (commit {result['commit']}, weights {result['weights']}, "
             f"{result['threads']} thread(s), torch {result['torch']})"]
    lines += [fidelity_row(r) for r in result["runs"]]
    by = {}
    for r in result["runs"]:
        group = "chirp" if r["image"].startswith("chirp") else "photos"
        by.setdefault((group, r["scale"], r["setting"]), []).append(r)
    lines.append("\nmeans (photos: over images)")
    for (group, scale, setting), rs in sorted(by.items()):
        corr = [r["fidelity"]["correlation"] for r in rs]
        norm = [r["fidelity"]["norm_ratio"] for r in rs]
        rel = [r["fidelity"]["relative_error"] for r in rs]
        lines.append(f"{group:6s} x{scale} {setting:8s} n={len(rs)} amount {np.mean([r['amount'] for r in rs]):.3f}  "
                     f"corr {np.mean(corr):.3f} (min {min(corr):.3f})  rel {np.mean(rel):.3f}  norm {np.mean(norm):.3f} "
                     f"[{min(norm):.3f}, {max(norm):.3f}]  {np.mean([r['forward_equivalents'] for r in rs]):.0f} fwd")
    return "\n".join(lines)


def compare_tensors(ref: torch.Tensor, est: torch.Tensor) -> tuple[float, float, float]:
    """Pearson correlation, norm ratio ``||est|| / ||ref||`` and relative error ``||est - ref|| / ||ref||``."""
    a, b = ref.flatten().double(), est.flatten().double()
    ac, bc = a - a.mean(), b - b.mean()
    corr = float(ac @ bc / (ac.norm() * bc.norm()).clamp_min(1e-30))
    return corr, float(b.norm() / a.norm()), float((b - a).norm() / a.norm())


@torch.no_grad()
def layer_fidelity(inverse: LayerwiseInverse, x: torch.Tensor, y: torch.Tensor, result) -> list[dict]:
    """Where a walk loses the output: per convolution, top first, the local fit and the end-to-end fidelity.

    Parameters
    ----------
    inverse : LayerwiseInverse
        The inverse that produced `result` (with ``keep_features=True``).
    x, y : torch.Tensor
        The input and the output target.
    result : invnb.inverse.InverseResult
        ``inverse.invert(x, target=y)``.

    Returns
    -------
    list of dict
        Per convolution ``k``: ``local_corr`` and ``local_norm`` (:func:`compare_tensors` of the
        layer's target, rescaled as the walk rescaled it, against ``act(conv_k(f_k))``),
        ``feature_norm`` (``||f_k|| / ||x_k||``, the inverse feature against the forward one) and
        ``e2e_corr``, ``e2e_norm``, ``e2e_rel`` (the rest of the network run from ``f_k`` against `y`;
        at ``k = 0`` the output fidelity of the inverse input).
    """
    stack = inverse.stack
    layers, acts = stack.layers, stack.record(x)
    if any(f is None for f in result.features):
        raise ValueError("layer_fidelity needs every layer's inverse feature: invert with keep_features=True")
    rows = []
    for k in range(len(layers) - 1, -1, -1):
        if not isinstance(layers[k], nn.Conv2d):
            continue
        f_k, t = result.features[k], result.features[k + 1]
        relu = k + 1 < len(layers) and isinstance(layers[k + 1], nn.ReLU)
        ref = acts[k + 1].clamp(min=0) if inverse.target_scale == "active" and relu else acts[k + 1]
        if inverse.target_scale != "none":
            t = t * ref.norm() / (t.norm() + 1e-10)
        z = layers[k](f_k)
        local = compare_tensors(t, z.clamp(min=0) if (relu or inverse.relu_in_objective == "always") else z)
        e2e = compare_tensors(y, stack.forward_from(k, f_k))
        rows.append({"k": k, "name": stack.names[k], "local_corr": local[0], "local_norm": local[1],
                     "feature_norm": float(f_k.norm() / acts[k].norm()),
                     "e2e_corr": e2e[0], "e2e_norm": e2e[1], "e2e_rel": e2e[2]})
    return rows
