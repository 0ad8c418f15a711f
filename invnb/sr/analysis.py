"""The paper's VDSR experiment: invert the network, tabulate dA-dE, analyse frequencies.

VDSR is a regression network, so the inverse starts from the network's own
output: ``target = model(x)`` (the residual), and the layer-wise inverse
walks down to an inverse input ``x_hat``, a pixel-wise attenuation of the
bicubic input ``x``. The paper then compares ``x`` with ``x_hat``, the
residual ``y = model(x)`` with ``y_hat = model(x_hat)`` and both SR results
with the ground truth (the dA-dE table), and asks which DCT bands the
patches the inverse keeps ("focused") carry.

References
----------
Kwon et al., IEEE TNNLS 2021, Sec. V (VDSR); METHOD.md sections 4-5.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from invnb.eval.reid import amount_of_activation
from invnb.inverse.engine import LayerwiseInverse
from invnb.sr.frequency import (
    FrequencyProfile,
    attribution_ratio,
    frequency_profile,
    mean_frequency_profile,
)
from invnb.sr.metrics import DaDeTable, da_de_table, mean_da_de_table
from invnb.sr.samples import SRSample, y_to_tensor

__all__ = ["output_fidelity", "invert_vdsr", "VDSRInversion", "center_crop", "invert_sample", "VDSRReport", "analyse_samples", "invert_chirp"]


def output_fidelity(y, y_hat, border: int = 0) -> dict[str, float]:
    """How well ``y_hat = model(x_hat)`` reproduces ``y = model(x)``, beyond PSNR.

    PSNR hides a poor reproduction when the residual is small; these do not.

    Parameters
    ----------
    y, y_hat : array-like
        ``(H, W)`` residuals.
    border : int, default 0
        Pixels shaved on every side (the scale, as the PSNR).

    Returns
    -------
    dict
        ``relative_error`` ``||y_hat - y|| / ||y||``, ``correlation`` (Pearson),
        ``norm_ratio`` ``||y_hat|| / ||y||`` and ``mean_offset``
        ``mean(y_hat - y)``.
    """
    a, b = (np.asarray(v, dtype=np.float64) for v in (y, y_hat))
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"y and y_hat must be (H, W) of one shape, got {a.shape} and {b.shape}")
    if border:
        a, b = a[border:-border, border:-border], b[border:-border, border:-border]
    ny = np.linalg.norm(a)
    if ny == 0:
        raise ValueError("y is all zero: relative measures are undefined")
    ac, bc = a - a.mean(), b - b.mean()
    den = np.linalg.norm(ac) * np.linalg.norm(bc)
    return {
        "relative_error": float(np.linalg.norm(b - a) / ny),
        "correlation": float((ac * bc).sum() / den) if den > 0 else float("nan"),
        "norm_ratio": float(np.linalg.norm(b) / ny),
        "mean_offset": float((b - a).mean()),
    }


def invert_vdsr(model: nn.Module, x: torch.Tensor, inverse: LayerwiseInverse | None = None):
    """Invert VDSR on its own output.

    Parameters
    ----------
    model : nn.Module
        VDSR returning the residual.
    x : torch.Tensor
        ``(N, 1, H, W)`` bicubic luminance in [0, 1], on the device to use.
    inverse : LayerwiseInverse, optional
        Configured inverse (default ``LayerwiseInverse.from_setting(model, "vdsr")``).

    Returns
    -------
    x_hat, y, y_hat : torch.Tensor
        ``(N, 1, H, W)`` inverse input, residual ``model(x)`` and residual
        ``model(x_hat)``.
    result : invnb.inverse.InverseResult
        All inverse features and per-layer solver statistics.
    """
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"x must be (N, 1, H, W) luminance in [0, 1], got shape {tuple(x.shape)}")
    inverse = inverse if inverse is not None else LayerwiseInverse.from_setting(model, "vdsr")
    model = model.to(x.device).eval()
    with torch.no_grad():
        y = model(x)
    result = inverse.invert(x, target=y)
    x_hat = result.input
    with torch.no_grad():
        y_hat = model(x_hat)
    return x_hat, y, y_hat, result


@dataclasses.dataclass
class VDSRInversion:
    """One image's inverse and its measurements.

    Attributes
    ----------
    name : str
        Image name.
    scale : int
        SR factor (also the border shaved by the metrics).
    x, x_hat, y, y_hat, gt : numpy.ndarray
        ``(H, W)`` float64: bicubic input, inverse input, residual, residual
        of the inverse input, ground truth; luminance in [0, 1].
    table : DaDeTable
        dA-dE (PSNR peak 1, SSIM, MSE) of the image.
    amount : float
        Amount of activation of ``x_hat`` (:func:`invnb.eval.amount_of_activation`),
        lower is sparser.
    seconds : float
        Wall time of the inverse.
    failed : bool
        The engine flagged the inverse as NaN or all zero.
    """

    name: str
    scale: int
    x: np.ndarray
    x_hat: np.ndarray
    y: np.ndarray
    y_hat: np.ndarray
    gt: np.ndarray
    table: DaDeTable
    amount: float
    seconds: float
    failed: bool

    @property
    def fidelity(self) -> float:
        """PSNR(y, y_hat) in dB (peak 1, border shaved) - the table's dB entry."""
        return self.table.psnr["dB"]

    @property
    def output_fidelity(self) -> dict[str, float]:
        """:func:`output_fidelity` of ``y_hat`` against ``y`` (``scale`` border shaved)."""
        return output_fidelity(self.y, self.y_hat, self.scale)

    def frequency_profile(self, patch: int = 8) -> FrequencyProfile:
        """Focused/unfocused DCT profile of ``x`` with attribution ``|x_hat| / (|x| + 1e-6)``."""
        return frequency_profile(self.x, attribution_ratio(self.x_hat, self.x), patch=patch)


