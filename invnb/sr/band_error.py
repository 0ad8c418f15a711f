"""Where in frequency an SR result is wrong: the radial spectrum of ``SR - HR`` relative to ``HR``'s.

For a super-resolved image ``sr`` and its ground truth ``hr`` (luminance), the error ``sr - hr`` and the
truth are each made mean-free, weighted with a separable Hann window (the images are not periodic: without
it their borders leak into every band), transformed by the 2-D DFT and their power summed over rings of
radial frequency ``|k| = sqrt(fx^2 + fy^2)``. The relative error of a band is the error's power there over
the truth's: 0 is perfect, 1 is an error as large as the band's content (what a result that lost the band
entirely scores), above 1 an error larger than the content (detail added that is not there). This is the
"performance degradation" per frequency band that the claim about SR networks is about.

On the chirp ``sin(x^2/c) sin(y^2/c)`` position is frequency (:mod:`invnb.sr.chirp`), so the same question has a
local form as well: :func:`chirp_band_error` bins the squared error and the truth's squared deviation from
its mean by the local frequency of each pixel. On the chirp prefer it: the window of the spectral form
weights the image's centre, which on the chirp is its middle frequencies, and all but removes its lowest
(top-left corner) and highest (bottom-right) ones.

References
----------
Kwon et al., IEEE TNNLS 2021 (the claim); Harris, "On the use of windows for harmonic analysis with the
discrete Fourier transform", Proc. IEEE 1978 (the Hann window).

Examples
--------
>>> rng = np.random.default_rng(0)
>>> hr = rng.random((64, 64))
>>> err = band_error(hr + 0.1 * rng.standard_normal(hr.shape), hr)
>>> err.relative.shape  # one value per 0.01-wide band up to 0.5 cycles/px
(50,)
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from invnb._utils.checks import to_2d
from invnb._utils.windows import hann_2d
from invnb.sr.chirp import bin_by_frequency, chirp_frequencies

__all__ = ["BandError", "DEFAULT_EDGES", "band_error", "chirp_band_error", "mean_relative_error", "radial_power"]

#: Band edges used by default: 0.01 cycles/px wide from 0 to 0.5 (the HR Nyquist frequency along an axis).
DEFAULT_EDGES = np.round(np.arange(0.0, 0.5 + 1e-9, 0.01), 10)


def _edges(edges) -> np.ndarray:
    e = DEFAULT_EDGES if edges is None else np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or e.size < 2 or not (np.diff(e) > 0).all() or e[0] < 0:
        raise ValueError("edges must be an increasing 1-D array of at least two non-negative frequencies")
    return e


def radial_power(img, edges=None, border: int = 0, window: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Power of an image's spectrum summed over rings of radial frequency.

    Parameters
    ----------
    img : array-like or torch.Tensor
        ``(H, W)`` image.
    edges : array-like, optional
        ``(B + 1,)`` increasing ring edges in cycles/px (a ring is ``[lo, hi)``); default :data:`DEFAULT_EDGES`.
    border : int, default 0
        Pixels left out on every side first.
    window : bool, default True
        Make the crop mean-free with the Hann weights and multiply by them (else: plain mean removal, the
        crop taken as periodic).

    Returns
    -------
    power : numpy.ndarray
        ``(B,)`` sum of ``|DFT|^2`` over the ring, divided by the number of pixels.
    count : numpy.ndarray
        ``(B,)`` DFT samples in each ring.

    Examples
    --------
    >>> img = np.cos(2 * np.pi * 0.125 * np.arange(32))[None, :].repeat(32, axis=0)
    >>> power, count = radial_power(img, window=False)
    >>> float(power.argmax() * 0.01), bool(power[12] > 0.99 * power.sum())  # the ring [0.12, 0.13)
    (0.12, True)
    """
    a = to_2d(img, "img")
    e = _edges(edges)
    border = int(border)
    if border < 0 or 2 * border >= min(a.shape) - 1:
        raise ValueError(f"border {border} leaves nothing of an image of shape {a.shape}")
    if border:
        a = a[border:-border, border:-border]
    if window:
        w = hann_2d(a.shape)
        a = (a - np.average(a, weights=w)) * w
    else:
        a = a - a.mean()
    spec = np.abs(np.fft.fft2(a)) ** 2 / a.size
    fy, fx = np.fft.fftfreq(a.shape[0])[:, None], np.fft.fftfreq(a.shape[1])[None, :]
    fr = np.hypot(fx, fy).ravel()
    idx = np.digitize(fr, e) - 1
    ok = (idx >= 0) & (idx < e.size - 1)
    power = np.bincount(idx[ok], weights=spec.ravel()[ok], minlength=e.size - 1)
    count = np.bincount(idx[ok], minlength=e.size - 1)
    return power, count


