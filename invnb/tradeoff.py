"""The paper's trade-off plot: how much of the input is kept vs. whether the class survives.

Kwon et al. plot, for each method, the *amount of activation* kept in the input
(:func:`invnb.metrics.amount_of_activation`, lower = less kept) against the
*re-identification rate* (the share of images for which the full model still
predicts the original class from the kept input, higher = better). A method
that keeps little and still re-identifies the class sits in the upper left.

Each method gives a curve, measured identically for all methods:

* the inverse: one point per ``mask_weight``; the kept input is the inverse
  input ``x_hat = res.features[0]``;
* an attribution map ``a`` (any baseline): the kept input is ``x`` masked where
  ``a`` is high, in two ways (both are reported, as rows with ``mode``):

  - ``"hard"``: keep the top ``fraction`` of pixels (all channels), zero the
    rest (``x * 1[rank < fraction * H * W]``, ties in raster order);
  - ``"soft"``: ``x * (a / max a) ** exponent``: every pixel attenuated by its
    normalised attribution, the exponent sharpening the map (like the inverse
    input, which is a pixel-wise attenuation of ``x``).

Zero is the mean colour in normalised space, the same substrate as the
deletion metric.

Examples
--------
>>> rows = map_tradeoff(model, x, attributions, "saliency")
>>> rows += inverse_tradeoff(model, x, mask_weights=(0.3, 1.0, 3.0))
>>> write_table(rows, "tradeoff.csv")
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from .metrics import _check_images, _check_maps, _chunks, _topk_hits, amount_of_activation, resolve_classes

__all__ = [
    "DEFAULT_EXPONENTS",
    "DEFAULT_FRACTIONS",
    "inverse_tradeoff",
    "keep_soft",
    "keep_top_fraction",
    "kept_input_scores",
    "map_tradeoff",
    "read_table",
    "write_table",
]

#: Kept fractions of pixels for the hard masks. 1.0 is left out: the amount
#: of activation of the unmasked image is not defined (see
#: :func:`invnb.metrics.amount_of_activation`).
DEFAULT_FRACTIONS: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 0.9)
#: Exponents for the soft masks ``(a / max a) ** exponent``.
DEFAULT_EXPONENTS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def keep_top_fraction(x: Tensor, attributions: Tensor, fraction: float) -> Tensor:
    """Keep the most salient pixels of each image and zero the rest.

    Parameters
    ----------
    x : Tensor
        Images, (N, C, H, W).
    attributions : Tensor
        (N, H, W) saliency.
    fraction : float
        Share of pixels kept, in [0, 1]; ``round(fraction * H * W)`` pixels.

    Returns
    -------
    Tensor
        (N, C, H, W): ``x`` on the kept pixels, 0 elsewhere. Ties are broken
        in raster order, so exactly the requested number of pixels is kept.
    """
    _check_images(x)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}.")
    n, _, h, w = x.shape
    a = _check_maps(attributions, n, (h, w)).to(x.device)
    k = int(round(fraction * h * w))
    order = torch.argsort(a.reshape(n, -1), dim=1, descending=True, stable=True)
    keep = torch.zeros(n, h * w, dtype=torch.bool, device=x.device)
    keep.scatter_(1, order[:, :k], True)
    return x * keep.reshape(n, 1, h, w)


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
    _check_images(x)
    if not exponent > 0:
        raise ValueError(f"exponent must be positive, got {exponent}.")
    n, _, h, w = x.shape
    a = _check_maps(attributions, n, (h, w)).to(x.device)
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
    for s in _chunks(x.shape[0], batch_size):
        hits.append(_topk_hits(model(clean[s]), classes[s].to(x.device), topk))
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
    _check_images(x)
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
        ``max_iter``...); ``paper=True`` starts from ``LayerwiseInverse.paper``.

    Returns
    -------
    list of dict
        Rows as :func:`map_tradeoff` with ``mode="inverse"``,
        ``param_name="mask_weight"`` and ``n_failed``. Failed images (NaN or
        all-zero inverse) count as not re-identified.
    """
    from .inverse import LayerwiseInverse

    _check_images(x)
    classes = resolve_classes(model, x, classes, batch_size)
    paper = inverse_kw.pop("paper", False)
    rows = []
    for wgt in mask_weights:
        inv = (LayerwiseInverse.paper(model, mask_weight=wgt, **inverse_kw) if paper
               else LayerwiseInverse(model, mask_weight=wgt, **inverse_kw))
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


def write_table(rows: Sequence[dict], path: str | Path) -> Path:
    """Write rows to ``.csv`` or ``.json`` (chosen by the suffix).

    Parameters
    ----------
    rows : sequence of dict
        Table rows; the CSV header is the union of keys in first-seen order.
    path : str or Path
        Output file, ending in ``.csv`` or ``.json``; folders are created.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        path.write_text(json.dumps(list(rows), indent=1))
    elif path.suffix == ".csv":
        fields: list[str] = []
        for r in rows:
            fields += [k for k in r if k not in fields]
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    else:
        raise ValueError(f"unknown table format {path.suffix!r}; use a .csv or .json file name.")
    return path


def read_table(path: str | Path) -> list[dict]:
    """Read rows written by :func:`write_table` (CSV numbers come back as float/int)."""
    path = Path(path)
    if path.suffix == ".json":
        return json.loads(path.read_text())
    if path.suffix != ".csv":
        raise ValueError(f"unknown table format {path.suffix!r}; use a .csv or .json file name.")

    def parse(v: str):
        for cast in (int, float):
            try:
                return cast(v)
            except ValueError:
                pass
        return v

    with path.open(newline="") as fh:
        return [{k: parse(v) for k, v in r.items()} for r in csv.DictReader(fh)]
