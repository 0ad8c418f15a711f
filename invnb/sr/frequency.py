"""Which frequency bands of its input does a network rely on? (DCT analysis)

The paper's SR finding: split the input into 8x8 non-overlapping patches,
call a patch *focused* when its mean attribution is at least the mean over
all patches of the image, and compare the average magnitude of the
orthonormal 2-D DCT of focused and unfocused patches, band by band in JPEG
zigzag order. This module computes those curves and a summary number, the
share of the AC magnitude that lies in the high bands, so that the finding
can be checked and not only looked at.

References
----------
Kwon et al., IEEE TNNLS 2021, Sec. on VDSR; the paper's
``src/inc/dct_analysis.py``.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import scipy.fft

from invnb._utils.checks import to_2d
from invnb.inverse.maps import kept_ratio

__all__ = ["zigzag_indices", "image_patches", "block_dct", "attribution_ratio", "FrequencyProfile", "frequency_profile", "mean_frequency_profile", "high_band_share", "zigzag_band", "band_retention", "mean_band_retention"]


def zigzag_indices(n: int = 8) -> np.ndarray:
    """The JPEG zigzag scan of an ``n x n`` block.

    Parameters
    ----------
    n : int, default 8
        Block size.

    Returns
    -------
    numpy.ndarray
        ``(n * n, 2)`` int array of ``(row, col)`` pairs: ``(0, 0), (0, 1),
        (1, 0), (2, 0), (1, 1), (0, 2), (0, 3), ...``. Row is the vertical
        frequency, column the horizontal one; entry ``k`` is "band k".
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    n = int(n)
    order = []
    for s in range(2 * n - 1):
        rows = range(max(0, s - n + 1), min(s, n - 1) + 1)
        # Odd anti-diagonals run down-left (row increasing), even ones up-right.
        rows = rows if s % 2 else reversed(rows)
        order.extend((r, s - r) for r in rows)
    return np.array(order, dtype=np.int64)


