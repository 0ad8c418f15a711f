"""The paper's trade-off plot: how much of the input is kept vs. whether the class survives.

Kwon et al. plot, for each method, the *amount of activation* kept in the input
(:func:`invnb.eval.amount_of_activation`, lower = less kept) against the
*re-identification rate* (the share of images for which the full model still
predicts the original class from the kept input, higher = better). A method
that keeps little and still re-identifies the class sits in the upper left.

Each method gives a curve, measured identically for all methods:

* the inverse: one point per ``mask_weight``; the kept input is the inverse
  input ``x_hat = res.features[0]``;
* an attribution map ``a`` (any baseline): the kept input is ``x`` masked where
  ``a`` is high, in two ways (both are reported, as rows with ``mode``):

  - ``"hard"``: keep the top ``fraction`` of pixels (all channels), zero the
    rest (``x * 1[rank < fraction * H * W]``; ties in raster order, or, with
    ``seed``, in one seeded random pixel order shared by every image and
    method, :func:`invnb.eval.tie_keys`);
  - ``"soft"``: ``x * (a / max a) ** exponent``: every pixel attenuated by its
    normalised attribution, the exponent sharpening the map (like the inverse
    input, which is a pixel-wise attenuation of ``x``).

Zero is the mean colour in normalised space, the same substrate as the
deletion metric.

The inverse gets the same two rules on its maps, next to its own kept input;
:func:`invnb.inverse.attribution_map` turns any kept input ``x_hat`` into a map of a
stated kind (the paper's ratio, ``|x_hat|``, ``|x_hat| * |x|``), so every
kind is scored whatever the engine's default.

One number per curve (:func:`tradeoff_auc`): the area under re-identification
vs. amount over amounts [0, ``max_amount``] (0.3 by default), divided by
``max_amount``; the curve is the method's points sorted by amount, joined
linearly, anchored at (0, 0) (nothing kept: nothing re-identified) and held
flat after its last point. 1 would mean "every class re-identified from an
arbitrarily small kept input"; higher is better. :func:`reid_at_amount`
reads the same curve at one amount, e.g. the amount of the object itself
(``x`` times its ground-truth mask).

Examples
--------
>>> rows = map_tradeoff(model, x, attributions, "random", fractions=(0.1, 0.5), exponents=(1.0,))
>>> rows += inverse_tradeoff(model, x, mask_weights=(1.0,))
>>> [(r["mode"], r["param"]) for r in rows]
[('hard', 0.1), ('hard', 0.5), ('soft', 1.0), ('inverse', 1.0)]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from invnb._utils.checks import check_images, check_maps, chunks
from invnb._utils.classes import resolve_classes
from invnb.eval.causal import pixel_ranks
from invnb.eval.reid import amount_of_activation, topk_hits
from invnb.inverse.maps import ATTRIBUTIONS

__all__ = ["DEFAULT_FRACTIONS", "DEFAULT_EXPONENTS", "keep_top_fraction", "MAP_KINDS", "TRADEOFF_MAX_AMOUNT", "reid_at_amount", "tradeoff_auc", "keep_soft", "kept_input_scores", "map_tradeoff", "inverse_tradeoff"]


#: Kept fractions of pixels for the hard masks. 1.0 is left out: the amount
#: of activation of the unmasked image is not defined (see
#: :func:`invnb.eval.amount_of_activation`).
DEFAULT_FRACTIONS: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 0.9)


#: Exponents for the soft masks ``(a / max a) ** exponent``.
DEFAULT_EXPONENTS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def keep_top_fraction(x: Tensor, attributions: Tensor, fraction: float, seed: int | None = None) -> Tensor:
    """Keep the most salient pixels of each image and zero the rest.

    Parameters
    ----------
    x : Tensor
        Images, (N, C, H, W).
    attributions : Tensor
        (N, H, W) saliency.
    fraction : float
        Share of pixels kept, in [0, 1]; ``round(fraction * H * W)`` pixels.
    seed : int or None
        None: ties broken in raster order (the first pixel wins). An int: ties
        broken by one random pixel order drawn from this seed, the same for
        every image and method (:func:`invnb.eval.tie_keys`).

    Returns
    -------
    Tensor
        (N, C, H, W): ``x`` on the kept pixels, 0 elsewhere; exactly the
        requested number of pixels is kept.
    """
    check_images(x)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}.")
    n, _, h, w = x.shape
    a = check_maps(attributions, n, (h, w)).to(x.device)
    k = int(round(fraction * h * w))
    keep = pixel_ranks(a, 1, seed)[0] < k
    return x * keep.reshape(n, 1, h, w)


#: Kinds of map made from a kept input by :func:`invnb.inverse.attribution_map`.
MAP_KINDS: tuple[str, ...] = ATTRIBUTIONS


#: Upper end of the amounts over which :func:`tradeoff_auc` integrates.
TRADEOFF_MAX_AMOUNT = 0.3


def _curve_points(amounts, reids) -> tuple[list[float], list[float]]:
    a = [float(v) for v in amounts]
    r = [float(v) for v in reids]
    if len(a) != len(r) or not a:
        raise ValueError(f"need as many amounts as re-identification rates, at least one; got {len(a)} and {len(r)}.")
    pts = sorted((ai, ri) for ai, ri in zip(a, r) if ai == ai and ri == ri)  # drop NaN
    if not pts:
        raise ValueError("every point is NaN.")
    if pts[0][0] < 0:
        raise ValueError(f"amounts must be non-negative, got {pts[0][0]}.")
    xs, ys = [0.0], [0.0]
    for ai, ri in pts:
        if ai == xs[-1] and len(xs) > 1:
            ys[-1] = max(ys[-1], ri)  # equal amounts: keep the best rate
        elif ai == 0.0:
            ys[0] = ri
        else:
            xs.append(ai)
            ys.append(ri)
    return xs, ys


def reid_at_amount(amounts: Sequence[float], reids: Sequence[float], amount: float) -> float:
    """Re-identification rate of a trade-off curve at one amount.

    Parameters
    ----------
    amounts, reids : sequence of float
        The curve's points (any order; NaN points are dropped).
    amount : float
        Where to read the curve, >= 0.

    Returns
    -------
    float
        Linear interpolation between the points, the curve anchored at (0, 0)
        and flat after its last point (as in :func:`tradeoff_auc`).
    """
    xs, ys = _curve_points(amounts, reids)
    if amount >= xs[-1]:
        return ys[-1]
    for i in range(1, len(xs)):
        if amount <= xs[i]:
            t = (amount - xs[i - 1]) / (xs[i] - xs[i - 1])
            return ys[i - 1] + t * (ys[i] - ys[i - 1])
    return ys[-1]  # pragma: no cover - unreachable


def tradeoff_auc(amounts: Sequence[float], reids: Sequence[float], max_amount: float = TRADEOFF_MAX_AMOUNT) -> float:
    """One number per trade-off curve: normalised area under re-identification vs. amount.

    Parameters
    ----------
    amounts, reids : sequence of float
        The curve's points (mean amount, re-identification rate), any order.
    max_amount : float
        Integrate over amounts in [0, max_amount] (0.3 by default: the
        region where a kept input is sparse).

    Returns
    -------
    float
        ``(1 / max_amount) * integral_0^max_amount reid(a) da`` in [0, 1] for
        rates in [0, 1], the curve joined linearly between its points,
        anchored at (0, 0) and flat after its last point. Higher is better.

    Examples
    --------
    >>> tradeoff_auc([0.1, 0.2], [0.5, 1.0])       # 0.1*0.25 + 0.1*0.75 + 0.1*1.0 over 0.3
    0.6666...
    """
    if not max_amount > 0:
        raise ValueError(f"max_amount must be positive, got {max_amount}.")
    xs, ys = _curve_points(amounts, reids)
    if xs[-1] < max_amount:
        xs, ys = xs + [max_amount], ys + [ys[-1]]
    area = 0.0
    for i in range(1, len(xs)):
        x0, x1 = xs[i - 1], min(xs[i], max_amount)
        if x1 <= x0:
            break
        y1 = reid_at_amount(xs[1:], ys[1:], x1) if xs[i] > max_amount else ys[i]
        area += (x1 - x0) * (ys[i - 1] + y1) / 2
    return area / max_amount


def keep_soft(x: Tensor, attributions: Tensor, exponent: float = 1.0) -> Tensor:
    """Attenuate each pixel by its normalised attribution.

    Parameters
    ----------
    x : Tensor
        Images, (N, C, H, W).
    attributions : Tensor
        (N, H, W) non-negative saliency.
    exponent : float
        Positive; larger values keep fewer pixels.

    Returns
    -------
    Tensor
        (N, C, H, W) ``x * (a / max a) ** exponent``; an all-zero map keeps nothing.
    """
    check_images(x)
    if not exponent > 0:
        raise ValueError(f"exponent must be positive, got {exponent}.")
    n, _, h, w = x.shape
    a = check_maps(attributions, n, (h, w)).to(x.device)
    if (a < 0).any():
        raise ValueError("soft masks need non-negative attributions; pass attributions.abs() or clamp(min=0).")
    peak = a.flatten(1).amax(dim=1)
    a = a / torch.where(peak > 0, peak, torch.ones_like(peak))[:, None, None]
    return x * a.pow(exponent).unsqueeze(1).to(x.dtype)


@torch.no_grad()
def kept_input_scores(
    model: Callable[[Tensor], Tensor],
    x_kept: Tensor,
    x: Tensor,
    classes: Tensor,
    topk: Sequence[int] = (1, 5),
    batch_size: int | None = None,
) -> dict[str, Tensor]:
    """Amount of activation and re-identification of a kept input.

    Parameters
    ----------
    model : callable
        Classifier in eval mode.
    x_kept : Tensor
        (N, C, H, W) the kept input (masked image or inverse input).
    x : Tensor
        (N, C, H, W) the original images.
    classes : Tensor
        (N,) the original classes (usually the model's predictions on ``x``).
    topk : sequence of int
        Ranks for re-identification.
    batch_size : int, optional
        Images per forward pass.

    Returns
    -------
    dict
        ``"amount"`` (N,) float, and ``"top{k}"`` (N,) bool for each k
        (False for non-finite kept inputs or outputs).
    """
    hits = []
    finite = torch.isfinite(x_kept.flatten(1)).all(dim=1)
    clean = torch.nan_to_num(x_kept, nan=0.0, posinf=0.0, neginf=0.0)
    for s in chunks(x.shape[0], batch_size):
        hits.append(topk_hits(model(clean[s]), classes[s].to(x.device), topk))
    hits = torch.cat(hits, dim=1) & finite
    out = {"amount": amount_of_activation(clean, x)}
    out.update({f"top{k}": hits[i] for i, k in enumerate(topk)})
    return out


def _row(method: str, mode: str, param_name: str, param: float, scores: dict[str, Tensor], n: int) -> dict:
    row = {"method": method, "mode": mode, "param_name": param_name, "param": float(param),
           "amount": float(scores["amount"].mean()), "n_images": n}
    for key, val in scores.items():
        if key.startswith("top"):
            row[f"reid_{key}"] = float(val.float().mean())
    return row


def map_tradeoff(
    model: Callable[[Tensor], Tensor],
    x: Tensor,
    attributions: Tensor,
    method: str,
    classes: Tensor | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    exponents: Sequence[float] = DEFAULT_EXPONENTS,
    topk: Sequence[int] = (1, 5),
    batch_size: int | None = None,
) -> list[dict]:
    """Trade-off rows of one attribution method: hard top-k and soft masks.

    Parameters
    ----------
    model : callable
        Classifier in eval mode.
    x : Tensor
        Images, (N, C, H, W).
    attributions : Tensor
        (N, H, W) non-negative maps of the method for ``x``.
    method : str
        Name written in the rows.
    classes : Tensor, optional
        (N,) classes to re-identify; default the model's predictions on ``x``.
    fractions : sequence of float
        Kept pixel fractions of the ``"hard"`` rows (empty: no hard rows).
    exponents : sequence of float
        Exponents of the ``"soft"`` rows (empty: no soft rows).
    topk : sequence of int
        Ranks for re-identification (columns ``reid_top1``, ``reid_top5``, ...).
    batch_size : int, optional
        Images per forward pass.

    Returns
    -------
    list of dict
        One row per setting: ``method``, ``mode`` (``"hard"``/``"soft"``),
        ``param_name`` (``"fraction"``/``"exponent"``), ``param``, ``amount``
        (mean over images, lower = less kept), ``reid_top1``... (rates in [0, 1],
        higher is better) and ``n_images``.
    """
    check_images(x)
    classes = resolve_classes(model, x, classes, batch_size)
    n = x.shape[0]
    rows = []
    for f in fractions:
        s = kept_input_scores(model, keep_top_fraction(x, attributions, f), x, classes, topk, batch_size)
        rows.append(_row(method, "hard", "fraction", f, s, n))
    for e in exponents:
        s = kept_input_scores(model, keep_soft(x, attributions, e), x, classes, topk, batch_size)
        rows.append(_row(method, "soft", "exponent", e, s, n))
    return rows


def inverse_tradeoff(
    model: nn.Module,
    x: Tensor,
    mask_weights: Sequence[float],
    classes: Tensor | None = None,
    method: str = "inverse",
    topk: Sequence[int] = (1, 5),
    batch_size: int | None = None,
    **inverse_kw,
) -> list[dict]:
    """Trade-off rows of the layer-wise inverse over a sweep of ``mask_weight``.

    Parameters
    ----------
    model : nn.Module
        Classifier in eval mode.
    x : Tensor
        Images, (N, C, H, W).
    mask_weights : sequence of float
        Values of ``mask_weight`` (larger = sparser inverse input).
    classes : Tensor, optional
        (N,) classes to explain and re-identify; default the predictions.
    method : str
        Name written in the rows.
    topk : sequence of int
        Ranks for re-identification.
    batch_size : int, optional
        Images per forward pass of the scoring.
    **inverse_kw
        Other ``LayerwiseInverse`` arguments (``penalty``, ``solver``,
        ``max_iter``...); ``setting="paper"`` starts from that named setting
        (:meth:`~invnb.inverse.LayerwiseInverse.from_setting`; default ``"default"``).

    Returns
    -------
    list of dict
        Rows as :func:`map_tradeoff` with ``mode="inverse"``,
        ``param_name="mask_weight"`` and ``n_failed``. Failed images (NaN or
        all-zero inverse) count as not re-identified.
    """
    from invnb.inverse.engine import LayerwiseInverse

    check_images(x)
    classes = resolve_classes(model, x, classes, batch_size)
    setting = inverse_kw.pop("setting", "default")
    rows = []
    for wgt in mask_weights:
        inv = LayerwiseInverse.from_setting(model, setting, **{**inverse_kw, "mask_weight": wgt})
        res = inv.invert(x, target=classes)
        s = kept_input_scores(model, res.input, x, classes, topk, batch_size)
        failed = res.failed.to(x.device)
        for key in s:
            if key.startswith("top"):
                s[key] = s[key] & ~failed
        row = _row(method, "inverse", "mask_weight", wgt, s, x.shape[0])
        row["n_failed"] = int(failed.sum())
        rows.append(row)
    return rows