@dataclasses.dataclass
class BandError:
    """Error power and reference power per band of radial frequency.

    Attributes
    ----------
    edges : numpy.ndarray
        ``(B + 1,)`` band edges, cycles per pixel.
    error_power, reference_power : numpy.ndarray
        ``(B,)`` ring power of ``sr - hr`` and of ``hr`` (see :func:`radial_power`).
    count : numpy.ndarray
        ``(B,)`` samples per band (DFT samples, or pixels for :func:`chirp_band_error`).
    rel_floor : float
        Bands whose reference power is below ``rel_floor`` times the largest band's have no relative error
        (NaN): the truth has too little there for a ratio to mean anything. Natural images keep more than
        1e-5 of their largest band's power up to 0.5 cycles/px (Set5 and the embedded photographs: at least
        8e-5 with the window); above its top frequency the chirp keeps only the 8-bit rounding's noise floor,
        about 2e-6.
    """

    edges: np.ndarray
    error_power: np.ndarray
    reference_power: np.ndarray
    count: np.ndarray
    rel_floor: float = 1e-5

    @property
    def centers(self) -> np.ndarray:
        """``(B,)`` band centres."""
        return 0.5 * (self.edges[1:] + self.edges[:-1])

    @property
    def relative(self) -> np.ndarray:
        """``(B,)`` error power over reference power (lower is better; NaN where the reference is empty)."""
        ref = self.reference_power
        empty = (self.count == 0) | (ref <= self.rel_floor * np.max(ref, initial=0.0))
        out = np.full(ref.shape, np.nan)
        out[~empty] = self.error_power[~empty] / ref[~empty]
        return out

    def to_dict(self) -> dict:
        """JSON-ready dict (NaN as None); :meth:`from_dict` reads it back."""
        return {"edges": self.edges.tolist(), "error_power": self.error_power.tolist(),
                "reference_power": self.reference_power.tolist(), "count": self.count.tolist(),
                "rel_floor": self.rel_floor,
                "relative": [None if np.isnan(v) else float(v) for v in self.relative]}

    @classmethod
    def from_dict(cls, d: dict) -> "BandError":
        """Inverse of :meth:`to_dict`."""
        return cls(edges=np.asarray(d["edges"], dtype=np.float64),
                   error_power=np.asarray(d["error_power"], dtype=np.float64),
                   reference_power=np.asarray(d["reference_power"], dtype=np.float64),
                   count=np.asarray(d["count"], dtype=np.int64), rel_floor=float(d.get("rel_floor", 1e-5)))


