"""Baseline attribution methods behind one call shape, for side-by-side comparison.

Every method is built from a model and called per batch:
``method.attribute(x, target) -> (N, H, W)`` raw, non-negative map on ``x.device``
(never normalised: normalise in :mod:`invnb.plot` so panels can share a scale).

=========================== ==================================================== ===================================
name                        method                                               reduction to (N, H, W)
=========================== ==================================================== ===================================
``saliency``                captum ``Saliency`` (gradient)                       sum over channels of ``|grad|``
``input_x_gradient``        captum ``InputXGradient`` (gradient x input)         sum over channels of ``|x * grad|``
``integrated_gradients``    captum ``IntegratedGradients``, zero baseline        sum over channels of ``|attr|``
``guided_backprop``         captum ``GuidedBackprop`` on a copy of the model     sum over channels of ``|attr|``
``grad_cam``                captum ``LayerGradCam``, last conv layer, upsampled  ReLU of the map, bilinear upsampling
``occlusion``               captum ``Occlusion``, zero patches                   positive part of the score drop
``rise``                    RISE (implemented here), seeded random masks         its own (probability-weighted masks)
``extremal_perturbation``   extremal perturbation (implemented here), areas      sum of the masks over the areas
                            0.05 / 0.1 / 0.2, preservation game
``random``                  uniform noise, seeded                                 --
``uniform``                 a constant map (no preference)                       --
``sobel``                   Sobel edge magnitude of the image                    sum over channels
``inverse``                 :class:`invnb.inverse.LayerwiseInverse`              the engine's map (default
                                                                                 ``a * G_6(a)``, ``a = sum_c |x_hat| |x|``
                                                                                 clipped at its kept values' 90th
                                                                                 percentile, plus a faint fill)
``inverse_paper``           ``LayerwiseInverse.paper`` (the paper's setting)     ``sum_c |x_hat| / (|x| + 1e-6)``
=========================== ==================================================== ===================================

``target`` is None (the predicted class), an int, or N ints. Methods never
change the caller's model: gradient methods leave no ``.grad`` and no hooks
behind, and methods that need a modified network work on a deep copy.

Examples
--------
>>> for name in ("saliency", "grad_cam", "rise", "inverse"):
...     maps[name] = make_method(name, model).attribute(x)     # each (N, H, W)
"""

from __future__ import annotations

import copy
import math
import numbers
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from .metrics import _check_images, _chunks, resolve_classes

__all__ = [
    "AttributionMethod",
    "CaptumMethod",
    "ConstantMap",
    "ExtremalPerturbation",
    "GradCam",
    "GuidedBackpropMethod",
    "InverseMethod",
    "OcclusionMethod",
    "RandomMap",
    "Rise",
    "SobelMap",
    "available_methods",
    "make_method",
]