def image_patches(img, patch: int = 8) -> np.ndarray:
    """Non-overlapping ``patch x patch`` tiles (the bottom/right remainder is dropped).

    Parameters
    ----------
    img : array-like or torch.Tensor
        ``(H, W)`` image.
    patch : int, default 8
        Tile size.

    Returns
    -------
    numpy.ndarray
        ``(H // patch, W // patch, patch, patch)`` float64.
    """
    arr = to_2d(img, "img")
    h, w = (arr.shape[0] // patch) * patch, (arr.shape[1] // patch) * patch
    if h == 0 or w == 0:
        raise ValueError(f"image of shape {arr.shape} is smaller than one {patch}x{patch} patch")
    arr = arr[:h, :w]
    return arr.reshape(h // patch, patch, w // patch, patch).transpose(0, 2, 1, 3)


def block_dct(patches: np.ndarray) -> np.ndarray:
    """Orthonormal 2-D DCT-II over the last two axes.

    Parameters
    ----------
    patches : numpy.ndarray
        ``(..., p, p)`` tiles.

    Returns
    -------
    numpy.ndarray
        Coefficients of the same shape; ``[..., 0, 0]`` is ``p`` times the
        tile mean and the transform preserves the sum of squares.
    """
    return scipy.fft.dctn(np.asarray(patches, dtype=np.float64), axes=(-2, -1), norm="ortho")


def attribution_ratio(x_hat, x, eps: float = 1e-6) -> np.ndarray:
    """The paper's per-pixel attribution ``|x_hat| / (|x| + eps)`` (not normalised).

    Parameters
    ----------
    x_hat, x : array-like or torch.Tensor
        Inverse input and input, ``(H, W)``.
    eps : float, default 1e-6
        Guards the division.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float64, >= 0.
    """
    xh, xx = to_2d(x_hat, "x_hat"), to_2d(x, "x")
    if xh.shape != xx.shape:
        raise ValueError(f"x_hat {xh.shape} and x {xx.shape} differ in shape")
    return kept_ratio(xh, xx, eps)


@dataclasses.dataclass
class FrequencyProfile:
    """Average |DCT| per zigzag band for focused, unfocused and all patches.

    Attributes
    ----------
    focused, unfocused, all : numpy.ndarray
        ``(p * p,)`` float64 mean absolute DCT coefficient per band in
        zigzag order (band 0 = DC), in the units of the image. ``focused``
        or ``unfocused`` is all-NaN when no patch falls in that group.
    n_focused, n_unfocused : int
        Number of patches behind each curve (summed over images for an
        averaged profile).
    n_images : int
        Images averaged.
    """

    focused: np.ndarray
    unfocused: np.ndarray
    all: np.ndarray
    n_focused: int
    n_unfocused: int
    n_images: int = 1

    def summary(self, cut: int = 28) -> dict[str, float]:
        """High-band shares (see :func:`high_band_share`) of the three curves and their ratio.

        Returns
        -------
        dict
            ``{"focused": ..., "unfocused": ..., "all": ..., "ratio":
            focused / unfocused, "cut": cut}``.
        """
        f, u, a = (high_band_share(c, cut) for c in (self.focused, self.unfocused, self.all))
        return {"focused": f, "unfocused": u, "all": a, "ratio": f / u if u > 0 else float("nan"), "cut": cut}


def frequency_profile(img, attribution, patch: int = 8) -> FrequencyProfile:
    """Focused/unfocused DCT profile of one image.

    Parameters
    ----------
    img : array-like or torch.Tensor
        ``(H, W)`` image whose patches are transformed (the paper uses the
        network input, ``im_b_y / 255``).
    attribution : array-like or torch.Tensor
        ``(H, W)`` non-negative attribution, e.g.
        :func:`attribution_ratio` ``(x_hat, x)``.
    patch : int, default 8
        Patch size.

    Returns
    -------
    FrequencyProfile
        A patch is focused when its mean attribution is >= the mean of the
        patch means; each curve is the mean ``|DCT|`` of its patches.
    """
    img2, att = to_2d(img, "img"), to_2d(attribution, "attribution")
    if img2.shape != att.shape:
        raise ValueError(f"img {img2.shape} and attribution {att.shape} differ in shape")
    if np.isnan(att).any():
        raise ValueError("attribution contains NaN")
    coeffs = np.abs(block_dct(image_patches(img2, patch))).reshape(-1, patch * patch)
    order = zigzag_indices(patch)
    coeffs = coeffs[:, order[:, 0] * patch + order[:, 1]]
    # not mutated: patch sums rank like patch means (equal-size patches); reshape takes any negative size
    patch_mean = image_patches(att, patch).mean(axis=(-2, -1)).reshape(-1)  # pragma: no mutate
    focused = patch_mean >= patch_mean.mean()
    nan = np.full(patch * patch, np.nan)
    return FrequencyProfile(
        focused=coeffs[focused].mean(axis=0) if focused.any() else nan,
        unfocused=coeffs[~focused].mean(axis=0) if (~focused).any() else nan.copy(),
        all=coeffs.mean(axis=0),
        n_focused=int(focused.sum()),
        n_unfocused=int((~focused).sum()),
    )


def mean_frequency_profile(profiles: Sequence[FrequencyProfile]) -> FrequencyProfile:
    """Average per-image profiles (each image weighs the same, as in the paper).

    Images where a group is empty are left out of that group's mean (the
    paper's code would average in a curve of zeros there).

    Parameters
    ----------
    profiles : sequence of FrequencyProfile

    Returns
    -------
    FrequencyProfile
    """
    if not profiles:
        raise ValueError("mean_frequency_profile needs at least one profile")

    def avg(field: str) -> np.ndarray:
        stack = np.stack([getattr(p, field) for p in profiles])
        keep = ~np.isnan(stack).all(axis=1)
        return stack[keep].mean(axis=0) if keep.any() else np.full(stack.shape[1], np.nan)

    return FrequencyProfile(
        focused=avg("focused"),
        unfocused=avg("unfocused"),
        all=avg("all"),
        n_focused=sum(p.n_focused for p in profiles),
        n_unfocused=sum(p.n_unfocused for p in profiles),
        n_images=sum(p.n_images for p in profiles),
    )


def high_band_share(curve, cut: int = 28) -> float:
    """Share of the AC magnitude in zigzag bands ``>= cut``.

    Parameters
    ----------
    curve : array-like
        ``(64,)`` mean |DCT| per zigzag band (band 0 = DC is excluded, so
        brightness does not count).
    cut : int, default 28
        First high band. 28 is where the main anti-diagonal of the 8x8 block
        begins (``row + col = 7``): the 36 bands above half the diagonal
        frequency range.

    Returns
    -------
    float
        ``sum(curve[cut:]) / sum(curve[1:])`` in [0, 1]; NaN for an all-NaN
        or all-zero AC curve.
    """
    c = np.asarray(curve, dtype=np.float64)
    if c.ndim != 1 or not 1 <= cut < c.size:
        raise ValueError(f"need a 1-D curve and 1 <= cut < {c.size}, got shape {c.shape}, cut {cut}")
    ac = c[1:].sum()
    if not np.isfinite(ac) or ac == 0:
        return float("nan")
    return float(c[cut:].sum() / ac)


def zigzag_band(u: int, v: int, n: int = 8) -> int:
    """Zigzag index of DCT coefficient ``(u, v)`` (row = vertical, column = horizontal frequency)."""
    if not (0 <= u < n and 0 <= v < n):
        raise ValueError(f"(u, v) = ({u}, {v}) is outside an {n}x{n} block")
    order = zigzag_indices(n)
    return int(np.where((order[:, 0] == u) & (order[:, 1] == v))[0][0])


def _zigzag_coeffs(img, patch: int) -> np.ndarray:
    """``(n_patches, p * p)`` DCT coefficients of the image's patches, zigzag order."""
    coeffs = block_dct(image_patches(img, patch)).reshape(-1, patch * patch)
    order = zigzag_indices(patch)
    return coeffs[:, order[:, 0] * patch + order[:, 1]]


def band_retention(x_hat, x, patch: int = 8, rel_floor: float = 1e-9, mode: str = "magnitude") -> np.ndarray:
    """How much of each DCT band the inverse input keeps: mean ``|DCT(x_hat)|`` / mean ``|DCT(x)|``.

    Parameters
    ----------
    x_hat, x : array-like or torch.Tensor
        ``(H, W)`` inverse input and input.
    patch : int, default 8
        Patch size of the non-overlapping block DCT.
    rel_floor : float, default 1e-9
        Bands whose mean ``|DCT(x)|`` is below ``rel_floor`` times the largest
        band's are NaN (the input has nothing there to keep).
    mode : {"magnitude", "projection"}
        ``"magnitude"``: mean ``|DCT(x_hat)|`` / mean ``|DCT(x)|`` over patches
        (counts energy the inverse *adds* to a band too, e.g. the edges of
        its attenuation pattern); ``"projection"``: ``sum DCT(x_hat) DCT(x) /
        sum DCT(x)^2``, the least-squares gain of the input's own content in
        the band (1: kept in phase, 0: dropped).

    Returns
    -------
    numpy.ndarray
        ``(patch * patch,)`` float64 in zigzag order (band 0 = DC); 1 keeps
        the band's magnitude, 0 drops it (values above 1 are possible: the
        inverse may move energy between bands).
    """
    xh, xx = to_2d(x_hat, "x_hat"), to_2d(x, "x")
    if xh.shape != xx.shape:
        raise ValueError(f"x_hat {xh.shape} and x {xx.shape} differ in shape")
    if mode not in ("magnitude", "projection"):
        raise ValueError(f"mode must be 'magnitude' or 'projection', got {mode!r}")
    ch, cx = _zigzag_coeffs(xh, patch), _zigzag_coeffs(xx, patch)
    if mode == "magnitude":
        num, den = np.abs(ch).mean(axis=0), np.abs(cx).mean(axis=0)
    else:
        num, den = (ch * cx).mean(axis=0), (cx * cx).mean(axis=0)
    empty = den <= rel_floor * den.max()  # den >= 0: an all-zero x leaves every band empty
    out = np.full(den.shape, np.nan)
    out[~empty] = num[~empty] / den[~empty]
    return out


def mean_band_retention(pairs, patch: int = 8, mode: str = "magnitude") -> np.ndarray:
    """:func:`band_retention` averaged over images (each image weighs the same; NaN bands skipped).

    Parameters
    ----------
    pairs : iterable of (x_hat, x)
        ``(H, W)`` arrays per image.
    mode : {"magnitude", "projection"}
        See :func:`band_retention`.

    Returns
    -------
    numpy.ndarray
        ``(patch * patch,)``.
    """
    curves = [band_retention(xh, xx, patch, mode=mode) for xh, xx in pairs]
    if not curves:
        raise ValueError("mean_band_retention needs at least one image")
    stack = np.stack(curves)
    with np.errstate(invalid="ignore"):
        n = np.isfinite(stack).sum(axis=0)
        return np.where(n > 0, np.nansum(stack, axis=0) / np.maximum(n, 1), np.nan)
