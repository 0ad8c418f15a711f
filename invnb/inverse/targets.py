"""What each layer hands down in the walk: the input check, the top target, unpooling, the spatial mask.

:func:`parse_target` turns the caller's target into classes or an output to reproduce;
:func:`top_affine` finds the layer that produces the logits; :func:`unpool` puts a target back at
the forward pass's max-pooling switches; :func:`rescale_target` scales an output target to the
forward pass's norm; :func:`target_mask` is the paper's spatial mask ``m = 1 - S / max S`` of a
layer's target.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["check_input", "is_identity_pool", "parse_target", "rescale_target", "target_mask", "top_affine",
           "unpool"]


def check_input(x) -> torch.Tensor:
    """`x` detached, or a TypeError/ValueError saying what an input batch must be."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() not in (2, 4):
        raise ValueError(f"x must be a batch (N, C, H, W) of images (or (N, D) vectors); got shape "
                         f"{tuple(x.shape)}. Add a batch dimension with x.unsqueeze(0).")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {x.dtype}")
    if x.shape[0] == 0:
        raise ValueError("x is an empty batch")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or infinite values")
    return x.detach()


def parse_target(target, out) -> tuple:
    """``(classes, None)`` for class targets (None: the predicted classes), ``(None, output)`` for an
    output target; a clear error for anything else. `out` is the model's ``(N, ...)`` output."""
    n = out.shape[0]
    if isinstance(target, torch.Tensor) and target.is_floating_point():
        if target.shape != out.shape:
            raise ValueError(f"an output target must have the model output's shape {tuple(out.shape)}, "
                             f"got {tuple(target.shape)}")
        if not torch.isfinite(target).all():
            raise ValueError("target contains NaN or infinite values")
        return None, target.to(out.device, out.dtype)
    if out.dim() != 2:
        raise ValueError(f"class targets need a classifier with (N, K) output; this model outputs "
                         f"{tuple(out.shape)}: pass the output tensor to reproduce as target")
    if target is None:
        classes = out.argmax(dim=1)
    else:
        if isinstance(target, (str, bytes)):
            raise TypeError(f"target must be None, a class index, a sequence of them or an output "
                            f"tensor; got the string {target!r}")
        try:
            raw = torch.as_tensor(target)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"target must be None, a class index, a sequence of them or an output "
                            f"tensor; got {target!r} ({err})") from None
        if raw.dtype == torch.bool or raw.is_floating_point() or raw.is_complex():
            raise TypeError(f"class targets must be integers, got {target!r} ({raw.dtype}); to reproduce "
                            f"an output pass a float tensor shaped like the model's output {tuple(out.shape)}")
        classes = raw.to(out.device).long().reshape(-1)
        if classes.numel() == 1:
            classes = classes.expand(n)
        if classes.numel() != n:
            raise ValueError(f"got {classes.numel()} class targets for {n} inputs")
        if classes.min() < 0 or classes.max() >= out.shape[1]:
            raise ValueError(f"class targets must lie in 0..{out.shape[1] - 1}")
    return classes.clone(), None


def top_affine(layers) -> int:
    """Index of the layer producing the logits (only Dropout/Flatten above it)."""
    for k in range(len(layers) - 1, -1, -1):
        if isinstance(layers[k], (nn.Linear, nn.Conv2d)):
            return k
        if not isinstance(layers[k], (nn.Dropout, nn.Flatten)):
            break
    return -1


def rescale_target(t, below, above, active: bool = False, scale_bound: bool = False) -> tuple:
    """A layer's output target rescaled, per sample, to the norm of the layer's forward output.

    Parameters
    ----------
    t : torch.Tensor
        ``(N, ...)`` target of the layer's output.
    below, above : torch.Tensor
        ``(N, ...)`` the layer's forward input and output.
    active : bool
        Use the norm of ``max(above, 0)`` (what a ReLU above the layer passes on).
    scale_bound : bool
        Scale the box bound `below` by the same factor (the paper's VDSR script).

    Returns
    -------
    t, bound : torch.Tensor
        The rescaled target and the bound of the layer's box (`below`, or `below` rescaled).
    """
    ref = above.clamp(min=0) if active else above
    factor = ref.flatten(1).norm(dim=1) / (t.flatten(1).norm(dim=1) + 1e-10)
    t = t * factor.reshape((-1,) + (1,) * (t.dim() - 1))
    bound = below * factor.reshape((-1,) + (1,) * (below.dim() - 1)) if scale_bound else below
    return t, bound


def target_mask(t: torch.Tensor, size, dilation: int = 1) -> torch.Tensor:
    """The paper's spatial mask ``m = 1 - S / max S`` of a layer's target.

    Parameters
    ----------
    t : torch.Tensor
        Target ``(N, C, h, w)`` of the layer's output.
    size : tuple of int
        ``(H, W)`` of the layer's input; the mask is resized to it (nearest).
    dilation : int
        Odd side of a max filter applied to ``S = sum_c |t|`` first (1: none,
        the paper). Meant for a target that came through a max-unpooling,
        which is zero between the forward pass's switches.

    Returns
    -------
    torch.Tensor
        ``(N, 1, H, W)`` in [0, 1]: 0 where the target is strongest, 1 where it is zero.
    """
    s = t.abs().sum(dim=1, keepdim=True)
    if dilation > 1:
        s = F.max_pool2d(s, dilation, stride=1, padding=dilation // 2)
    mask = 1 - s / s.flatten(1).amax(dim=1).clamp_min(1e-30).reshape(-1, 1, 1, 1)
    if tuple(mask.shape[-2:]) != tuple(size):
        mask = F.interpolate(mask, size=tuple(size), mode="nearest")
    return mask


def unpool(layer, t, below):
    """Put the target back at the forward pass's max locations (zeros elsewhere)."""
    if isinstance(layer, nn.MaxPool2d):
        _, idx = F.max_pool2d(below, layer.kernel_size, layer.stride, layer.padding,
                              layer.dilation, layer.ceil_mode, return_indices=True)
    else:
        _, idx = F.adaptive_max_pool2d(below, layer.output_size, return_indices=True)
    n, c, h, w = below.shape
    flat = t.new_zeros(n, c, h * w)
    # scatter_add: overlapping windows that share a maximum add their targets
    flat.scatter_add_(2, idx.flatten(2), t.reshape(idx.shape).flatten(2))
    return flat.reshape(below.shape)


def is_identity_pool(layer, below, above) -> bool:
    """An average pool that leaves its input unchanged (VGG's adaptive pool at 224 px)."""
    if isinstance(layer, nn.AdaptiveAvgPool2d):
        return below.shape == above.shape
    if isinstance(layer, nn.AvgPool2d):
        k, s, p = (nn.modules.utils._pair(v) for v in (layer.kernel_size, layer.stride or 1, layer.padding))
        return k == (1, 1) and s == (1, 1) and p == (0, 0)
    return False
