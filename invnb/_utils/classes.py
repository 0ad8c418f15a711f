"""Which class each image is explained for: the model's prediction or the caller's targets."""

from __future__ import annotations

import numbers
from collections.abc import Callable

import torch
from torch import Tensor

from invnb._utils.checks import check_images, chunks

__all__ = ["predicted_classes", "resolve_classes"]


@torch.no_grad()
def predicted_classes(model: Callable[[Tensor], Tensor], x: Tensor, batch_size: int | None = None) -> Tensor:
    """Return the class the model predicts for each image.

    Parameters
    ----------
    model : callable
        Classifier mapping (N, C, H, W) to logits (N, K).
    x : Tensor
        Images, (N, C, H, W).
    batch_size : int, optional
        Images per forward pass (all at once when None).

    Returns
    -------
    Tensor
        (N,) long, ``argmax`` of the logits, on ``x.device``.
    """
    check_images(x)
    out = [model(x[s]).argmax(dim=1) for s in chunks(x.shape[0], batch_size)]
    return torch.cat(out).to(x.device)


def resolve_classes(
    model: Callable[[Tensor], Tensor], x: Tensor, target=None, batch_size: int | None = None
) -> Tensor:
    """Turn a ``target`` argument into one class index per image.

    Parameters
    ----------
    model : callable
        Classifier, used only when ``target`` is None.
    x : Tensor
        Images, (N, C, H, W).
    target : None, int, sequence of int or Tensor
        None: the predicted class; an int: the same class for every image;
        a sequence or tensor of N ints: one class per image.
    batch_size : int, optional
        Images per forward pass when predicting.

    Returns
    -------
    Tensor
        (N,) long on ``x.device``.
    """
    n = x.shape[0]
    if target is None:
        return predicted_classes(model, x, batch_size)
    if isinstance(target, numbers.Integral):
        return torch.full((n,), int(target), dtype=torch.long, device=x.device)
    t = torch.as_tensor(target, device=x.device)
    if t.dim() == 0:
        return t.long().expand(n).clone()
    if t.dim() != 1 or t.shape[0] != n or t.is_floating_point():
        raise ValueError(
            f"target must be None, an int, or {n} integer class indices (one per image); got shape {tuple(t.shape)} "
            f"and dtype {t.dtype}."
        )
    return t.long()