class AttributionMethod:
    """Base class: one call shape for every attribution method.

    Parameters
    ----------
    model : nn.Module
        Classifier (N, C, H, W) -> logits (N, K), in eval mode.
    batch_size : int, optional
        Images per call of the underlying method (all at once when None).

    Notes
    -----
    Subclasses implement ``_attribute(x, classes) -> (B, H, W)`` for one
    batch of images and their (B,) long classes.
    """

    name = "base"

    def __init__(self, model: nn.Module, batch_size: int | None = None):
        if batch_size is not None and (not isinstance(batch_size, numbers.Integral) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}.")
        self.model = model
        self.batch_size = batch_size

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    def attribute(self, x: Tensor, target=None) -> Tensor:
        """Attribution map for each image.

        Parameters
        ----------
        x : Tensor
            Images, (N, C, H, W), in the model's (normalised) input space.
        target : None, int, sequence of int or Tensor
            Class to explain: None for the predicted class, an int for all
            images, or N ints.

        Returns
        -------
        Tensor
            (N, H, W) float, non-negative, raw (not normalised), on ``x.device``.
        """
        _check_images(x)
        x = x.detach()
        classes = resolve_classes(self.model, x, target, self.batch_size)
        parts = [self._attribute(x[s], classes[s]) for s in _chunks(x.shape[0], self.batch_size)]
        out = torch.cat(parts).detach()
        return out.to(x.device)

    def _attribute(self, x: Tensor, classes: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


# --------------------------------------------------------------------------- captum wrappers
def _sum_abs(attr: Tensor) -> Tensor:
    return attr.abs().sum(dim=1)


def _fresh_relus(model: nn.Module) -> nn.Module:
    """Deep copy of ``model`` whose every ReLU is a new, distinct, out-of-place module.

    captum's Guided Backprop and layer hooks need this: an in-place ReLU
    overwrites the tensor a hook captured, and a ReLU module registered in
    several places would receive one backward hook per use.
    """
    clone = copy.deepcopy(model)
    for parent in clone.modules():
        for child_name, child in list(parent.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(parent, child_name, nn.ReLU(inplace=False))
    return clone


def _follow_device(module: nn.Module, x: Tensor) -> None:
    """Move a private model copy to ``x``'s device (the caller may have moved the original)."""
    p = next(module.parameters(), None)
    if p is not None and p.device != x.device:
        module.to(x.device)


def _check_relus_used_once(model: nn.Module, x: Tensor) -> None:
    counts: dict[int, int] = {}
    handles = [
        m.register_forward_hook(lambda mod, inp, out: counts.__setitem__(id(mod), counts.get(id(mod), 0) + 1))
        for m in model.modules()
        if isinstance(m, nn.ReLU)
    ]
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in handles:
            h.remove()
    if any(c > 1 for c in counts.values()):
        raise ValueError(
            "a ReLU module is called more than once in the model's forward pass (e.g. `self.relu` reused "
            "in a residual block); Guided Backprop needs one ReLU module per use. Give each use its own nn.ReLU."
        )


class CaptumMethod(AttributionMethod):
    """Wrap a captum gradient attribution class, reducing channels by ``sum |.|``.

    Parameters
    ----------
    model : nn.Module
        Classifier in eval mode.
    captum_cls : type
        A captum attribution class taking ``forward_func`` at construction
        (``Saliency``, ``InputXGradient``, ``IntegratedGradients``, ...).
    name : str
        Name used in tables.
    batch_size : int, optional
        Images per captum call.
    **attribute_kw
        Extra keyword arguments of captum's ``attribute`` (e.g. ``n_steps``).

    Examples
    --------
    >>> from captum.attr import Saliency
    >>> CaptumMethod(model, Saliency, "saliency").attribute(x)     # (N, H, W)
    """

    def __init__(self, model: nn.Module, captum_cls: type, name: str, batch_size: int | None = None, **attribute_kw):
        super().__init__(model, batch_size)
        self.name = name
        self._method = captum_cls(model)
        self._attribute_kw = attribute_kw

    def _attribute(self, x: Tensor, classes: Tensor) -> Tensor:
        inp = x.clone().requires_grad_(True)
        attr = self._method.attribute(inp, target=classes, **self._attribute_kw)
        return _sum_abs(attr.detach())


class GuidedBackpropMethod(CaptumMethod):
    """captum ``GuidedBackprop`` on a copy of the model with fresh, out-of-place ReLUs.

    Guided Backprop overrides the gradient of every ``nn.ReLU`` module through
    backward hooks. Those break on in-place ReLUs (torchvision's VGG uses
    them) and on ReLU modules reused in several places, so the method runs on
    a deep copy whose ReLUs are all new ``nn.ReLU(inplace=False)`` modules;
    the caller's model is untouched. ReLUs applied functionally
    (``F.relu`` in ``forward``) are not seen by captum and keep their plain
    gradient. Reduction: sum over channels of ``|attr|``.

    Parameters
    ----------
    model : nn.Module
        Classifier in eval mode (copied once, at construction: later changes
        to its weights are not seen).
    batch_size : int, optional
        Images per captum call.
    """

    def __init__(self, model: nn.Module, batch_size: int | None = None):
        from captum.attr import GuidedBackprop

        self._copy = _fresh_relus(model)
        super().__init__(self._copy, GuidedBackprop, "guided_backprop", batch_size)
        self.model = model  # predictions come from the caller's model
        self._checked = False

    def _attribute(self, x: Tensor, classes: Tensor) -> Tensor:
        _follow_device(self._copy, x)
        if not self._checked:
            _check_relus_used_once(self._copy, x)
            self._checked = True
        with warnings.catch_warnings():
            # captum warns on every call that it sets (and later removes) ReLU hooks.
            warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
            return super()._attribute(x, classes)


def _resolve_layer(model: nn.Module, layer: str | nn.Module | None) -> str:
    """Qualified name of the Grad-CAM layer (default: rectified output of the last Conv2d)."""
    named = dict(model.named_modules())
    if isinstance(layer, str):
        if layer not in named:
            raise ValueError(f"no module named {layer!r} in the model; use a name from model.named_modules().")
        return layer
    if isinstance(layer, nn.Module):
        for name, mod in named.items():
            if mod is layer:
                return name
        raise ValueError("the given layer module is not part of the model.")
    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    convs = [i for i, (_, m) in enumerate(leaves) if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("the model has no Conv2d layer; pass `layer=` to choose the Grad-CAM layer.")
    i = convs[-1]
    # Grad-CAM explains the conv layer's feature maps A^k, i.e. after its ReLU
    # (and a BatchNorm before it, if any).
    while i + 1 < len(leaves) and isinstance(leaves[i + 1][1], (nn.BatchNorm2d, nn.ReLU)):
        i += 1
        if isinstance(leaves[i][1], nn.ReLU):
            break
    return leaves[i][0]


class GradCam(AttributionMethod):
    """Grad-CAM through captum's ``LayerGradCam``, upsampled to the input size.

    Parameters
    ----------
    model : nn.Module
        Classifier in eval mode (a copy with out-of-place ReLUs, made at
        construction, is hooked, so the caller's model is untouched).
    layer : str or nn.Module, optional
        Layer whose output is explained. Default: the rectified output of the
        last ``Conv2d`` (the ReLU that follows it), as in Selvaraju et al.
    upsample : str
        ``F.interpolate`` mode for the upsampling to (H, W); ``"bilinear"``.
    batch_size : int, optional
        Images per call.

    Notes
    -----
    Reduction: captum's channel-weighted sum, then ReLU
    (``relu_attributions=True``), then upsampling.
    Selvaraju et al., ICCV 2017, https://arxiv.org/abs/1610.02391.
    """

    name = "grad_cam"

    def __init__(self, model: nn.Module, layer: str | nn.Module | None = None, upsample: str = "bilinear",
                 batch_size: int | None = None):
        from captum.attr import LayerGradCam

        super().__init__(model, batch_size)
        layer_name = _resolve_layer(model, layer)
        self._copy = _fresh_relus(model)
        self.layer = layer_name
        self.upsample = upsample
        self._method = LayerGradCam(self._copy, dict(self._copy.named_modules())[layer_name])

    def _attribute(self, x: Tensor, classes: Tensor) -> Tensor:
        _follow_device(self._copy, x)
        inp = x.clone().requires_grad_(True)
        cam = self._method.attribute(inp, target=classes, relu_attributions=True).detach()
        if cam.dim() != 4:
            raise ValueError(f"Grad-CAM layer {self.layer!r} does not output a (N, C, h, w) feature map.")
        kw = {"align_corners": False} if self.upsample in ("bilinear", "bicubic") else {}
        cam = F.interpolate(cam, size=x.shape[-2:], mode=self.upsample, **kw)
        return cam.sum(dim=1).clamp(min=0)


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
    >>> Rise(model, n_masks=2000, seed=0).attribute(x)        # (N, H, W)
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
        for s in _chunks(self.n_masks, 256):
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
        slices = _chunks(self.n_masks, self.mask_batch)
        for s in tqdm(slices, desc="rise", disable=not self.progress, leave=False):
            m = masks[s].to(x.device, x.dtype)  # (B, 1, H, W)
            for i in range(n):
                p = torch.softmax(self.model(x[i: i + 1] * m).float(), dim=1)[:, classes[i]]  # (B,)
                sal[i] += (p[:, None, None] * m[:, 0].float()).sum(dim=0)
        return sal / (self.n_masks * self.p_keep)


# --------------------------------------------------------------------------- extremal perturbation
class ExtremalPerturbation(AttributionMethod):
    """Extremal perturbation: for each area, the smooth mask of that area that best preserves the class.

    Fong, Patrick, Vedaldi, "Understanding deep networks via extremal
    perturbations and smooth masks", ICCV 2019, https://arxiv.org/abs/1910.08485
    (the "preservation game"). Written here from the paper; the authors'
    TorchRay (last release 2020) is not used.

    For every image and every area ``a`` in ``areas`` a mask ``m`` in [0, 1]
    is optimised with Adam to maximise the log-probability of the class on
    the perturbed image ``m * x + (1 - m) * s`` (``s`` the substrate) while
    its sorted values are pulled towards those of a mask of exactly
    ``a * H * W`` ones (the paper's rank-based area loss,
    ``mean((sort(m) - r_a)**2)``), with a weight that grows geometrically
    from ``area_weight / 100`` to ``area_weight`` over the steps. All images
    and areas are optimised in one batch.

    Parameters
    ----------
    model : nn.Module
        Classifier in eval mode.
    areas : sequence of float
        Mask areas as fractions of the image, each in (0, 1).
    steps : int
        Adam steps (the paper uses 800 at 224 x 224). 40 by default: on 20
        held-out synthetic images 40 and 80 steps gave the same pointing
        (0.92 / 0.91) and mass in the object (0.58 / 0.60), every mask
        within 0.015 of its area and keeping the class.
    grid : int, optional
        Side of the mask's parameter grid; default ``H // 4`` (16 at 64 x 64).
        The mask is its bilinear upsampling to (H, W): smooth at that scale.
    lr : float
        Adam learning rate on the parameters (clamped to [0, 1] after each step).
    area_weight : float
        Final weight of the area loss.
    substrate : str
        ``"fade"``: 0 (the mean colour in normalised space, like the deletion
        metric and every kept input here); ``"blur"``: :func:`invnb.metrics.gaussian_blur`
        of ``x`` (11 x 11, sigma 5; the paper blurs).
    batch_size : int, optional
        Images per optimisation batch (each holds ``len(areas)`` masks).

    Notes
    -----
    The map returned by :meth:`attribute` is the sum of the masks over the
    areas, so pixels kept even by the smallest mask rank first (the paper
    shows the masks area by area). :meth:`explain` also returns each mask and
    the *kept input* ``x * m`` of the smallest area whose kept input still
    gives the class (the largest area when none does). Simplified from the
    paper: bilinear upsampling instead of its smooth-max-of-Gaussians mask
    generator, log-probability instead of its logit reward, a fixed
    geometric ramp of the area weight, fewer steps. No randomness: the result
    is deterministic (up to floating-point summation order).
    """

    name = "extremal_perturbation"

    def __init__(self, model: nn.Module, areas=(0.05, 0.1, 0.2), steps: int = 40, grid: int | None = None,
                 lr: float = 0.1, area_weight: float = 100.0, substrate: str = "fade",
                 batch_size: int | None = None):
        super().__init__(model, batch_size)
        areas = tuple(float(a) for a in areas)
        if not areas or not all(0.0 < a < 1.0 for a in areas):
            raise ValueError(f"areas must be fractions in (0, 1), got {areas}.")
        if steps < 1 or lr <= 0 or area_weight <= 0:
            raise ValueError(f"need steps >= 1, lr > 0 and area_weight > 0; got {steps}, {lr}, {area_weight}.")
        if substrate not in ("fade", "blur"):
            raise ValueError(f"substrate must be 'fade' or 'blur', got {substrate!r}.")
        if grid is not None and grid < 1:
            raise ValueError(f"grid must be a positive integer, got {grid}.")
        self.areas, self.steps, self.grid, self.lr = tuple(sorted(areas)), int(steps), grid, float(lr)
        self.area_weight, self.substrate = float(area_weight), substrate

    def explain(self, x: Tensor, target=None) -> dict[str, Tensor]:
        """Masks, map and kept input of every image.

        Parameters
        ----------
        x : Tensor
            Images, (N, C, H, W).
        target : None, int, sequence of int or Tensor
            Class to preserve (None: the predicted class).

        Returns
        -------
        dict
            ``"masks"`` (N, A, H, W) in [0, 1], one per area (ascending);
            ``"attribution"`` (N, H, W) their sum; ``"area"`` (N,) the chosen
            area; ``"kept"`` (N, C, H, W) ``x`` times the chosen mask;
            ``"preserved"`` (N, A) bool, whether ``x * m`` keeps the class.
        """
        _check_images(x)
        x = x.detach()
        classes = resolve_classes(self.model, x, target, self.batch_size)
        parts = [self._explain(x[s], classes[s]) for s in _chunks(x.shape[0], self.batch_size)]
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}

    def _attribute(self, x: Tensor, classes: Tensor) -> Tensor:
        return self._explain(x, classes)["attribution"]

    def _explain(self, x: Tensor, classes: Tensor) -> dict[str, Tensor]:
        from .metrics import gaussian_blur

        n, _, h, w = x.shape
        n_areas = len(self.areas)
        g = self.grid or max(1, h // 4)
        hw = h * w
        # reference sorted masks: a * H * W ones, then zeros (descending sort)
        ref = torch.zeros(n_areas, hw, device=x.device)
        for j, a in enumerate(self.areas):
            ref[j, : int(round(a * hw))] = 1.0
        ref = ref.repeat(n, 1)  # (N * A, HW), image-major
        xs = x.repeat_interleave(n_areas, dim=0)
        cls = classes.repeat_interleave(n_areas)
        sub = torch.zeros_like(xs) if self.substrate == "fade" else gaussian_blur(xs)
        param = torch.full((n * n_areas, 1, g, g), 0.5, device=x.device, requires_grad=True)
        opt = torch.optim.Adam([param], lr=self.lr)
        ramp = 100.0 ** (1.0 / max(self.steps - 1, 1))
        weight = self.area_weight / 100.0
        with torch.enable_grad():
            for _ in range(self.steps):
                m = F.interpolate(param, size=(h, w), mode="bilinear", align_corners=False)
                out = self.model(m * xs + (1 - m) * sub)
                reward = torch.log_softmax(out.float(), dim=1).gather(1, cls[:, None]).squeeze(1)
                area = (m.flatten(1).sort(dim=1, descending=True).values - ref).pow(2).mean(dim=1)
                loss = (-reward + weight * area).sum()
                # gradient of the parameters only: the model's .grad stays untouched
                (param.grad,) = torch.autograd.grad(loss, param)
                opt.step()
                with torch.no_grad():
                    param.clamp_(0.0, 1.0)
                weight *= ramp
        with torch.no_grad():
            m = F.interpolate(param, size=(h, w), mode="bilinear", align_corners=False)  # (N*A, 1, H, W)
            kept = xs * m
            preserved = torch.cat([self.model(kept[s]).argmax(1) for s in _chunks(len(kept), 256)]) == cls
            masks = m.reshape(n, n_areas, h, w)
            preserved = preserved.reshape(n, n_areas)
            # smallest preserving area; the largest when none preserves
            idx = torch.where(preserved.any(1), preserved.float().argmax(1), torch.full_like(classes, n_areas - 1))
            chosen = masks[torch.arange(n, device=x.device), idx]
            areas = torch.tensor(self.areas, device=x.device)
        return {"masks": masks.detach(), "attribution": masks.sum(1).detach(), "area": areas[idx],
                "kept": x * chosen.unsqueeze(1), "preserved": preserved}


# --------------------------------------------------------------------------- trivial baselines
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
        _check_images(x)
        n, _, h, w = x.shape
        return torch.rand(n, h, w, generator=self._gen).to(x.device)


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
        _check_images(x)
        n, _, h, w = x.shape
        return torch.full((n, h, w), self.value, device=x.device)


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
        _check_images(x)
        c = x.shape[1]
        gx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=x.device, dtype=x.dtype)
        k = torch.stack([gx, gx.T]).unsqueeze(1).repeat(c, 1, 1, 1)  # (2C, 1, 3, 3)
        g = F.conv2d(F.pad(x.detach(), (1, 1, 1, 1), mode="replicate"), k, groups=c)
        g = g.reshape(x.shape[0], c, 2, *x.shape[-2:])
        return g.pow(2).sum(dim=2).sqrt().sum(dim=1)


# --------------------------------------------------------------------------- the inverse
class InverseMethod(AttributionMethod):
    """Adapter: :class:`invnb.inverse.LayerwiseInverse` in the common loop.

    Parameters
    ----------
    model : nn.Module
        Classifier in eval mode.
    paper : bool
        Use ``LayerwiseInverse.paper(model)`` (the paper's exact setting)
        instead of the default inverse.
    **inverse_kw
        Keyword arguments of ``LayerwiseInverse`` (``mask_weight``,
        ``penalty``, ``max_iter``, ...).

    Notes
    -----
    Reduction: the engine's `attribution_map` (the paper's setting:
    ``sum_c |x_hat| / (|x| + 1e-6)``), max-normalised per image by the engine
    (the only method here whose map is normalised, as in the paper).
    """

    def __init__(self, model: nn.Module, paper: bool = False, **inverse_kw):
        from .inverse import LayerwiseInverse

        super().__init__(model, None)
        self.name = "inverse_paper" if paper else "inverse"
        self.inverse = LayerwiseInverse.paper(model, **inverse_kw) if paper else LayerwiseInverse(model, **inverse_kw)

    def attribute(self, x: Tensor, target=None) -> Tensor:
        """(N, H, W) in [0, 1], the inverse's attribution map."""
        _check_images(x)
        return self.inverse.attribute(x, target=target)


# --------------------------------------------------------------------------- registry
def _captum(cls_name: str, name: str, **fixed) -> Callable[..., AttributionMethod]:
    def factory(model: nn.Module, batch_size: int | None = None, **kw) -> AttributionMethod:
        import captum.attr

        return CaptumMethod(model, getattr(captum.attr, cls_name), name, batch_size, **{**fixed, **kw})

    return factory


def _integrated_gradients(model: nn.Module, batch_size: int | None = None, n_steps: int = 50, **kw):
    from captum.attr import IntegratedGradients

    return CaptumMethod(model, IntegratedGradients, "integrated_gradients", batch_size,
                        n_steps=n_steps, baselines=0.0, internal_batch_size=batch_size, **kw)


_REGISTRY: dict[str, Callable[..., AttributionMethod]] = {
    "saliency": _captum("Saliency", "saliency"),
    "input_x_gradient": _captum("InputXGradient", "input_x_gradient"),
    "integrated_gradients": _integrated_gradients,
    "guided_backprop": GuidedBackpropMethod,
    "grad_cam": GradCam,
    "occlusion": OcclusionMethod,
    "rise": Rise,
    "extremal_perturbation": ExtremalPerturbation,
    "random": RandomMap,
    "uniform": ConstantMap,
    "sobel": SobelMap,
    "inverse": InverseMethod,
    "inverse_paper": lambda model, **kw: InverseMethod(model, paper=True, **kw),
}


def available_methods() -> list[str]:
    """Names accepted by :func:`make_method`, in table order."""
    return list(_REGISTRY)


def make_method(name: str, model: nn.Module, **kw) -> AttributionMethod:
    """Build an attribution method by name.

    Parameters
    ----------
    name : str
        One of :func:`available_methods`.
    model : nn.Module
        Classifier in eval mode.
    **kw
        Passed to the method's constructor (e.g. ``batch_size``, ``n_masks``,
        ``seed``, ``layer``, ``mask_weight``).

    Returns
    -------
    AttributionMethod
        An object with ``.name`` and ``.attribute(x, target) -> (N, H, W)``.

    Examples
    --------
    >>> methods = {n: make_method(n, model) for n in ("saliency", "rise", "sobel")}
    >>> maps = {n: m.attribute(x) for n, m in methods.items()}
    """
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; choose one of {available_methods()}.") from None
    return factory(model, **kw)
