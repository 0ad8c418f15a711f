"""The SR networks the frequency analysis runs on, by name: how to load each, make its SR estimate, invert it.

Every analysis of an SR network (its measured frequency response, its per-band error, the inverse's and
LAM's attributions; :mod:`invnb.sr.ground_truth`) takes a network *name*; :data:`SR_NETWORKS` says what the
name means. Adding a network is one entry, e.g. the embedded SRCNNs (one network per scale, rewritten to
return what they add to their input, :class:`invnb.models.SRCNNResidual`)::

    "srcnn": SRNetwork("SRCNN", load_embedded_srcnn_residual, load_srcnn_residual, EMBEDDED_SRCNN_META,
                       residual=True, settings={"default": "vdsr", "paper": "vdsr_paper"}, per_scale=True),

The networks take the bicubic-upscaled luminance ``(N, 1, H, W)`` in [0, 1]; a *residual* network (VDSR)
returns the residual and its SR estimate is ``x + model(x)`` (:func:`with_residual`).

Examples
--------
>>> net = sr_network("vdsr")
>>> net.label, net.residual, net.settings["paper"]
('VDSR', True, 'vdsr_paper')
>>> srcnn = sr_network("srcnn")
>>> srcnn.per_scale, type(srcnn.load(scale=3)).__name__
(True, 'SRCNNResidual')
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable, Mapping

import torch
from torch import nn

from invnb.inverse.engine import LayerwiseInverse
from invnb.models.srcnn import EMBEDDED_SRCNN_META, SRCNNResidual, load_embedded_srcnn, load_srcnn
from invnb.models.vdsr import EMBEDDED_VDSR_CHECKPOINT, load_embedded_vdsr, load_vdsr

__all__ = ["SRNetwork", "SR_NETWORKS", "load_embedded_srcnn_residual", "load_srcnn_residual", "receptive_radius",
           "sr_network", "with_residual"]


class _Residual(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.model(x)


def with_residual(model: nn.Module) -> nn.Module:
    """An SR model ``x -> x + model(x)`` from a network that predicts the residual (VDSR).

    Parameters
    ----------
    model : nn.Module
        Maps the bicubic input ``(N, 1, H, W)`` to the residual.

    Returns
    -------
    nn.Module
        Maps the bicubic input to the SR estimate; its parameters are ``model``'s.

    Examples
    --------
    >>> sr = with_residual(torch.nn.Conv2d(1, 1, 1, bias=False))
    >>> with torch.no_grad():
    ...     _ = sr.model.weight.fill_(0.5)
    ...     float(sr(torch.ones(1, 1, 2, 2)).mean())
    1.5
    """
    return _Residual(model)


def receptive_radius(model: nn.Module) -> int:
    """How far (pixels) an output pixel of a plain chain of stride-1 convolutions sees into its input.

    The sum of ``dilation * (kernel - 1) / 2`` over the model's convolutions, largest axis: VDSR's twenty
    3x3 convolutions give 20, SRCNN's 9-1-5 gives 6.

    Parameters
    ----------
    model : nn.Module
        A network whose convolutions run one after another (no branches in parallel), all with stride 1.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        A convolution has a stride other than 1 (the output is not pixel-aligned with the input).

    Examples
    --------
    >>> receptive_radius(torch.nn.Sequential(torch.nn.Conv2d(1, 4, 9, padding=4), torch.nn.Conv2d(4, 1, 5)))
    6
    """
    radius = 0
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            if tuple(m.stride) != (1, 1):
                raise ValueError(f"receptive_radius needs stride-1 convolutions, found {m}")
            radius += max(d * (k - 1) // 2 for d, k in zip(m.dilation, m.kernel_size))
    return int(radius)


@dataclasses.dataclass(frozen=True)
class SRNetwork:
    """What the analysis needs to know about one SR network.

    Attributes
    ----------
    label : str
        Its name in figures and reports (``"VDSR"``).
    load_embedded : callable
        ``load_embedded(map_location=...) -> nn.Module``: the weights that ship with invnb.
    load_weights : callable
        ``load_weights(path, map_location=...) -> nn.Module``: a checkpoint file.
    checkpoint : pathlib.Path
        The embedded weights' file (its SHA-256 goes into a run's record).
    residual : bool
        The network returns the residual (its SR estimate is ``x + model(x)``).
    settings : mapping of str to str
        The analysis' setting names (``"default"``, ``"paper"``) to the inverse's registry names
        (:func:`invnb.inverse.settings.setting_names`).
    per_scale : bool, default False
        One network per SR factor (SRCNN): ``load_embedded(scale, map_location=...)`` takes the scale, and
        :attr:`checkpoint` is the provenance file that records each scale's checkpoint and its SHA-256.
        False: one network for every scale (VDSR).
    """

    label: str
    load_embedded: Callable[..., nn.Module]
    load_weights: Callable[..., nn.Module]
    checkpoint: Path
    residual: bool
    settings: Mapping[str, str]
    per_scale: bool = False

    def load(self, weights: str | os.PathLike | None = None,
             map_location: str | torch.device = "cpu", scale: int | None = None) -> nn.Module:
        """The network in eval mode: from ``weights`` when given, else the embedded weights.

        Parameters
        ----------
        weights : path, optional
            A checkpoint file (the same network for every scale).
        map_location : str or torch.device, default "cpu"
        scale : int, optional
            The SR factor; required for the embedded weights of a :attr:`per_scale` network, ignored otherwise.

        Raises
        ------
        ValueError
            A :attr:`per_scale` network's embedded weights were asked for without a scale.
        """
        if weights is not None:
            return self.load_weights(weights, map_location=map_location).eval()
        if not self.per_scale:
            return self.load_embedded(map_location=map_location).eval()
        if scale is None:
            raise ValueError(f"the embedded {self.label} has one network per scale: pass scale=")
        return self.load_embedded(scale, map_location=map_location).eval()

    def load_scales(self, scales, weights: str | os.PathLike | None = None,
                    map_location: str | torch.device = "cpu") -> dict[int, nn.Module]:
        """``{scale: network}`` for each of ``scales`` (one shared module unless :attr:`per_scale`)."""
        scales = [int(s) for s in scales]
        if self.per_scale and weights is None:
            return {s: self.load(map_location=map_location, scale=s) for s in scales}
        model = self.load(weights, map_location=map_location)
        return dict.fromkeys(scales, model)

    def sr_model(self, model: nn.Module) -> nn.Module:
        """``model`` as a map from the bicubic input to the SR estimate (:func:`with_residual` if residual)."""
        return with_residual(model) if self.residual else model

    def inverse(self, model: nn.Module, setting: str, **overrides) -> LayerwiseInverse:
        """The layer-wise inverse of ``model`` in one of :attr:`settings` (with constructor ``overrides``).

        Raises
        ------
        ValueError
            ``setting`` is not one of this network's settings.
        """
        if setting not in self.settings:
            raise ValueError(f"{self.label} has the inverse settings {sorted(self.settings)}, not {setting!r}")
        return LayerwiseInverse.from_setting(model, self.settings[setting], **overrides)


def load_embedded_srcnn_residual(scale: int, map_location: str | torch.device = "cpu") -> SRCNNResidual:
    """The embedded SRCNN for ``scale`` (:func:`invnb.models.load_embedded_srcnn`, digest checked) in residual form.

    :meth:`invnb.models.SRCNNResidual.from_srcnn`: the same network rewritten exactly to return what it
    adds to the bicubic input, so that its inverse explains that part, as VDSR's does.

    Examples
    --------
    >>> load_embedded_srcnn_residual(2).predicts_residual
    True
    """
    return SRCNNResidual.from_srcnn(load_embedded_srcnn(scale, map_location=map_location))


def load_srcnn_residual(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> SRCNNResidual:
    """An SRCNN state-dict file (:func:`invnb.models.load_srcnn`) in residual form (:class:`~invnb.models.SRCNNResidual`)."""
    return SRCNNResidual.from_srcnn(load_srcnn(path, map_location=map_location))


#: The SR networks by name (``--network`` of ``scripts/sr_ground_truth.py`` and ``scripts/vdsr_chirp.py``).
#: Both take VDSR's convention (the network returns the residual); SRCNN's inverse settings are VDSR's.
SR_NETWORKS: dict[str, SRNetwork] = {
    "vdsr": SRNetwork("VDSR", load_embedded_vdsr, load_vdsr, EMBEDDED_VDSR_CHECKPOINT, residual=True,
                      settings={"default": "vdsr", "paper": "vdsr_paper"}),
    "srcnn": SRNetwork("SRCNN", load_embedded_srcnn_residual, load_srcnn_residual, EMBEDDED_SRCNN_META,
                       residual=True, settings={"default": "vdsr", "paper": "vdsr_paper"}, per_scale=True),
}


def sr_network(name: str) -> SRNetwork:
    """The :class:`SRNetwork` registered as ``name`` (:data:`SR_NETWORKS`).

    Raises
    ------
    ValueError
        No network has that name (the message lists those that do).
    """
    if name not in SR_NETWORKS:
        raise ValueError(f"unknown SR network {name!r}; known: {sorted(SR_NETWORKS)}")
    return SR_NETWORKS[name]
