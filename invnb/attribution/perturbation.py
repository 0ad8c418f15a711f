"""Perturbation methods: occlusion and RISE."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from invnb._utils.checks import chunks
from invnb.attribution.base import AttributionMethod, register

__all__ = ["OcclusionMethod", "Rise"]


@register("occlusion")
class OcclusionMethod(AttributionMethod):
    """captum ``Occlusion``: the drop of the class logit when a patch is set to zero.

    Parameters
    ----------
    model : nn.Module
        Classifier in eval mode.
    window : int, optional
        Side of the square occluding patch in pixels; default ``max(2, H // 14)``
        (16 at 224 x 224, 4 at 64 x 64).
    stride : int, optional
        Patch stride; default ``max(1, window // 2)``.
    baseline : float
        Value of occluded pixels (0 = mean colour in normalised space).
    batch_size : int, optional
        Images per call.
    perturbations_per_eval : int
        Occluded copies per forward pass (captum's argument), 64.
    progress : bool
        Show captum's progress bar.

    Notes
    -----
    Reduction: the map is identical on all channels (the patch covers all of
    them); its positive part (evidence *for* the class) is returned.
    Zeiler & Fergus, ECCV 2014, https://arxiv.org/abs/1311.2901.
    """

    name = "occlusion"

    def __init__(self, model: nn.Module, window: int | None = None, stride: int | None = None,
                 baseline: float = 0.0, batch_size: int | None = None, perturbations_per_eval: int = 64,
                 progress: bool = False):
        from captum.attr import Occlusion

        super().__init__(model, batch_size)
        self.window, self.stride, self.baseline, self.progress = window, stride, baseline, progress
        self.perturbations_per_eval = int(perturbations_per_eval)
        self._method = Occlusion(model)

    def _attribute(self, x: Tensor, classes: Tensor) -> Tensor:
        c, h, _ = x.shape[1:]
        window = self.window or max(2, h // 14)
        stride = self.stride or max(1, window // 2)
        with torch.no_grad():
            attr = self._method.attribute(
                x, sliding_window_shapes=(c, window, window), strides=(c, stride, stride),
                baselines=self.baseline, target=classes, perturbations_per_eval=self.perturbations_per_eval,
                show_progress=self.progress,
            )
        return attr[:, 0].clamp(min=0)


# --------------------------------------------------------------------------- RISE
@register("rise")
class Rise(AttributionMethod):
    """RISE: average of random masks weighted by the class probability they keep.

    Parameters
    ----------
    model : nn.Module
        Classifier in eval mode.
    n_masks : int
        Number of random masks (4000-8000 in the RISE paper at 224 x 224).
    grid : int
        Side of the coarse random grid (7 in RISE at 224 x 224).
    p_keep : float
        Probability that a grid cell is kept (0.5 in RISE).
    seed : int
        Seed of the masks; the same seed gives the same maps on CPU and CUDA
        (masks are drawn on the CPU).
    batch_size : int, optional
        Masked images per forward pass (default 64).
    progress : bool
        Show a progress bar over mask batches.

    Notes
    -----
    Masks: a ``grid x grid`` Bernoulli(``p_keep``) grid, upsampled bilinearly to
    ``(grid + 1) * cell`` with ``cell = ceil(H / grid)`` and cropped at a random
    shift in ``[0, cell)``, as in RISE. The map for class c is
    ``sum_i softmax(model(x * M_i))_c * M_i / (n_masks * p_keep)``; the same
    masks are used for every image. Masked pixels become 0 (the mean colour
    in normalised space).
    Petsiuk, Das, Saenko, BMVC 2018, https://arxiv.org/abs/1806.07421.

    Examples
    --------
    >>> Rise(model, n_masks=200, seed=0).attribute(x).shape
    torch.Size([2, 64, 64])
    """

    name = "rise"

    def __init__(self, model: nn.Module, n_masks: int = 4000, grid: int = 7, p_keep: float = 0.5, seed: int = 0,
                 batch_size: int | None = 64, progress: bool = False):
        super().__init__(model, None)
        if n_masks < 1 or grid < 1 or not 0 < p_keep <= 1:
            raise ValueError(f"need n_masks >= 1, grid >= 1 and 0 < p_keep <= 1; got {n_masks}, {grid}, {p_keep}.")
        self.n_masks, self.grid, self.p_keep, self.seed = int(n_masks), int(grid), float(p_keep), int(seed)
        self.mask_batch = int(batch_size) if batch_size else 64
        self.progress = progress
        self._masks: Tensor | None = None

    def masks(self, height: int, width: int) -> Tensor:
        """The random masks, (n_masks, 1, H, W) float in [0, 1] on the CPU (cached)."""
        if self._masks is not None and self._masks.shape[-2:] == (height, width):
            return self._masks
        gen = torch.Generator().manual_seed(self.seed)
        cell_h, cell_w = math.ceil(height / self.grid), math.ceil(width / self.grid)
        up = ((self.grid + 1) * cell_h, (self.grid + 1) * cell_w)
        out = torch.empty(self.n_masks, 1, height, width)
        for s in chunks(self.n_masks, 256):
            n = s.stop - s.start
            cells = (torch.rand(n, 1, self.grid, self.grid, generator=gen) < self.p_keep).float()
            big = F.interpolate(cells, size=up, mode="bilinear", align_corners=False)
            dy = torch.randint(0, cell_h, (n,), generator=gen)
            dx = torch.randint(0, cell_w, (n,), generator=gen)
            for j in range(n):
                out[s.start + j, 0] = big[j, 0, dy[j]: dy[j] + height, dx[j]: dx[j] + width]
        self._masks = out
        return out

    @torch.no_grad()
    def _attribute(self, x: Tensor, classes: Tensor) -> Tensor:
        n, _, h, w = x.shape
        masks = self.masks(h, w)
        sal = torch.zeros(n, h, w, device=x.device, dtype=torch.float32)
        slices = chunks(self.n_masks, self.mask_batch)
        for s in tqdm(slices, desc="rise", disable=not self.progress, leave=False):
            m = masks[s].to(x.device, x.dtype)  # (B, 1, H, W)
            for i in range(n):
                p = torch.softmax(self.model(x[i: i + 1] * m).float(), dim=1)[:, classes[i]]  # (B,)
                sal[i] += (p[:, None, None] * m[:, 0].float()).sum(dim=0)
        return sal / (self.n_masks * self.p_keep)
