"""A CNN seen as a flat stack of invertible layers, and its recorded forward pass.

The layer-wise inverse walks a network from the top down, one leaf layer at a
time, so it needs the network as a plain sequence: Conv2d, ReLU, pooling,
Flatten, Dropout and Linear layers applied one after another. `LayerStack`
builds that sequence from a torchvision VGG or any `nn.Sequential`-style
model, folds BatchNorm into the convolution before it, and records every
layer's input during a forward pass.
"""

from __future__ import annotations

import copy
from typing import Iterator

import torch
from torch import nn

__all__ = ["LayerStack", "UnsupportedLayerError", "fold_batchnorm", "SUPPORTED_LAYERS"]

#: Leaf layer types the inverse knows how to invert (BatchNorm2d is folded away).
SUPPORTED_LAYERS = (
    nn.Conv2d,
    nn.Linear,
    nn.ReLU,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
    nn.Flatten,
    nn.Dropout,
    nn.BatchNorm2d,
    nn.Identity,
)


class UnsupportedLayerError(TypeError):
    """A model contains a layer the layer-wise inverse cannot invert."""


def fold_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """Return a new Conv2d equal to ``bn(conv(x))`` in eval mode.

    Parameters
    ----------
    conv : nn.Conv2d
        Convolution whose output feeds `bn`; it is not modified.
    bn : nn.BatchNorm2d
        Batch normalisation with running statistics (eval mode semantics).

    Returns
    -------
    nn.Conv2d
        A convolution with bias, ``W' = W * g / s`` and ``b' = (b - mu) * g / s + beta``
        with ``s = sqrt(var + eps)``.
    """
    if bn.running_mean is None or bn.running_var is None:
        raise UnsupportedLayerError(
            "BatchNorm2d without running statistics (track_running_stats=False) cannot be "
            "folded into the convolution before it; construct it with track_running_stats=True."
        )
    fused = copy.deepcopy(conv)
    w = conv.weight.detach()
    scale = bn.running_var.detach().add(bn.eps).rsqrt()
    if bn.affine:
        scale = scale * bn.weight.detach()
        shift = bn.bias.detach()
    else:
        shift = torch.zeros_like(scale)
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(scale)
    fused.weight = nn.Parameter(w * scale.reshape(-1, 1, 1, 1))
    fused.bias = nn.Parameter((bias - bn.running_mean.detach()) * scale + shift)
    return fused


def _leaves(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    """Yield ``(qualified_name, leaf)`` in registration order."""
    children = list(module.named_children())
    if not children:
        yield prefix, module
        return
    for name, child in children:
        yield from _leaves(child, f"{prefix}.{name}" if prefix else name)


class LayerStack(nn.Module):
    """A model as a flat sequence of invertible leaf layers.

    Parameters
    ----------
    model : nn.Module
        A torchvision VGG (any depth, with or without BatchNorm) or a model whose
        forward pass applies its leaf modules one after another in the order they
        were registered. A Flatten is inserted where a Linear layer follows a 4-D
        feature map (torchvision's VGG flattens inside ``forward``). The model is
        not modified: layers are copied, BatchNorm2d is folded into the Conv2d
        before it and in-place ReLUs become out-of-place.

    Attributes
    ----------
    layers : nn.ModuleList
        The leaf layers in forward order.
    names : list of str
        Qualified name of each layer in the original model (``"features.0"``);
        inserted flattens are named ``"<flatten>"`` and folded convs keep the conv's name.

    Raises
    ------
    UnsupportedLayerError
        If a leaf layer's type cannot be inverted; the message names the layer and
        its position.

    Examples
    --------
    >>> stack = LayerStack(torchvision.models.vgg11())
    >>> acts = stack.record(x)          # acts[k] is the input of stack.layers[k]
    >>> logits = stack.forward_from(3, acts[3])
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        leaves = list(_leaves(model))
        layers: list[nn.Module] = []
        names: list[str] = []
        for pos, (name, layer) in enumerate(leaves):
            if not isinstance(layer, SUPPORTED_LAYERS):
                supported = ", ".join(t.__name__ for t in SUPPORTED_LAYERS)
                raise UnsupportedLayerError(
                    f"layer {pos} ({name or type(model).__name__!s}: {type(layer).__name__}) "
                    f"cannot be inverted; supported layer types are {supported}. "
                    "Models with skip connections or other layer types are not a plain stack."
                )
            if isinstance(layer, nn.Identity):
                continue
            if isinstance(layer, nn.BatchNorm2d):
                if not layers or not isinstance(layers[-1], nn.Conv2d):
                    raise UnsupportedLayerError(
                        f"layer {pos} ({name}: BatchNorm2d) does not follow a Conv2d, so it "
                        "cannot be folded; only Conv2d -> BatchNorm2d pairs are supported."
                    )
                layers[-1] = fold_batchnorm(layers[-1], layer)
                continue
            if isinstance(layer, nn.Linear) and _needs_flatten(layers):
                layers.append(nn.Flatten())
                names.append("<flatten>")
            layer = copy.deepcopy(layer)
            if isinstance(layer, nn.ReLU):
                layer.inplace = False
            layers.append(layer)
            names.append(name)
        if not layers:
            raise UnsupportedLayerError(f"{type(model).__name__} has no layers to invert.")
        self.layers = nn.ModuleList(layers)
        self.names = names
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def __len__(self) -> int:
        return len(self.layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply every layer; equals the original model's output in eval mode."""
        return self.forward_from(0, x)

    def forward_from(self, k: int, h: torch.Tensor) -> torch.Tensor:
        """Apply ``layers[k:]`` to `h`, a tensor shaped like the input of layer `k`."""
        if not 0 <= k <= len(self.layers):
            raise IndexError(f"layer index {k} out of range 0..{len(self.layers)}")
        for layer in self.layers[k:]:
            h = layer(h)
        return h

    @torch.no_grad()
    def record(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Forward `x` and keep every layer's input.

        Parameters
        ----------
        x : torch.Tensor
            Batch of inputs, e.g. ``(N, C, H, W)``.

        Returns
        -------
        list of torch.Tensor
            ``len(layers) + 1`` tensors: ``acts[0] = x`` and
            ``acts[k + 1] = layers[k](acts[k])``; the last is the model output.
        """
        acts = [x]
        for layer in self.layers:
            acts.append(layer(acts[-1]))
        return acts

    def check_matches(self, model: nn.Module, x: torch.Tensor, rtol: float = 1e-4) -> None:
        """Raise ValueError unless the stack reproduces ``model(x)`` (eval mode).

        Catches models whose ``forward`` is not the plain sequence of their layers
        (skip connections, reordered modules, functional ops in ``forward``).
        """
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                ref = model(x)
                out = self(x)
        finally:
            model.train(was_training)
        if ref.shape != out.shape or not torch.allclose(
            out, ref, rtol=rtol, atol=rtol * float(ref.abs().max().clamp_min(1e-12))
        ):
            raise ValueError(
                f"{type(model).__name__}'s forward pass is not the plain sequence of its layers "
                "(the layer stack gives a different output). The layer-wise inverse needs a "
                "feed-forward stack of Conv2d/ReLU/pooling/Flatten/Dropout/Linear layers applied "
                "in registration order, like torchvision's VGG."
            )


def _needs_flatten(layers: list[nn.Module]) -> bool:
    """True when a Linear appended now would follow a spatial feature map."""
    for layer in reversed(layers):
        if isinstance(layer, (nn.Flatten, nn.Linear)):
            return False
        if isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d,
                              nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            return True
    return False
