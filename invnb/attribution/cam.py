"""Grad-CAM at the last convolution."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from invnb.attribution.base import AttributionMethod, register
from invnb.attribution.gradients import follow_device, fresh_relus

__all__ = ["GradCam"]


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
    block = _last_residual_block(model, named)
    if block is not None:
        return block
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


def _last_residual_block(model: nn.Module, named: dict) -> str | None:
    """In a residual network, the module that computes the last residual block (its output is the
    ReLU of the block's sum, as torchvision's ``layer4[-1]``); None for any other model."""
    from invnb.inverse.chain import UnsupportedLayerError
    from invnb.inverse.residual import ResidualSum, residual_layers

    try:
        built = residual_layers(model)
    except UnsupportedLayerError:
        return None
    if built is None:
        return None
    layers, names = built
    last = max(i for i, layer in enumerate(layers) if isinstance(layer, ResidualSum))
    block = names[last]
    inside = [n.startswith(block + ".") for n in names[last + 1:]] + [False]
    if block in named and last + 1 < len(layers) and isinstance(layers[last + 1], nn.ReLU) \
            and inside[0] and not inside[1]:
        return block
    return None


@register("grad_cam")
class GradCam(AttributionMethod):
    """Grad-CAM through captum's ``LayerGradCam``, upsampled to the input size.

    Parameters
    ----------
    model : nn.Module
        Classifier in eval mode (a copy with out-of-place ReLUs, made at
        construction, is hooked, so the caller's model is untouched).
    layer : str or nn.Module, optional
        Layer whose output is explained. Default: the rectified output of the
        last ``Conv2d`` (the ReLU that follows it), as in Selvaraju et al.; in a
        residual network the last residual block's output (the module computing
        it, e.g. torchvision's ``layer4.1``: the ReLU of the block's sum).
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
        self._copy = fresh_relus(model)
        self.layer = layer_name
        self.upsample = upsample
        self._method = LayerGradCam(self._copy, dict(self._copy.named_modules())[layer_name])

    def _attribute(self, x: Tensor, classes: Tensor) -> Tensor:
        follow_device(self._copy, x)
        inp = x.clone().requires_grad_(True)
        cam = self._method.attribute(inp, target=classes, relu_attributions=True).detach()
        if cam.dim() != 4:
            raise ValueError(f"Grad-CAM layer {self.layer!r} does not output a (N, C, h, w) feature map.")
        kw = {"align_corners": False} if self.upsample in ("bilinear", "bicubic") else {}
        cam = F.interpolate(cam, size=x.shape[-2:], mode=self.upsample, **kw)
        return cam.sum(dim=1).clamp(min=0)
