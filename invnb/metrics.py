"""Attribution metrics: deletion / insertion, re-identification, amount of activation, localisation.

Every function is batched, works on the device of its input tensors and never
draws anything (plots live in :mod:`invnb.plot`). Definitions follow the
paper's released code as summarised in ``METHOD.md`` section 4:

* deletion / insertion curves and their AUC as in RISE (Petsiuk et al. 2018,
  https://arxiv.org/abs/1806.07421), which the paper uses unchanged;
* re-identification of the predicted class from each layer's inverse feature;
* the "amount of activation" (the paper's "mean L1 norm");
* on data with ground-truth object masks: the pointing game
  (Zhang et al. 2016, https://arxiv.org/abs/1608.00507) and the share of
  attribution mass inside the mask.

Examples
--------
>>> curve = deletion_curve(model, x, attributions)     # x (N, C, H, W), attributions (N, H, W)
>>> curve.auc.mean()                                   # lower is better for deletion
>>> insertion_auc(model, x, attributions).mean()       # higher is better for insertion
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

__all__ = [
    "POINTING_RTOL",
    "TIE_ORDERS",
    "CausalCurve",
    "Reidentification",
    "amount_of_activation",
    "curve_auc",
    "default_step",
    "deletion_auc",
    "deletion_curve",
    "gaussian_blur",
    "insertion_auc",
    "insertion_curve",
    "mass_in_mask",
    "pointing_game",
    "pixel_ranks",
    "predicted_classes",
    "reid_rates",
    "resolve_classes",
    "rise_blur_kernel",
    "tie_keys",
]

#: Relative tolerance of the tie-tolerant pointing game (see :func:`pointing_game`).
POINTING_RTOL = 1e-3
#: Random tie orders averaged by the benchmark's deletion / insertion curves.
TIE_ORDERS = 8

#: RISE evaluates 224 x 224 images 224 pixels at a time, i.e. in 224 steps.
RISE_STEPS = 224


# --------------------------------------------------------------------------- helpers
def _check_images(x: Tensor, name: str = "x") -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N, C, H, W), got {type(x).__name__}.")
    if x.dim() != 4:
        raise ValueError(
            f"{name} must have shape (N, C, H, W), got {tuple(x.shape)}; "
            f"add a batch dimension with {name}.unsqueeze(0) for a single image."
        )
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}.")
    return x


def _check_maps(attributions: Tensor, n: int, hw: tuple[int, int], name: str = "attributions") -> Tensor:
    """Return ``attributions`` as (N, H, W) float, or raise a helpful error."""
    if not isinstance(attributions, Tensor):
        attributions = torch.as_tensor(np.asarray(attributions))
    a = attributions
    if a.dim() == 4 and a.shape[1] == 1:
        a = a[:, 0]
    if a.dim() != 3:
        raise ValueError(
            f"{name} must have shape (N, H, W) (or (N, 1, H, W)), got {tuple(attributions.shape)}; "
            "reduce the channels first, e.g. attributions.abs().sum(1)."
        )
    if a.shape[0] != n or tuple(a.shape[1:]) != tuple(hw):
        raise ValueError(
            f"{name} has shape {tuple(a.shape)} but the images need ({n}, {hw[0]}, {hw[1]}); "
            "upsample low-resolution maps to the input size first (e.g. torch.nn.functional.interpolate)."
        )
    a = a.float() if not a.is_floating_point() else a
    if not torch.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf values; replace them (e.g. torch.nan_to_num) before scoring.")
    return a


def _check_masks(masks: Tensor, shape: tuple[int, ...]) -> Tensor:
    if not isinstance(masks, Tensor):
        masks = torch.as_tensor(np.asarray(masks))
    m = masks[:, 0] if masks.dim() == 4 and masks.shape[1] == 1 else masks
    if tuple(m.shape) != tuple(shape):
        raise ValueError(f"masks must have shape {tuple(shape)} like the attributions, got {tuple(masks.shape)}.")
    return m if m.dtype == torch.bool else m != 0


def _chunks(n: int, batch_size: int | None) -> list[slice]:
    if batch_size is None:
        batch_size = max(n, 1)
    if not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}.")
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def _warn_if_training(model: nn.Module) -> None:
    if isinstance(model, nn.Module) and model.training:
        warnings.warn(
            "the model is in training mode (dropout / batch-norm statistics make scores random); "
            "call model.eval() before measuring.",
            stacklevel=3,
        )


@torch.no_grad()
def predicted_classes(model: Callable[[Tensor], Tensor], x: Tensor, batch_size: int | None = None) -> Tensor:
    """Return the class the model predicts for each image.

    Parameters
    ----------
    model : callable
        Classifier mapping (N, C, H, W) to logits (N, K).
    x : Tensor
        Images, (N, C, H, W).
    batch_size : int, optional
        Images per forward pass (all at once when None).

    Returns
    -------
    Tensor
        (N,) long, ``argmax`` of the logits, on ``x.device``.
    """
    _check_images(x)
    out = [model(x[s]).argmax(dim=1) for s in _chunks(x.shape[0], batch_size)]
    return torch.cat(out).to(x.device)


def resolve_classes(
    model: Callable[[Tensor], Tensor], x: Tensor, target=None, batch_size: int | None = None
) -> Tensor:
    """Turn a ``target`` argument into one class index per image.

    Parameters
    ----------
    model : callable
        Classifier, used only when ``target`` is None.
    x : Tensor
        Images, (N, C, H, W).
    target : None, int, sequence of int or Tensor
        None: the predicted class; an int: the same class for every image;
        a sequence or tensor of N ints: one class per image.
    batch_size : int, optional
        Images per forward pass when predicting.

    Returns
    -------
    Tensor
        (N,) long on ``x.device``.
    """
    n = x.shape[0]
    if target is None:
        return predicted_classes(model, x, batch_size)
    if isinstance(target, numbers.Integral):
        return torch.full((n,), int(target), dtype=torch.long, device=x.device)
    t = torch.as_tensor(target, device=x.device)
    if t.dim() == 0:
        return t.long().expand(n).clone()
    if t.dim() != 1 or t.shape[0] != n or t.is_floating_point():
        raise ValueError(
            f"target must be None, an int, or {n} integer class indices (one per image); got shape {tuple(t.shape)} "
            f"and dtype {t.dtype}."
        )
    return t.long()


def _scorer(target, classes: Tensor | None) -> Callable[[Tensor, Tensor], Tensor]:
    """Return ``f(output, image_index) -> (B,)`` scores for the curves."""
    if callable(target):

        def score(out: Tensor, idx: Tensor) -> Tensor:
            s = target(out)
            if not isinstance(s, Tensor) or s.shape != (out.shape[0],):
                raise ValueError(
                    "a callable target must return one score per row of the model output, "
                    f"shape ({out.shape[0]},); got {getattr(s, 'shape', type(s))}."
                )
            return s

        return score

    def prob(out: Tensor, idx: Tensor) -> Tensor:
        p = torch.softmax(out.float(), dim=1)
        return p.gather(1, classes[idx].unsqueeze(1)).squeeze(1)

    return prob


# --------------------------------------------------------------------------- deletion / insertion
@dataclass
class CausalCurve:
    """A deletion or insertion curve per image.

    Attributes
    ----------
    auc : Tensor
        (N,) normalised area under each curve, see :func:`curve_auc`.
    fractions : Tensor
        (n_points,) share of pixels changed at each point, from 0 to 1.
    scores : Tensor
        (N, n_points) the score (softmax probability of the class) at each point.
    classes : Tensor or None
        (N,) the class scored, or None when ``target`` was a callable.
    mode : str
        ``"deletion"`` (lower AUC is better) or ``"insertion"`` (higher is better).
    step : int
        Pixels changed per step.
    """

    auc: Tensor
    fractions: Tensor
    scores: Tensor
    classes: Tensor | None
    mode: str
    step: int

    def mean_curve(self) -> Tensor:
        """Return the curve averaged over images, (n_points,)."""
        return self.scores.mean(dim=0)


def curve_auc(scores: Tensor) -> Tensor:
    """Normalised area under evenly spaced curves, as RISE computes it.

    Parameters
    ----------
    scores : Tensor
        (..., n) curve values at ``n >= 2`` evenly spaced points on [0, 1].

    Returns
    -------
    Tensor
        (...,) the trapezoidal area ``(sum - first/2 - last/2) / (n - 1)``.
        A curve in [0, 1] gives an area in [0, 1].
    """
    scores = torch.as_tensor(scores)
    n = scores.shape[-1]
    if n < 2:
        raise ValueError(f"a curve needs at least 2 points to have an area, got {n}.")
    return (scores.sum(-1) - scores[..., 0] / 2 - scores[..., -1] / 2) / (n - 1)


def default_step(height: int, width: int) -> int:
    """Pixels per step so that a curve has (about) 224 steps, as RISE at 224 x 224.

    Parameters
    ----------
    height, width : int
        Image size in pixels.

    Returns
    -------
    int
        ``ceil(height * width / 224)``: 224 at 224 x 224 (the paper's setting),
        19 at 64 x 64 (216 steps).
    """
    return max(1, math.ceil(height * width / RISE_STEPS))


@lru_cache(maxsize=8)  # pragma: no mutate (cache size: speed only)
def _rise_kernel_np(kernel_size: int, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    delta = np.zeros((kernel_size, kernel_size))
    delta[kernel_size // 2, kernel_size // 2] = 1.0
    # RISE builds its kernel by smoothing a delta with scipy's default
    # boundary ('reflect'), so the tails beyond the window fold back into it:
    # this is not a truncated-and-renormalised Gaussian.
    return gaussian_filter(delta, sigma)


def rise_blur_kernel(kernel_size: int = 11, sigma: float = 5.0) -> Tensor:
    """The Gaussian kernel of RISE's insertion substrate.

    Parameters
    ----------
    kernel_size : int
        Odd window size in pixels (11 in RISE and the paper).
    sigma : float
        Standard deviation in pixels (5 in RISE and the paper).

    Returns
    -------
    Tensor
        (kernel_size, kernel_size) float32 kernel summing to 1: a delta smoothed by
        ``scipy.ndimage.gaussian_filter(delta, sigma)`` (reflecting boundary),
        exactly as RISE builds it.
    """
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size}.")
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}.")
    return torch.from_numpy(_rise_kernel_np(int(kernel_size), float(sigma)).astype(np.float32))


def gaussian_blur(x: Tensor, kernel_size: int = 11, sigma: float = 5.0) -> Tensor:
    """Blur each channel separately, RISE's insertion substrate.

    Parameters
    ----------
    x : Tensor
        Images, (N, C, H, W), in the model's (normalised) input space.
    kernel_size, sigma : int, float
        See :func:`rise_blur_kernel`.

    Returns
    -------
    Tensor
        (N, C, H, W) blurred images. As in RISE the image is zero-padded, so
        borders fade towards 0 (the mean colour in normalised space).
    """
    _check_images(x)
    k = rise_blur_kernel(kernel_size, sigma).to(device=x.device, dtype=x.dtype)
    c = x.shape[1]
    weight = k.expand(c, 1, kernel_size, kernel_size)
    return F.conv2d(x, weight, padding=kernel_size // 2, groups=c)


def _substrate(substrate, x: Tensor, name: str) -> Tensor:
    if callable(substrate):
        s = substrate(x)
        if not isinstance(s, Tensor) or s.shape != x.shape:
            raise ValueError(
                f"{name} callable must return a tensor shaped like x {tuple(x.shape)}, "
                f"got {getattr(s, 'shape', type(s))}."
            )
        return s.to(device=x.device, dtype=x.dtype)
    if isinstance(substrate, numbers.Real):
        return torch.full_like(x, float(substrate))
    if isinstance(substrate, Tensor):
        try:
            return substrate.to(device=x.device, dtype=x.dtype).expand_as(x)
        except RuntimeError as err:
            raise ValueError(
                f"{name} tensor of shape {tuple(substrate.shape)} cannot be broadcast to x {tuple(x.shape)}; "
                "give (N, C, H, W), (1, C, H, W), (C, 1, 1) or a scalar."
            ) from err
    raise TypeError(f"{name} must be a float, a tensor or a callable x -> tensor, got {type(substrate).__name__}.")


def tie_keys(hw: int, tie_orders: int = 1, seed: int | None = None) -> Tensor:
    """Secondary sort keys that break ties among equal attributions.

    Parameters
    ----------
    hw : int
        Pixels per image (H * W).
    tie_orders : int
        Number of tie orders R.
    seed : int or None
        None: one order, raster order (the first pixel wins a tie), the
        historical rule; ``tie_orders`` must then be 1. An int: R random
        permutations of the pixels drawn on the CPU from this seed.

    Returns
    -------
    Tensor
        (R, hw) long on the CPU, a permutation of ``range(hw)`` per row: among
        tied pixels the one with the smaller key comes first. The keys depend
        only on (hw, R, seed): every image, every method, every batch and
        every device gets the same tie orders.
    """
    if not isinstance(tie_orders, numbers.Integral) or tie_orders < 1:
        raise ValueError(f"tie_orders must be a positive integer, got {tie_orders!r}.")
    if seed is None:
        if tie_orders != 1:
            raise ValueError("several tie orders need a seed (seed=None means the single raster order).")
        return torch.arange(hw).unsqueeze(0)
    gen = torch.Generator().manual_seed(int(seed))
    return torch.stack([torch.randperm(hw, generator=gen) for _ in range(int(tie_orders))])


def pixel_ranks(attributions: Tensor, tie_orders: int = 1, seed: int | None = None) -> Tensor:
    """Rank of every pixel in the order of decreasing attribution, one ranking per tie order.

    Parameters
    ----------
    attributions : Tensor
        (N, H, W) saliency.
    tie_orders, seed
        See :func:`tie_keys`: pixels of equal value are ordered by the keys.

    Returns
    -------
    Tensor
        (R, N, H*W) long on the maps' device; ``ranks[r, i, p] = 0`` for the
        pixel changed first. Tie-free maps give R identical rankings.
    """
    n = attributions.shape[0]
    a = attributions.reshape(n, -1)
    hw = a.shape[1]
    keys = tie_keys(hw, tie_orders, seed).to(a.device)
    out = torch.empty(keys.shape[0], n, hw, dtype=torch.long, device=a.device)
    for r, key in enumerate(keys):
        # sort by key first, then stably by decreasing value: ties keep key order
        by_key = torch.argsort(key)
        order = by_key[torch.argsort(a[:, by_key], dim=1, descending=True, stable=True)]
        out[r].scatter_(1, order, torch.arange(hw, device=a.device).expand(n, hw))
    return out


@torch.no_grad()
def _causal_curve(
    model, x, attributions, target, step, start, finish, batch_size, progress, mode, tie_orders=1, seed=None
) -> CausalCurve:
    n, _, h, w = x.shape
    a = _check_maps(attributions, n, (h, w)).to(x.device)
    hw = h * w
    step = default_step(h, w) if step is None else step
    if not isinstance(step, numbers.Integral) or step < 1:
        raise ValueError(f"step must be a positive number of pixels, got {step!r}.")
    step = int(step)
    n_steps = math.ceil(hw / step)
    n_points = n_steps + 1

    classes = None if callable(target) else resolve_classes(model, x, target, batch_size)
    score = _scorer(target, classes)

    # ranks[r, i, p] = position of pixel p in the r-th order of decreasing
    # attribution (ties broken by tie order r, see pixel_ranks).
    ranks = pixel_ranks(a, tie_orders, seed)

    # All (point, image) pairs, point-major: a chunk of N pairs is one step for all images.
    point_idx = torch.arange(n_points, device=x.device).repeat_interleave(n)
    image_idx = torch.arange(n, device=x.device).repeat(n_points)
    scores = torch.empty(ranks.shape[0], n_points * n, device=x.device)
    chunk = n if batch_size is None else batch_size  # pragma: no mutate (chunk size: memory only, same scores)
    slices = _chunks(n_points * n, chunk)
    for s in tqdm(slices, desc=mode, disable=not progress, leave=False):
        im, pt = image_idx[s], point_idx[s]
        changed = ranks[:, im] < (pt * step)[None, :, None]  # (R, B, HW)
        # A tie order changes the image only where a tie group straddles the
        # step's boundary: evaluate only the (order, pair) whose changed set
        # differs from order 0's, and copy order 0's score elsewhere.
        differs = (changed != changed[:1]).any(dim=2)  # (R, B)
        differs[0] = True
        r_idx, b_idx = differs.nonzero(as_tuple=True)
        vals = torch.empty(r_idx.shape[0], device=x.device)
        for sub in _chunks(r_idx.shape[0], chunk):
            rr, bb = r_idx[sub], b_idx[sub]
            mask = changed[rr, bb].reshape(-1, 1, h, w)
            batch = torch.where(mask, finish[im[bb]], start[im[bb]])
            vals[sub] = score(model(batch), im[bb]).float()
        part = vals[: differs.shape[1]].expand(ranks.shape[0], -1).clone()  # order 0 comes first
        part[r_idx, b_idx] = vals
        scores[:, s] = part
    scores = scores.mean(dim=0).reshape(n_points, n).T.contiguous()
    fractions = torch.clamp(torch.arange(n_points, device=x.device) * step, max=hw).float() / hw
    return CausalCurve(
        auc=curve_auc(scores), fractions=fractions, scores=scores, classes=classes, mode=mode, step=step
    )


def deletion_curve(
    model: Callable[[Tensor], Tensor],
    x: Tensor,
    attributions: Tensor,
    target=None,
    step: int | None = None,
    substrate=0.0,
    batch_size: int | None = None,
    progress: bool = False,
    tie_orders: int = 1,
    seed: int | None = None,
) -> CausalCurve:
    """Deletion curve: remove the most salient pixels first and watch the class score fall.

    Parameters
    ----------
    model : callable
        Classifier (N, C, H, W) -> logits (N, K), in eval mode, on ``x.device``.
    x : Tensor
        Images, (N, C, H, W), in the model's (normalised) input space.
    attributions : Tensor
        (N, H, W) (or (N, 1, H, W)) saliency; pixels are removed in order of
        decreasing value, ties as ``tie_orders`` / ``seed`` say.
    target : None, int, sequence of int, Tensor or callable
        Class scored: None for the originally predicted class (as RISE), an int
        or N ints; or a callable ``logits -> (B,)`` score applied row-wise,
        which replaces the softmax probability.
    step : int, optional
        Pixels removed per step (all channels of a pixel at once). Default
        :func:`default_step`: 224 at 224 x 224 as in RISE and the paper.
    substrate : float, Tensor or callable
        What removed pixels become: 0.0 (RISE: zero in normalised space), a
        tensor broadcastable to ``x``, or a callable ``x -> tensor like x``.
    batch_size : int, optional
        Images per forward pass; default N (one step of every image at once).
    progress : bool
        Show a progress bar over forward passes.
    tie_orders : int
        Number of tie orders averaged (default 1).
    seed : int or None
        None (default): ties in raster order, as before. An int: ties among
        equal attributions are broken by ``tie_orders`` random pixel orders
        drawn from this seed (:func:`tie_keys`), the same for every image,
        method and batch, and the curve is the mean over them. Only steps
        whose boundary splits a group of tied pixels are evaluated more than
        once, so a tie-free map costs one curve. The benchmark uses
        ``tie_orders=TIE_ORDERS, seed=0`` for every method.

    Returns
    -------
    CausalCurve
        ``.scores`` (N, n_points) with ``n_points = ceil(H*W/step) + 1``, the
        first point being the intact image; ``.auc`` (N,) in [0, 1] for a
        probability score. **Lower is better.**

    Notes
    -----
    RISE: Petsiuk, Das, Saenko, BMVC 2018, https://arxiv.org/abs/1806.07421.

    Examples
    --------
    >>> curve = deletion_curve(model, x, attributions, step=16)
    >>> curve.scores.shape, curve.auc.mean()
    """
    _check_images(x)
    _warn_if_training(model)
    finish = _substrate(substrate, x, "substrate")
    return _causal_curve(model, x, attributions, target, step, x, finish, batch_size, progress, "deletion",
                         tie_orders, seed)


def insertion_curve(
    model: Callable[[Tensor], Tensor],
    x: Tensor,
    attributions: Tensor,
    target=None,
    step: int | None = None,
    substrate=None,
    batch_size: int | None = None,
    progress: bool = False,
    tie_orders: int = 1,
    seed: int | None = None,
) -> CausalCurve:
    """Insertion curve: start from a blurred image and put the most salient pixels back first.

    Parameters
    ----------
    model, x, attributions, target, step, batch_size, progress, tie_orders, seed
        As in :func:`deletion_curve`.
    substrate : None, float, Tensor or callable
        The starting image. None: :func:`gaussian_blur` of ``x`` (11 x 11,
        sigma 5, per channel), as in RISE and the paper.

    Returns
    -------
    CausalCurve
        As in :func:`deletion_curve`; the first point is the substrate and the
        last the intact image. **Higher AUC is better.**

    Notes
    -----
    RISE: Petsiuk, Das, Saenko, BMVC 2018, https://arxiv.org/abs/1806.07421.

    Examples
    --------
    >>> insertion_curve(model, x, attributions).auc.mean()
    """
    _check_images(x)
    _warn_if_training(model)
    start = _substrate(gaussian_blur if substrate is None else substrate, x, "substrate")
    return _causal_curve(model, x, attributions, target, step, start, x, batch_size, progress, "insertion",
                         tie_orders, seed)


def deletion_auc(model, x, attributions, target=None, step=None, substrate=0.0, batch_size=None,
                 progress=False, tie_orders=1, seed=None) -> Tensor:
    """Area under the deletion curve, (N,) in [0, 1]; lower is better.

    Same arguments as :func:`deletion_curve`, which returns the curve as well.

    Examples
    --------
    >>> deletion_auc(model, x, attributions).mean()
    """
    return deletion_curve(model, x, attributions, target, step, substrate, batch_size, progress,
                         tie_orders, seed).auc


def insertion_auc(model, x, attributions, target=None, step=None, substrate=None, batch_size=None,
                  progress=False, tie_orders=1, seed=None) -> Tensor:
    """Area under the insertion curve, (N,) in [0, 1]; higher is better.

    Same arguments as :func:`insertion_curve`, which returns the curve as well.

    Examples
    --------
    >>> insertion_auc(model, x, attributions).mean()
    """
    return insertion_curve(model, x, attributions, target, step, substrate, batch_size, progress,
                         tie_orders, seed).auc


# --------------------------------------------------------------------------- re-identification
@dataclass
class Reidentification:
    """Per-layer agreement of the rest of the network with the original classes.

    Attributes
    ----------
    layers : list of int
        Index k of each feature evaluated (``features[k]`` is fed to ``layers[k:]``).
    names : list of str
        Name of the layer that receives ``features[k]``.
    topk : tuple of int
        The k of each top-k agreement, e.g. (1, 5).
    hits : Tensor
        (n_layers, len(topk), N) bool: class within the top k for each image.
    rates : Tensor
        (n_layers, len(topk)) float in [0, 1], mean of ``hits`` over the counted
        images (those not marked failed). Higher is better.
    """

    layers: list[int]
    names: list[str]
    topk: tuple[int, ...]
    hits: Tensor
    rates: Tensor

    def rate(self, k: int = 1) -> Tensor:
        """Return the top-``k`` rate per layer, (n_layers,)."""
        if k not in self.topk:
            raise KeyError(f"top-{k} was not measured; measured: {self.topk}.")
        return self.rates[:, self.topk.index(k)]

    def as_rows(self) -> list[dict]:
        """Return one dict per layer: ``layer``, ``name``, ``top1``, ``top5``, ..."""
        rows = []
        for i, (k, name) in enumerate(zip(self.layers, self.names)):
            row = {"layer": k, "name": name}
            row.update({f"top{t}": float(self.rates[i, j]) for j, t in enumerate(self.topk)})
            rows.append(row)
        return rows


def _topk_hits(out: Tensor, classes: Tensor, topk: Sequence[int]) -> Tensor:
    """(len(topk), B) bool; rows with non-finite outputs never hit."""
    out = out.reshape(out.shape[0], -1).float()
    finite = torch.isfinite(out).all(dim=1)
    kmax = min(max(topk), out.shape[1])
    top = out.nan_to_num(0.0).topk(kmax, dim=1).indices  # (B, kmax)
    match = top == classes.unsqueeze(1)
    return torch.stack([match[:, : min(k, kmax)].any(dim=1) & finite for k in topk])


@torch.no_grad()
def reid_rates(
    stack,
    features: Sequence[Tensor | None],
    classes: Tensor,
    layers: Sequence[int] | None = None,
    topk: Sequence[int] = (1, 5),
    failed: Tensor | None = None,
    batch_size: int | None = None,
) -> Reidentification:
    """Re-identify the class from each layer's inverse feature.

    For each k, ``stack.forward_from(k, features[k])`` runs the rest of the
    network on the inverse feature, and its top-k classes are compared with
    ``classes`` (the class the inverse explains).

    Parameters
    ----------
    stack : LayerStack
        The network as a layer stack (``invnb.layers.LayerStack``); anything
        with ``forward_from(k, h)``, ``layers`` and ``names`` works.
    features : sequence of Tensor
        ``features[k]`` shaped like the forward activation entering layer k
        (``res.features`` of ``LayerwiseInverse.invert``); None entries are skipped.
    classes : Tensor
        (N,) long, the class to re-identify (``res.classes``).
    layers : sequence of int, optional
        Which k to evaluate; default every k < len(stack.layers) with a feature.
    topk : sequence of int
        Ranks to check. k larger than the number of classes counts as all classes.
    failed : Tensor, optional
        (N,) bool; failed images are left out of ``rates`` (as the paper's
        script skips them) but still have ``hits`` (False where non-finite).
    batch_size : int, optional
        Images per forward pass.

    Returns
    -------
    Reidentification
        ``rates`` (n_layers, len(topk)) in [0, 1]; higher is better.

    Examples
    --------
    >>> res = inv.invert(x)
    >>> reid = reid_rates(LayerStack(model), res.features, res.classes)
    >>> reid.rate(1)[0]        # top-1 re-identification from the inverse input
    """
    topk = tuple(int(k) for k in topk)
    if not topk or min(topk) < 1:
        raise ValueError(f"topk must be positive integers, got {topk}.")
    classes = torch.as_tensor(classes).long()
    n = classes.shape[0]
    n_layers = len(stack.layers)
    if layers is None:
        layers = [k for k in range(min(n_layers, len(features))) if features[k] is not None]
    layers = [int(k) for k in layers]
    for k in layers:
        if not 0 <= k < len(features) or features[k] is None:
            raise ValueError(f"no inverse feature for layer {k}: features has {len(features)} entries.")
    names = list(getattr(stack, "names", []))
    hits = torch.zeros(len(layers), len(topk), n, dtype=torch.bool)
    for i, k in enumerate(layers):
        feat = features[k]
        if feat.shape[0] != n:
            raise ValueError(f"features[{k}] has {feat.shape[0]} images but classes has {n}.")
        cls = classes.to(feat.device)
        for s in _chunks(n, batch_size):
            out = stack.forward_from(k, feat[s])
            hits[i, :, s] = _topk_hits(out, cls[s], topk).cpu()
    counted = torch.ones(n, dtype=torch.bool) if failed is None else ~torch.as_tensor(failed).bool().cpu()
    denom = max(int(counted.sum()), 1)
    rates = (hits & counted).sum(dim=2).float() / denom
    layer_names = [names[k] if k < len(names) else "output" for k in layers]
    return Reidentification(layers=layers, names=layer_names, topk=topk, hits=hits, rates=rates)


# --------------------------------------------------------------------------- amount of activation
def amount_of_activation(x_hat: Tensor, x: Tensor, eps: float = 1e-6) -> Tensor:
    """The paper's "amount of activation" ("mean L1 norm") of a kept input.

    Per image: ``r = |x_hat| / (|x| + eps)``, minus each channel's minimum,
    summed over channels, divided by its maximum, then averaged over the H*W
    pixels (``METHOD.md`` section 4, ``compute_mean_l1_norm`` of the paper's code).

    Parameters
    ----------
    x_hat : Tensor
        (N, C, H, W) the kept input (the inverse input, or a masked image).
    x : Tensor
        (N, C, H, W) the original input, same (normalised) space.
    eps : float
        Guard against division by zero (1e-6 in the paper).

    Returns
    -------
    Tensor
        (N,) in [0, 1]; the paper's number is ``.mean()`` over images. Lower
        means less of the input is kept. An image whose normalised map is all
        zero (e.g. ``x_hat == 0``) gets 0, where the paper's code gives NaN.

    Notes
    -----
    The measure is meant for attenuated inputs (``|x_hat| <= |x|`` with
    zeros somewhere, as the inverse input or a masked image). For
    ``x_hat = x`` the ratio is 1 up to ``eps``, the channel minimum removes
    it, and what is left is rounding noise: the result is arbitrary.

    Examples
    --------
    >>> amount_of_activation(res.input, x).mean()
    """
    _check_images(x_hat, "x_hat")
    _check_images(x)
    if x_hat.shape != x.shape:
        raise ValueError(f"x_hat {tuple(x_hat.shape)} and x {tuple(x.shape)} must have the same shape.")
    r = x_hat.abs() / (x.abs() + eps)
    r = r - r.flatten(2).amin(dim=2)[:, :, None, None]
    s = r.sum(dim=1).flatten(1)  # (N, H*W)
    peak = s.amax(dim=1)
    safe = torch.where(peak > 0, peak, torch.ones_like(peak))
    return torch.where(peak > 0, s.sum(dim=1) / safe / s.shape[1], torch.zeros_like(peak))


# --------------------------------------------------------------------------- localisation
def pointing_game(attributions: Tensor, masks: Tensor, tolerance: int = 0, rtol: float = 0.0) -> Tensor:
    """Does the map's maximum fall inside the object?

    Parameters
    ----------
    attributions : Tensor
        (N, H, W) saliency (higher = more salient).
    masks : Tensor
        (N, H, W) bool (or 0/1) ground-truth object masks.
    tolerance : int
        Grow the mask by this many pixels first (Zhang et al. use 15 px at
        224 x 224); 0 by default.
    rtol : float
        Relative tolerance of a tie with the maximum: every pixel with
        ``a >= max - rtol * |max|`` counts as a maximum. 0 (default): only
        exactly equal values tie (the strict rule). The benchmark uses
        :data:`POINTING_RTOL` = 1e-3 for every method: maps made by an
        iterative solver (the inverse's ratio map is about 3 on every fully
        kept pixel) hold hundreds of pixels within 0.1% of their maximum that
        differ only by the solver's stopping error, so the strict rule picks
        one of them at random; a genuine peak of a gradient or perturbation
        map is rarely within 0.1% of another pixel, where both rules agree.

    Returns
    -------
    Tensor
        (N,) float in [0, 1]: 1 for a hit, 0 for a miss. When several pixels
        tie with the maximum, the share of them inside the mask (so a constant
        map scores the mask's area fraction instead of an arbitrary hit).
        Higher is better.

    Notes
    -----
    Zhang et al., "Top-down neural attention by excitation backprop", ECCV 2016,
    https://arxiv.org/abs/1608.00507.

    Examples
    --------
    >>> pointing_game(attributions, masks).mean()                   # strict ties
    >>> pointing_game(attributions, masks, rtol=POINTING_RTOL).mean()  # the benchmark's rule
    """
    a = _check_maps(attributions, attributions.shape[0], tuple(attributions.shape[-2:]))
    m = _check_masks(masks, tuple(a.shape)).to(a.device)
    if tolerance:
        k = 2 * int(tolerance) + 1
        m = F.max_pool2d(m.float().unsqueeze(1), k, stride=1, padding=int(tolerance)).squeeze(1) > 0
    if not 0.0 <= rtol < 1.0:
        raise ValueError(f"rtol must lie in [0, 1), got {rtol}.")
    peak = a.flatten(1).amax(dim=1)[:, None, None]
    top = a >= peak - rtol * peak.abs() if rtol else a == peak
    return (top & m).flatten(1).sum(1).float() / top.flatten(1).sum(1).float()


def mass_in_mask(attributions: Tensor, masks: Tensor) -> Tensor:
    """Share of the attribution mass inside the object mask.

    Parameters
    ----------
    attributions : Tensor
        (N, H, W) saliency; its absolute value is used.
    masks : Tensor
        (N, H, W) bool (or 0/1) ground-truth object masks.

    Returns
    -------
    Tensor
        (N,) in [0, 1]: ``sum(|a| * mask) / sum(|a|)``. Higher is better; a
        uniform map scores the mask's area fraction. An all-zero map is
        treated as uniform (it prefers no pixel).

    Examples
    --------
    >>> mass_in_mask(attributions, masks).mean()
    """
    a = _check_maps(attributions, attributions.shape[0], tuple(attributions.shape[-2:])).abs()
    m = _check_masks(masks, tuple(a.shape)).to(a.device).float()
    total = a.flatten(1).sum(1)
    inside = (a * m).flatten(1).sum(1)
    area = m.flatten(1).mean(1)
    return torch.where(total > 0, inside / torch.where(total > 0, total, torch.ones_like(total)), area)
