"""RISE's Gaussian blur (the insertion substrate), shared by the metrics and extremal perturbation."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from invnb._utils.checks import check_images

__all__ = ["gaussian_blur", "rise_blur_kernel"]


@lru_cache(maxsize=8)  # pragma: no mutate (cache size: speed only)
def _kernel_np(kernel_size: int, sigma: float) -> np.ndarray:
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
    return torch.from_numpy(_kernel_np(int(kernel_size), float(sigma)).astype(np.float32))


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
    check_images(x)
    k = rise_blur_kernel(kernel_size, sigma).to(device=x.device, dtype=x.dtype)
    c = x.shape[1]
    weight = k.expand(c, 1, kernel_size, kernel_size)
    return F.conv2d(x, weight, padding=kernel_size // 2, groups=c)
