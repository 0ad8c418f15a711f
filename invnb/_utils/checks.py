"""Argument checks and batching helpers shared by the attribution methods and the metrics."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import torch
from torch import Tensor, nn


# --------------------------------------------------------------------------- helpers
def check_images(x: Tensor, name: str = "x") -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N, C, H, W), got {type(x).__name__}.")
    if x.dim() != 4:
        raise ValueError(
            f"{name} must have shape (N, C, H, W), got {tuple(x.shape)}; "
            f"add a batch dimension with {name}.unsqueeze(0) for a single image."
        )
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}.")
    return x


def check_maps(attributions: Tensor, n: int, hw: tuple[int, int], name: str = "attributions") -> Tensor:
    """Return ``attributions`` as (N, H, W) float, or raise a helpful error."""
    if not isinstance(attributions, Tensor):
        attributions = torch.as_tensor(np.asarray(attributions))
    a = attributions
    if a.dim() == 4 and a.shape[1] == 1:
        a = a[:, 0]
    if a.dim() != 3:
        raise ValueError(
            f"{name} must have shape (N, H, W) (or (N, 1, H, W)), got {tuple(attributions.shape)}; "
            "reduce the channels first, e.g. attributions.abs().sum(1)."
        )
    if a.shape[0] != n or tuple(a.shape[1:]) != tuple(hw):
        raise ValueError(
            f"{name} has shape {tuple(a.shape)} but the images need ({n}, {hw[0]}, {hw[1]}); "
            "upsample low-resolution maps to the input size first (e.g. torch.nn.functional.interpolate)."
        )
    a = a.float() if not a.is_floating_point() else a
    if not torch.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf values; replace them (e.g. torch.nan_to_num) before scoring.")
    return a


def check_masks(masks: Tensor, shape: tuple[int, ...]) -> Tensor:
    if not isinstance(masks, Tensor):
        masks = torch.as_tensor(np.asarray(masks))
    m = masks[:, 0] if masks.dim() == 4 and masks.shape[1] == 1 else masks
    if tuple(m.shape) != tuple(shape):
        raise ValueError(f"masks must have shape {tuple(shape)} like the attributions, got {tuple(masks.shape)}.")
    return m if m.dtype == torch.bool else m != 0


def chunks(n: int, batch_size: int | None) -> list[slice]:
    if batch_size is None:
        batch_size = max(n, 1)
    if not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}.")
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def warn_if_training(model: nn.Module) -> None:
    if isinstance(model, nn.Module) and model.training:
        warnings.warn(
            "the model is in training mode (dropout / batch-norm statistics make scores random); "
            "call model.eval() before measuring.",
            stacklevel=3,
        )


def to_2d(img, name: str) -> np.ndarray:
    if isinstance(img, torch.Tensor):
        img = img.detach().cpu().double().numpy()
    arr = np.asarray(img, dtype=np.float64)
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a single-channel image (H, W), (1, H, W) or (1, 1, H, W); got shape {np.shape(img)}"
        )
    return arr
