"""Deletion and insertion curves and their AUC (RISE, Petsiuk et al. 2018)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm

from invnb._utils.blur import gaussian_blur, rise_blur_kernel
from invnb._utils.checks import check_images, check_maps, chunks, warn_if_training
from invnb._utils.classes import resolve_classes

__all__ = ["TIE_ORDERS", "CausalCurve", "curve_auc", "default_step", "rise_blur_kernel", "gaussian_blur", "tie_keys", "pixel_ranks", "deletion_curve", "insertion_curve", "deletion_auc", "insertion_auc"]


#: Random tie orders averaged by the benchmark's deletion / insertion curves.
TIE_ORDERS = 8


#: RISE evaluates 224 x 224 images 224 pixels at a time, i.e. in 224 steps.
RISE_STEPS = 224


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
    a = check_maps(attributions, n, (h, w)).to(x.device)
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
    slices = chunks(n_points * n, chunk)
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
        for sub in chunks(r_idx.shape[0], chunk):
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
    >>> curve.scores.shape                      # 2 images, 257 points (0 .. 4096 pixels in steps of 16)
    torch.Size([2, 257])
    >>> bool(0 <= curve.auc.mean() <= 1)        # lower is better
    True
    """
    check_images(x)
    warn_if_training(model)
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
    >>> insertion_curve(model, x, attributions).scores.shape
    torch.Size([2, 217])
    """
    check_images(x)
    warn_if_training(model)
    start = _substrate(gaussian_blur if substrate is None else substrate, x, "substrate")
    return _causal_curve(model, x, attributions, target, step, start, x, batch_size, progress, "insertion",
                         tie_orders, seed)


def deletion_auc(model, x, attributions, target=None, step=None, substrate=0.0, batch_size=None,
                 progress=False, tie_orders=1, seed=None) -> Tensor:
    """Area under the deletion curve, (N,) in [0, 1]; lower is better.

    Same arguments as :func:`deletion_curve`, which returns the curve as well.

    Examples
    --------
    >>> deletion_auc(model, x, attributions).shape   # one AUC per image, lower is better
    torch.Size([2])
    """
    return deletion_curve(model, x, attributions, target, step, substrate, batch_size, progress,
                         tie_orders, seed).auc


def insertion_auc(model, x, attributions, target=None, step=None, substrate=None, batch_size=None,
                  progress=False, tie_orders=1, seed=None) -> Tensor:
    """Area under the insertion curve, (N,) in [0, 1]; higher is better.

    Same arguments as :func:`insertion_curve`, which returns the curve as well.

    Examples
    --------
    >>> insertion_auc(model, x, attributions).shape  # one AUC per image, higher is better
    torch.Size([2])
    """
    return insertion_curve(model, x, attributions, target, step, substrate, batch_size, progress,
                         tie_orders, seed).auc
