"""The inverse where explanations are usually evaluated: a captum ``Attribution`` and a Quantus ``explain_func``.

* :class:`InverseAttribution` -- a ``captum.attr.Attribution`` subclass with
  captum's call shape, ``InverseAttribution(model).attribute(inputs, target=...)``,
  returning a tensor shaped like ``inputs`` (the attribution map repeated on
  every channel, as captum's ``Occlusion`` does), so that
  ``captum.metrics.infidelity``, ``captum.metrics.sensitivity_max`` and
  ``captum.attr.visualization.visualize_image_attr`` take it unchanged.
* :func:`quantus_explain_func` -- ``explain_func(model, inputs, targets, **kwargs)``
  for Quantus 0.6.0 metrics: numpy in, numpy ``(N, 1, H, W)`` out.

Both build :class:`invnb.inverse.LayerwiseInverse` of a named setting with the
given keyword arguments, so they follow the package's default setting.

Examples
--------
>>> inv = InverseAttribution(model)
>>> tuple(inv.attribute(x, target=classes).shape)                  # shaped like x, as captum's methods
(2, 3, 64, 64)
>>> quantus_explain_func(model, x.numpy(), classes.numpy()).shape  # what Quantus calls
(2, 1, 64, 64)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["InverseAttribution", "quantus_explain_func"]


_OUTPUTS = ("map", "inverse_input")


def _build(model: nn.Module, setting: str, inverse_kw: dict):
    from invnb.inverse.engine import LayerwiseInverse

    return LayerwiseInverse.from_setting(model, setting, **inverse_kw)


def _attribution_base():
    from captum.attr import Attribution

    return Attribution


class InverseAttribution(_attribution_base()):
    """The layer-wise inverse as a captum ``Attribution``.

    Parameters
    ----------
    model : nn.Module
        Classifier (N, C, H, W) -> logits, in eval mode (captum's ``forward_func``).
    setting : str
        A named setting of :mod:`invnb.inverse.settings` (``"default"``, ``"paper"``, ...).
    output : {"map", "inverse_input"}
        ``"map"``: the paper's attribution map (``(N, H, W)`` in [0, 1])
        repeated on every channel; ``"inverse_input"``: the inverse input
        ``x_hat`` itself (the kept, attenuated image; signed).
    **inverse_kw
        Keyword arguments of :class:`invnb.inverse.LayerwiseInverse`.
    """

    def __init__(self, model: nn.Module, setting: str = "default", output: str = "map", **inverse_kw: Any):
        super().__init__(model)
        if output not in _OUTPUTS:
            raise ValueError(f"output must be one of {_OUTPUTS}, got {output!r}.")
        self.output = output
        self.inverse = _build(model, setting, inverse_kw)

    def has_convergence_delta(self) -> bool:
        """No convergence delta (as captum's perturbation methods)."""
        return False

    def attribute(self, inputs, target=None, additional_forward_args=None):
        """Attribution for each image, shaped like ``inputs``.

        Parameters
        ----------
        inputs : Tensor or 1-tuple of Tensor
            (N, C, H, W) images in the model's input space.
        target : None, int, sequence of int or Tensor
            Class to explain (captum's convention; None = predicted class).
        additional_forward_args : None
            Not supported (the inverse needs a plain stack of layers).

        Returns
        -------
        Tensor or 1-tuple of Tensor
            (N, C, H, W) on ``inputs``' device, matching ``inputs``' form.
        """
        if additional_forward_args is not None:
            raise ValueError("InverseAttribution does not take additional_forward_args (the model must be a "
                             "plain layer stack called on the images alone).")
        is_tuple = isinstance(inputs, tuple)
        if is_tuple:
            if len(inputs) != 1:
                raise ValueError(f"InverseAttribution explains one input tensor, got a tuple of {len(inputs)}.")
            inputs = inputs[0]
        if not isinstance(inputs, Tensor) or inputs.dim() != 4:
            raise ValueError(f"inputs must be an (N, C, H, W) tensor, got {getattr(inputs, 'shape', type(inputs))}.")
        if isinstance(target, list) and target and isinstance(target[0], tuple):
            raise ValueError("target tuples (multi-dimensional outputs) are not supported; pass class indices.")
        x = inputs.detach()
        with torch.enable_grad():
            res = self.inverse.invert(x, target=target)
        if self.output == "map":
            out = res.attribution.to(x.dtype)[:, None].expand_as(x).contiguous()
        else:
            out = res.input.to(x.dtype)
        out = out.to(inputs.device)
        return (out,) if is_tuple else out


def quantus_explain_func(model: nn.Module, inputs, targets, device: str | None = None, setting: str = "default",
                         **inverse_kw: Any) -> np.ndarray:
    """Quantus ``explain_func``: the inverse's attribution maps as numpy ``(N, 1, H, W)`` float32.

    Parameters
    ----------
    model : nn.Module
        Classifier in eval mode (Quantus passes the unwrapped torch model).
    inputs : ndarray or Tensor
        (N, C, H, W) images (Quantus hands numpy, channel first).
    targets : ndarray, Tensor, int or None
        Class per image (Quantus's ``y_batch``); None = predicted class.
    device : str, optional
        Where to run (Quantus adds its ``device`` argument here); default the
        model's device.
    setting : str
        A named setting of :mod:`invnb.inverse.settings` (``"default"``, ``"paper"``, ...).
    **inverse_kw
        Keyword arguments of :class:`invnb.inverse.LayerwiseInverse`.

    Returns
    -------
    ndarray
        (N, 1, H, W) float32 in [0, 1].
    """
    if device is None:
        p = next(model.parameters(), None)
        device = p.device if p is not None else "cpu"
    x = torch.as_tensor(np.asarray(inputs) if not isinstance(inputs, Tensor) else inputs).float().to(device)
    if x.dim() != 4:
        raise ValueError(f"inputs must be (N, C, H, W) (channel first), got shape {tuple(x.shape)}.")
    if targets is not None and not isinstance(targets, int):
        targets = torch.as_tensor(np.asarray(targets) if not isinstance(targets, Tensor) else targets).long()
        targets = targets.reshape(-1).to(device)
    with torch.enable_grad():
        res = _build(model, setting, inverse_kw).invert(x, target=targets)
    return res.attribution[:, None].detach().cpu().numpy().astype(np.float32)