def band_error(sr, hr, edges=None, border: int = 0, window: bool = True, rel_floor: float = 1e-5) -> BandError:
    """Radial spectrum of ``sr - hr`` relative to that of ``hr``, per frequency band.

    Parameters
    ----------
    sr, hr : array-like or torch.Tensor
        ``(H, W)`` SR result and ground truth (same units, e.g. luminance in [0, 1]).
    edges : array-like, optional
        Band edges in cycles/px; default :data:`DEFAULT_EDGES`.
    border : int, default 0
        Pixels left out on every side (the scale, as the SR metrics do).
    window : bool, default True
        Hann-weighted, mean-free crops (see :func:`radial_power`); False treats the crops as periodic.
    rel_floor : float, default 1e-5
        See :class:`BandError`.

    Returns
    -------
    BandError
        ``.relative`` is the per-band relative error (0 perfect; 1 the band's content entirely wrong or
        missing; lower is better).

    Examples
    --------
    >>> hr = np.random.default_rng(1).random((48, 48))
    >>> float(np.nanmax(band_error(hr, hr).relative))
    0.0
    """
    s, h = to_2d(sr, "sr"), to_2d(hr, "hr")
    if s.shape != h.shape:
        raise ValueError(f"sr {s.shape} and hr {h.shape} differ in shape")
    if not (np.isfinite(s).all() and np.isfinite(h).all()):
        raise ValueError("sr and hr must be finite (no NaN or inf)")
    err_p, count = radial_power(s - h, edges, border, window)
    ref_p, _ = radial_power(h, edges, border, window)
    return BandError(edges=_edges(edges), error_power=err_p, reference_power=ref_p, count=count,
                     rel_floor=float(rel_floor))


def chirp_band_error(sr, hr, rate: float, edges=None, margin: int = 8) -> BandError:
    """Per-band error on a chirp from local frequency: where it is wrong is which frequency it gets wrong.

    Bins ``(sr - hr)^2`` and ``(hr - mean(hr))^2`` by the radial local frequency of each pixel
    (:func:`invnb.sr.chirp_frequencies`), so the error and the attribution of the same chirp share one
    frequency axis pixel for pixel.

    Parameters
    ----------
    sr, hr : array-like or torch.Tensor
        ``(H, W)`` SR result and ground truth of a chirp (or its top-left crop).
    rate : float
        The chirp constant ``c``.
    edges : array-like, optional
        Band edges in cycles/px; default :data:`DEFAULT_EDGES`.
    margin : int, default 8
        Border pixels left out.

    Returns
    -------
    BandError
        ``error_power`` and ``reference_power`` are per-band *means* over pixels here; ``count`` is pixels.

    Examples
    --------
    >>> from invnb.sr.chirp import chirp_image
    >>> hr = chirp_image(64, 128.0)
    >>> err = chirp_band_error(0.5 * hr, hr, 128.0, margin=0)
    >>> bool(np.nanmax(err.relative) > 0.2), int(err.count.sum()) == 64 * 64
    (True, True)
    """
    s, h = to_2d(sr, "sr"), to_2d(hr, "hr")
    if s.shape != h.shape:
        raise ValueError(f"sr {s.shape} and hr {h.shape} differ in shape")
    fy, fx = chirp_frequencies(h.shape, rate)
    fr = np.hypot(fx, fy)
    e = _edges(edges)
    err = bin_by_frequency((s - h) ** 2, fr, e, margin)
    ref = bin_by_frequency((h - h.mean()) ** 2, fr, e, margin)
    return BandError(edges=e, error_power=np.nan_to_num(err.mean), reference_power=np.nan_to_num(ref.mean),
                     count=err.count)


def mean_relative_error(errors: Sequence[BandError]) -> np.ndarray:
    """Per-band relative error averaged over images (each image weighs the same; NaN bands skipped).

    Parameters
    ----------
    errors : sequence of BandError
        With the same edges.

    Returns
    -------
    numpy.ndarray
        ``(B,)``; NaN where no image has content in the band.

    Examples
    --------
    >>> hr = np.random.default_rng(0).random((32, 32))
    >>> m = mean_relative_error([band_error(hr, hr, window=False), band_error(0 * hr + hr.mean(), hr, window=False)])
    >>> round(float(np.nanmin(m)), 12), round(float(np.nanmax(m)), 12)  # 0 and 1 in every band: 0.5
    (0.5, 0.5)
    """
    if not errors:
        raise ValueError("mean_relative_error needs at least one BandError")
    if any(e.edges.shape != errors[0].edges.shape or not np.allclose(e.edges, errors[0].edges) for e in errors):
        raise ValueError("all BandErrors must share their edges")
    stack = np.stack([e.relative for e in errors])
    n = np.isfinite(stack).sum(axis=0)
    with np.errstate(invalid="ignore"):
        return np.where(n > 0, np.nansum(stack, axis=0) / np.maximum(n, 1), np.nan)