def center_crop(sample: SRSample, size: int) -> SRSample:
    """Centre crop of every array of an :class:`~invnb.sr.SRSample` (HR-sized ones).

    Parameters
    ----------
    sample : SRSample
        The sample.
    size : int
        Side of the square crop (HR pixels); must not exceed the image.

    Returns
    -------
    SRSample
        ``im_gt_y``, ``im_b_y``, ``im_b_ycbcr`` and ``im_gt`` cropped,
        ``im_l_y`` dropped (it no longer corresponds).
    """
    h, w = sample.im_b_y.shape
    if size > min(h, w) or size < 1:
        raise ValueError(f"crop {size} does not fit image {sample.name} of size {(h, w)}")
    top, left = (h - size) // 2, (w - size) // 2
    sl = (slice(top, top + size), slice(left, left + size))

    def cut(a):
        return None if a is None else np.ascontiguousarray(a[sl])

    return dataclasses.replace(
        sample,
        im_gt_y=cut(sample.im_gt_y),
        im_b_y=cut(sample.im_b_y),
        im_b_ycbcr=cut(sample.im_b_ycbcr),
        im_gt=cut(sample.im_gt),
        im_l_y=None,
    )


def invert_sample(
    model: nn.Module,
    sample: SRSample,
    inverse: LayerwiseInverse | None = None,
    device: str | torch.device | None = None,
) -> VDSRInversion:
    """Invert VDSR on one SR sample and measure dA-dE and the amount.

    Parameters
    ----------
    model : nn.Module
        VDSR returning the residual.
    sample : SRSample
        From :func:`invnb.sr.make_sr_sample` or :func:`~invnb.sr.load_sr_mat`.
    inverse : LayerwiseInverse, optional
        Default ``LayerwiseInverse.from_setting(model, "vdsr")``.
    device : str or torch.device, optional
        Where to compute (default: the model's device); the input takes the
        model's dtype.

    Returns
    -------
    VDSRInversion
    """
    param = next(model.parameters())
    x = y_to_tensor(sample.im_b_y, device if device is not None else param.device).to(param.dtype)
    start = time.perf_counter()
    x_hat, y, y_hat, result = invert_vdsr(model, x, inverse)
    seconds = time.perf_counter() - start

    def np2(t: torch.Tensor) -> np.ndarray:
        return t[0, 0].detach().double().cpu().numpy()

    gt = sample.im_gt_y / 255.0
    arrays = dict(x=np2(x), x_hat=np2(x_hat), y=np2(y), y_hat=np2(y_hat))
    return VDSRInversion(
        name=sample.name,
        scale=sample.scale,
        gt=gt,
        table=da_de_table(arrays["x"], arrays["y"], arrays["y_hat"], arrays["x_hat"], gt, sample.scale),
        amount=float(amount_of_activation(x_hat, x)[0]),
        seconds=seconds,
        failed=bool(result.failed[0]),
        **arrays,
    )


