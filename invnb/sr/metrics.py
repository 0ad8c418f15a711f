"""Super-resolution metrics (PSNR, SSIM, MSE) and the paper's dA-dE table.

Conventions of the VDSR literature and of the paper's code: metrics are
computed on the luminance (Y) channel with a border of ``scale`` pixels
shaved off each side. The peak value of PSNR and the data range of SSIM are
always given explicitly (``data_range=1`` for images in [0, 1],
``data_range=255`` for 0..255) - nothing is guessed from the data.

References
----------
Kwon et al., IEEE TNNLS 2021, Table on VDSR (dA-dE). Wang et al., "Image
Quality Assessment: From Error Visibility to Structural Similarity", IEEE
TIP 2004 (SSIM).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np
from skimage.metrics import structural_similarity

from invnb._utils.checks import to_2d

__all__ = ["PAIRS", "shave", "mse", "psnr", "ssim", "DaDeTable", "da_de_table", "mean_da_de_table"]


#: The five comparisons of the paper (METHOD.md section 4).
PAIRS = {
    "dA": "(x, x_hat): input vs inverse input",
    "dB": "(y, y_hat): residual vs residual of the inverse input",
    "dC": "(x + y, x + y_hat): SR output vs SR output from the inverse's residual",
    "dD": "(x + y, GT): SR output vs ground truth",
    "dE": "(x + y_hat, GT): SR output from the inverse's residual vs ground truth",
}


def shave(img, border: int) -> np.ndarray:
    """Drop ``border`` pixels on every side.

    Parameters
    ----------
    img : array-like or torch.Tensor
        ``(H, W)`` (or with leading singleton axes).
    border : int
        Pixels removed from each side (``0`` keeps everything).

    Returns
    -------
    numpy.ndarray
        ``(H - 2 border, W - 2 border)`` float64.
    """
    arr = to_2d(img, "img")
    border = int(border)
    if border < 0:
        raise ValueError(f"border must be >= 0, got {border}")
    if border == 0:
        return arr
    if 2 * border >= min(arr.shape):
        raise ValueError(f"border {border} leaves nothing of an image of shape {arr.shape}")
    return arr[border:-border, border:-border]


def _pair(a, b, border: int) -> tuple[np.ndarray, np.ndarray]:
    a2, b2 = to_2d(a, "first image"), to_2d(b, "second image")
    if a2.shape != b2.shape:
        raise ValueError(f"images differ in shape: {a2.shape} vs {b2.shape}")
    return shave(a2, border), shave(b2, border)


def mse(a, b, border: int = 0) -> float:
    """Mean squared error (lower is better).

    Parameters
    ----------
    a, b : array-like or torch.Tensor
        Images of the same ``(H, W)`` shape, same units.
    border : int, default 0
        Pixels shaved off each side first (use the SR scale).

    Returns
    -------
    float
        ``mean((a - b) ** 2)`` in squared input units.
    """
    a2, b2 = _pair(a, b, border)
    return float(np.mean((a2 - b2) ** 2))


def psnr(a, b, *, data_range: float, border: int = 0) -> float:
    """Peak signal-to-noise ratio in dB (higher is better).

    Parameters
    ----------
    a, b : array-like or torch.Tensor
        Images of the same ``(H, W)`` shape.
    data_range : float
        Peak value: ``1`` for images in [0, 1], ``255`` for 0..255.
        Required, so that the unit is never guessed.
    border : int, default 0
        Pixels shaved off each side (use the SR scale).

    Returns
    -------
    float
        ``10 log10(data_range**2 / MSE)``; ``inf`` for identical images
        (the paper's code returned 100 there).
    """
    if not data_range > 0:
        raise ValueError(f"data_range must be positive (1 for [0, 1] images, 255 for 0..255), got {data_range}")
    err = mse(a, b, border)
    if err == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / err)


def ssim(a, b, *, data_range: float, border: int = 0) -> float:
    """Structural similarity as the paper computes it (higher is better).

    Gaussian window with sigma 1.5, population (not sample) covariance,
    through ``skimage.metrics.structural_similarity``.

    Parameters
    ----------
    a, b : array-like or torch.Tensor
        Images of the same ``(H, W)`` shape, at least 11x11 after shaving
        (the Gaussian window's support).
    data_range : float
        ``1`` for [0, 1] images (the paper's choice for every pair,
        residuals included), ``255`` for 0..255.
    border : int, default 0
        Pixels shaved off each side.

    Returns
    -------
    float
        Mean SSIM, at most 1 (identical images).
    """
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    a2, b2 = _pair(a, b, border)
    if min(a2.shape) < 11:
        raise ValueError(
            f"SSIM with a Gaussian window (sigma 1.5) needs at least 11x11 pixels after shaving, "
            f"got {a2.shape}; use a larger image or a smaller border"
        )
    return float(
        structural_similarity(
            a2,
            b2,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=data_range,
        )
    )


@dataclasses.dataclass
class DaDeTable:
    """The paper's five comparisons, each as PSNR, SSIM and MSE.

    Attributes
    ----------
    psnr, ssim, mse : dict of str to float
        Keyed ``"dA" .. "dE"`` (see :data:`PAIRS`). PSNR in dB with peak 1,
        SSIM with data range 1, MSE in squared [0, 1] units, all on the
        shaved Y channel.
    n_images : int
        Number of images behind the numbers (1 for a single image).
    """

    psnr: dict[str, float]
    ssim: dict[str, float]
    mse: dict[str, float]
    n_images: int = 1

    def rows(self) -> list[tuple[str, float, float, float]]:
        """``[(pair, psnr, ssim, mse), ...]`` in the order dA..dE."""
        return [(k, self.psnr[k], self.ssim[k], self.mse[k]) for k in PAIRS]

    def __str__(self) -> str:
        lines = [f"{'pair':<4} {'PSNR/dB':>9} {'SSIM':>7} {'MSE':>10}"]
        lines += [f"{k:<4} {p:9.2f} {s:7.4f} {m:10.3e}" for k, p, s, m in self.rows()]
        return "\n".join(lines)


def da_de_table(x, y, y_hat, x_hat, gt, scale: int) -> DaDeTable:
    """dA-dE for one image (METHOD.md section 4).

    Parameters
    ----------
    x : array-like or torch.Tensor
        Bicubic input, ``(H, W)`` (or ``(1, 1, H, W)``) in [0, 1].
    y : array-like or torch.Tensor
        The network's residual ``model(x)``.
    y_hat : array-like or torch.Tensor
        ``model(x_hat)``.
    x_hat : array-like or torch.Tensor
        The inverse input.
    gt : array-like or torch.Tensor
        Ground-truth luminance in [0, 1] (``im_gt_y / 255``).
    scale : int
        SR factor; also the border shaved.

    Returns
    -------
    DaDeTable
        dA = (x, x_hat), dB = (y, y_hat), dC = (x+y, x+y_hat),
        dD = (x+y, GT), dE = (x+y_hat, GT); nothing is clipped, as in the
        paper.
    """
    x, y, y_hat, x_hat, gt = (
        to_2d(v, n) for v, n in ((x, "x"), (y, "y"), (y_hat, "y_hat"), (x_hat, "x_hat"), (gt, "gt"))
    )
    pairs = {
        "dA": (x, x_hat),
        "dB": (y, y_hat),
        "dC": (x + y, x + y_hat),
        "dD": (x + y, gt),
        "dE": (x + y_hat, gt),
    }
    return DaDeTable(
        psnr={k: psnr(a, b, data_range=1.0, border=scale) for k, (a, b) in pairs.items()},
        ssim={k: ssim(a, b, data_range=1.0, border=scale) for k, (a, b) in pairs.items()},
        mse={k: mse(a, b, border=scale) for k, (a, b) in pairs.items()},
    )


def mean_da_de_table(tables: Sequence[DaDeTable]) -> DaDeTable:
    """Average per-image tables (each number averaged over images, as the paper does).

    Parameters
    ----------
    tables : sequence of DaDeTable
        Per-image tables.

    Returns
    -------
    DaDeTable
        Means; ``n_images`` is the total count. A PSNR of ``inf`` in any
        image makes that mean ``inf``.
    """
    if not tables:
        raise ValueError("mean_da_de_table needs at least one table")
    n = sum(t.n_images for t in tables)

    def avg(field: str) -> dict[str, float]:
        return {k: float(sum(getattr(t, field)[k] * t.n_images for t in tables) / n) for k in PAIRS}

    return DaDeTable(psnr=avg("psnr"), ssim=avg("ssim"), mse=avg("mse"), n_images=n)
