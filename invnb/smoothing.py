"""Gaussian smoothing of attribution maps (one job: blur ``(N, H, W)`` maps).

Used by :func:`invnb.inverse.attribution_map` (``map_sigma``): a kept input is
sparse and pixel-wise, so the single largest pixel of its map may be one
isolated kept background pixel; a small blur lets the map's peak sit where
kept pixels are dense.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["gaussian_kernel1d", "gaussian_smooth"]


def gaussian_kernel1d(sigma: float, truncate: float = 4.0, dtype=torch.float32, device=None) -> torch.Tensor:
    """Normalised 1-D Gaussian of standard deviation `sigma` (pixels).

    Radius ``int(truncate * sigma + 0.5)`` as ``scipy.ndimage.gaussian_filter``;
    returns ``(2 * radius + 1,)`` summing to 1.
    """
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a finite number > 0, got {sigma!r}")
    radius = int(truncate * float(sigma) + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / float(sigma)) ** 2)
    return (k / k.sum()).to(dtype=dtype, device=device)


def _reflect_index(n: int, radius: int, device) -> torch.Tensor:
    """Indices of a row of length n padded by `radius` with half-sample symmetry (d c b a | a b c d)."""
    i = torch.arange(-radius, n + radius, device=device) % (2 * n)
    return torch.where(i >= n, 2 * n - 1 - i, i)


def gaussian_smooth(maps: torch.Tensor, sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """Separable Gaussian blur of maps, borders mirrored (scipy's ``mode="reflect"``).

    Parameters
    ----------
    maps : torch.Tensor
        ``(N, H, W)`` floating-point maps.
    sigma : float
        Standard deviation in pixels, > 0 (0 is handled by the caller: no blur).
    truncate : float
        Kernel radius in standard deviations (4, as scipy).

    Returns
    -------
    torch.Tensor
        ``(N, H, W)``, equal to ``scipy.ndimage.gaussian_filter(maps[i], sigma)``
        per image up to float rounding. Each image is blurred on its own
        (no batch mixing); a constant map stays constant.
    """
    if not isinstance(maps, torch.Tensor) or maps.dim() != 3 or not maps.is_floating_point():
        raise ValueError(f"maps must be a floating-point (N, H, W) tensor, got "
                         f"{getattr(maps, 'shape', type(maps).__name__)}")
    k = gaussian_kernel1d(sigma, truncate, maps.dtype, maps.device)
    r = (k.numel() - 1) // 2
    n, h, w = maps.shape
    a = maps.unsqueeze(1)  # (N, 1, H, W)
    a = a.index_select(2, _reflect_index(h, r, maps.device))
    a = F.conv2d(a, k.reshape(1, 1, -1, 1))
    a = a.index_select(3, _reflect_index(w, r, maps.device))
    a = F.conv2d(a, k.reshape(1, 1, 1, -1))
    return a.squeeze(1)
