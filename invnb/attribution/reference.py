"""Reference maps that explain nothing: random, uniform and an edge detector."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from invnb._utils.checks import check_images
from invnb.attribution.base import AttributionMethod, register

__all__ = ["RandomMap", "ConstantMap", "SobelMap"]


# --------------------------------------------------------------------------- trivial baselines
@register("random")
class RandomMap(AttributionMethod):
    """Uniform random noise in [0, 1): the "no information" baseline.

    Parameters
    ----------
    model : nn.Module
        Only used to predict classes (the map ignores them).
    seed : int
        Seed of the noise; a new method with the same seed repeats the same
        sequence of maps (the generator advances across calls).
    """

    name = "random"

    def __init__(self, model: nn.Module, seed: int = 0, batch_size: int | None = None):
        super().__init__(model, batch_size)
        self._gen = torch.Generator().manual_seed(int(seed))

    def attribute(self, x: Tensor, target=None) -> Tensor:
        """(N, H, W) noise in [0, 1), independent of ``x`` and ``target``."""
        check_images(x)
        n, _, h, w = x.shape
        return torch.rand(n, h, w, generator=self._gen).to(x.device)


@register("uniform")
class ConstantMap(AttributionMethod):
    """A constant map: prefers no pixel (deletion then removes pixels in raster order).

    Parameters
    ----------
    model : nn.Module
        Unused (kept for the common call shape).
    value : float
        The constant, 1.0 by default (a soft mask ``x * a`` then keeps the
        whole image).
    """

    name = "uniform"

    def __init__(self, model: nn.Module | None = None, value: float = 1.0, batch_size: int | None = None):
        super().__init__(model, batch_size)
        if value < 0:
            raise ValueError(f"value must be non-negative (maps are non-negative), got {value}.")
        self.value = float(value)

    def attribute(self, x: Tensor, target=None) -> Tensor:
        """(N, H, W) filled with ``value``."""
        check_images(x)
        n, _, h, w = x.shape
        return torch.full((n, h, w), self.value, device=x.device)


@register("sobel")
class SobelMap(AttributionMethod):
    """Edge magnitude of the image: a model-free baseline.

    ``sqrt(gx**2 + gy**2)`` of the 3 x 3 Sobel filters on each channel
    (replicate padding), summed over channels.

    Parameters
    ----------
    model : nn.Module
        Unused (kept for the common call shape).
    """

    name = "sobel"

    def attribute(self, x: Tensor, target=None) -> Tensor:
        """(N, H, W) non-negative edge map of ``x``."""
        check_images(x)
        c = x.shape[1]
        gx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=x.device, dtype=x.dtype)
        k = torch.stack([gx, gx.T]).unsqueeze(1).repeat(c, 1, 1, 1)  # (2C, 1, 3, 3)
        g = F.conv2d(F.pad(x.detach(), (1, 1, 1, 1), mode="replicate"), k, groups=c)
        g = g.reshape(x.shape[0], c, 2, *x.shape[-2:])
        return g.pow(2).sum(dim=2).sqrt().sum(dim=1)
