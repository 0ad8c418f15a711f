"""Localisation against ground-truth object masks: the pointing game and the mass in the mask."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from invnb._utils.checks import check_maps, check_masks

__all__ = ["POINTING_RTOL", "pointing_game", "mass_in_mask"]


#: Relative tolerance of the tie-tolerant pointing game (see :func:`pointing_game`).
POINTING_RTOL = 1e-3


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
    >>> pointing_game(masks.float(), masks)                        # the mask itself points at the object
    tensor([1., 1.])
    >>> pointing_game(attributions, masks, rtol=POINTING_RTOL).shape  # the benchmark's rule
    torch.Size([2])
    """
    a = check_maps(attributions, attributions.shape[0], tuple(attributions.shape[-2:]))
    m = check_masks(masks, tuple(a.shape)).to(a.device)
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
    >>> mass_in_mask(masks.float(), masks)
    tensor([1., 1.])
    """
    a = check_maps(attributions, attributions.shape[0], tuple(attributions.shape[-2:])).abs()
    m = check_masks(masks, tuple(a.shape)).to(a.device).float()
    total = a.flatten(1).sum(1)
    inside = (a * m).flatten(1).sum(1)
    area = m.flatten(1).mean(1)
    return torch.where(total > 0, inside / torch.where(total > 0, total, torch.ones_like(total)), area)