@dataclasses.dataclass
class VDSRReport:
    """Per-image inversions of a data set at one scale, with averages.

    Attributes
    ----------
    images : list of VDSRInversion
    table : DaDeTable
        dA-dE averaged over images.
    amount : float
        Mean amount of activation.
    seconds : float
        Total inverse time.
    """

    images: list[VDSRInversion]
    table: DaDeTable
    amount: float
    seconds: float

    def frequency_profile(self, patch: int = 8) -> FrequencyProfile:
        """Profiles of all images averaged (each image weighs the same, as in the paper)."""
        return mean_frequency_profile([r.frequency_profile(patch) for r in self.images])


def analyse_samples(
    model: nn.Module,
    samples: Sequence[SRSample],
    inverse: LayerwiseInverse | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
    callback: Callable[[VDSRInversion], None] | None = None,
) -> VDSRReport:
    """Invert VDSR on every sample (one at a time: sizes differ) and average.

    Parameters
    ----------
    model : nn.Module
        VDSR returning the residual.
    samples : sequence of SRSample
        E.g. ``load_sr_folder(folder, scale)``.
    inverse : LayerwiseInverse, optional
        Default ``LayerwiseInverse.from_setting(model, "vdsr")``.
    device : str or torch.device, optional
        Where to compute.
    progress : bool, default False
        Progress bar over images.
    callback : callable, optional
        Called with each :class:`VDSRInversion` as soon as it is done
        (e.g. to print a row).

    Returns
    -------
    VDSRReport
    """
    if not samples:
        raise ValueError("analyse_samples needs at least one sample")
    inverse = inverse if inverse is not None else LayerwiseInverse.from_setting(model, "vdsr")
    items = samples
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(samples, desc="images", leave=False)
    images = []
    for sample in items:
        images.append(invert_sample(model, sample, inverse, device))
        if callback is not None:
            callback(images[-1])
    return VDSRReport(
        images=images,
        table=mean_da_de_table([r.table for r in images]),
        amount=float(np.mean([r.amount for r in images])),
        seconds=float(sum(r.seconds for r in images)),
    )


def invert_chirp(
    model: nn.Module,
    scale: int,
    size: int = 128,
    rate: float | None = None,
    inverse: LayerwiseInverse | None = None,
    device: str | torch.device | None = None,
) -> VDSRInversion:
    """Invert VDSR on the chirp ``sin(x^2/c) sin(y^2/c)`` made the paper's way (cumulative modcrop).

    Parameters
    ----------
    model : nn.Module
        VDSR returning the residual (any weights).
    scale : int
        SR factor.
    size : int, default 128
        Chirp side; 512 with ``rate`` 1024 is the paper's image (minutes per
        inverse on a CPU), smaller sides keep the frequency range 0..0.159
        cycles/px with the default ``rate = 2 * size`` (see :mod:`invnb.sr.chirp`).
    rate : float, optional
        The chirp constant ``c``.
    inverse : LayerwiseInverse, optional
        Default ``LayerwiseInverse.from_setting(model, "vdsr", keep_features=False)``.
    device : str or torch.device, optional

    Returns
    -------
    VDSRInversion
        Named ``"chirp<size>"``; bin its attribution with
        :func:`invnb.sr.chirp_profiles` ``(attribution_ratio(r.x_hat, r.x), rate)``.
    """
    from invnb.sr.chirp import chirp_hr
    from invnb.sr.samples import make_sr_sample

    sample = make_sr_sample(chirp_hr(size, rate), scale, cumulative_crop=True, name=f"chirp{size}")
    inverse = inverse if inverse is not None else LayerwiseInverse.from_setting(model, "vdsr", keep_features=False)
    return invert_sample(model, sample, inverse, device)
