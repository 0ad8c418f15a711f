"""The chirp experiment: on ``sin(x^2/c) sin(y^2/c)`` position is frequency.

The paper's "Artificial" image is the chirp ``sin(x^2/1024) sin(y^2/1024)``
on ``x, y = 1..512`` (:func:`chirp_hr` with its defaults). The phase
``x^2/c`` has derivative ``2x/c`` radians per pixel, so the local frequency
along ``x`` is ``f_x = x / (c pi)`` cycles per pixel (likewise ``y``): from
0 at the top-left corner to ``512 / (1024 pi) = 0.159`` at the right edge.
An attribution map over the chirp is therefore a map over frequencies; this
module bins it by the radial local frequency ``sqrt(f_x^2 + f_y^2)`` and by
each axis, and finds the band the network relies on least.

A smaller chirp covers the same frequency range when ``c`` shrinks with the
side: ``c = 2 * size`` gives ``f = t / (2 size pi)``, i.e. 0..0.159
cycles/px at every size (``size=512`` is the paper's image). The frequency
then changes faster per pixel: VDSR's 41-pixel receptive field sees a wider
spread of frequencies on a small chirp.

A scale's low-resolution Nyquist frequency is ``0.5 / scale`` cycles per
HR pixel: content above it was aliased away by the downscaling.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from invnb._utils.checks import to_2d

__all__ = ["PAPER_SIZE", "chirp_image", "chirp_hr", "chirp_frequencies", "lr_nyquist", "FrequencyBins", "bin_by_frequency", "chirp_profiles", "ChirpBand", "lowest_band"]


# --------------------------------------------------------------------------
# The "Artificial" image
# --------------------------------------------------------------------------
#: Side of the paper's chirp image.
PAPER_SIZE = 512


def _check_size_rate(size, rate):
    if isinstance(size, bool) or int(size) != size or size < 2:
        raise ValueError(f"size must be an integer >= 2, got {size!r}")
    rate = 2.0 * size if rate is None else float(rate)
    if not np.isfinite(rate) or rate <= 0:
        raise ValueError(f"rate must be a positive number, got {rate!r}")
    return int(size), rate


def chirp_image(size: int = PAPER_SIZE, rate: float | None = None) -> np.ndarray:
    """The chirp ``sin(x^2/rate) sin(y^2/rate)``, ``x, y = 1..size``, min-max normalised.

    Parameters
    ----------
    size : int, default 512
        Side in pixels.
    rate : float, optional
        The constant ``c``; default ``2 * size`` (1024 at 512: the paper's
        image; the same frequency range, 0..0.159 cycles/px, at any size).

    Returns
    -------
    numpy.ndarray
        ``(size, size)`` float64 in [0, 1]; rows follow ``y``, columns ``x``.
    """
    size, rate = _check_size_rate(size, rate)
    t = np.arange(1, size + 1, dtype=np.float64)
    s = np.sin(t * t / rate)
    img = np.outer(s, s)
    return (img - img.min()) / (img.max() - img.min())


def chirp_hr(size: int = PAPER_SIZE, rate: float | None = None) -> np.ndarray:
    """The chirp as a grey uint8 RGB image for :func:`invnb.sr.make_sr_sample`.

    ``round(255 * chirp_image(size, rate))`` (MATLAB's ``im2uint8`` rounding) on three channels:
    at the defaults, the paper's "Artificial" image as its MATLAB script saved it. Feed it to
    :func:`invnb.sr.make_sr_sample` with ``cumulative_crop=True`` for the paper's x2/x3/x4 files.

    Returns
    -------
    numpy.ndarray
        ``(size, size, 3)`` uint8.
    """
    g = np.floor(chirp_image(size, rate) * 255.0 + 0.5).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=2)


def chirp_frequencies(shape: tuple[int, int], rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Local frequency of every pixel of a chirp (or its top-left crop).

    Pixel ``(i, j)`` (0-based row, column) has ``y = i + 1``, ``x = j + 1``
    and local frequencies ``f_y = y / (rate pi)``, ``f_x = x / (rate pi)``.
    Cropping the bottom/right (``modcrop``) keeps these coordinates.

    Parameters
    ----------
    shape : (int, int)
        ``(H, W)``.
    rate : float
        The chirp constant ``c``.

    Returns
    -------
    fy, fx : numpy.ndarray
        ``(H, W)`` float64, cycles per pixel.
    """
    h, w = (int(v) for v in shape)
    if h < 1 or w < 1 or not np.isfinite(rate) or rate <= 0:
        raise ValueError(f"need a positive shape and rate, got {shape}, {rate}")
    fy = np.arange(1, h + 1, dtype=np.float64) / (rate * np.pi)
    fx = np.arange(1, w + 1, dtype=np.float64) / (rate * np.pi)
    return np.broadcast_to(fy[:, None], (h, w)).copy(), np.broadcast_to(fx[None, :], (h, w)).copy()


def lr_nyquist(scale: int) -> float:
    """Nyquist frequency of the low-resolution image, in cycles per HR pixel (``0.5 / scale``)."""
    if isinstance(scale, bool) or scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale!r}")
    return 0.5 / scale


@dataclasses.dataclass
class FrequencyBins:
    """Mean of a map in bins of local frequency.

    Attributes
    ----------
    edges : numpy.ndarray
        ``(B + 1,)`` bin edges, cycles/px.
    mean : numpy.ndarray
        ``(B,)`` mean value per bin (NaN for an empty bin).
    count : numpy.ndarray
        ``(B,)`` pixels per bin.
    """

    edges: np.ndarray
    mean: np.ndarray
    count: np.ndarray

    @property
    def centers(self) -> np.ndarray:
        """``(B,)`` bin centres."""
        return 0.5 * (self.edges[1:] + self.edges[:-1])

    def to_dict(self) -> dict:
        """JSON-ready dict (NaN as None); :meth:`from_dict` reads it back."""
        return {"edges": self.edges.tolist(), "mean": [None if np.isnan(v) else float(v) for v in self.mean],
                "count": self.count.tolist()}

    def coarsen(self, k: int) -> "FrequencyBins":
        """Merge every ``k`` adjacent bins (pixel-weighted means; a short last group is dropped)."""
        if int(k) != k or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        k = int(k)
        nb = (self.mean.size // k) * k
        if nb == 0:
            raise ValueError(f"cannot merge {k} of {self.mean.size} bins")
        cnt = self.count[:nb].reshape(-1, k)
        tot = (np.nan_to_num(self.mean[:nb]) * self.count[:nb]).reshape(-1, k).sum(axis=1)
        c = cnt.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(c > 0, tot / np.maximum(c, 1), np.nan)
        return FrequencyBins(edges=self.edges[: nb + 1: k], mean=mean, count=c)

    @classmethod
    def from_dict(cls, d: dict) -> "FrequencyBins":
        """Inverse of :meth:`to_dict` (e.g. a profile of a bundled ``summary.json``)."""
        return cls(edges=np.asarray(d["edges"], dtype=np.float64),
                   mean=np.array([np.nan if v is None else v for v in d["mean"]], dtype=np.float64),
                   count=np.asarray(d["count"], dtype=np.int64))


def bin_by_frequency(values, freq, edges, margin: int = 0) -> FrequencyBins:
    """Average ``values`` over pixels whose frequency ``freq`` falls in each bin.

    Parameters
    ----------
    values, freq : array-like
        ``(H, W)`` map and local frequency (cycles/px) of each pixel.
    edges : array-like
        ``(B + 1,)`` increasing bin edges; a bin is ``[lo, hi)``.
    margin : int, default 0
        Pixels left out along every border (the network's zero padding).

    Returns
    -------
    FrequencyBins
    """
    v, f = to_2d(values, "values"), to_2d(freq, "freq")
    if v.shape != f.shape:
        raise ValueError(f"values {v.shape} and freq {f.shape} differ in shape")
    edges = np.asarray(edges, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or not (np.diff(edges) > 0).all():
        raise ValueError("edges must be an increasing 1-D array of at least two values")
    if margin < 0 or 2 * margin >= min(v.shape):
        raise ValueError(f"margin {margin} leaves nothing of a {v.shape} map")
    if margin:
        v, f = v[margin:-margin, margin:-margin], f[margin:-margin, margin:-margin]
    v, f = v.ravel(), f.ravel()
    if np.isnan(v).any():
        raise ValueError("values contain NaN")
    idx = np.digitize(f, edges) - 1
    ok = (idx >= 0) & (idx < edges.size - 1)
    count = np.bincount(idx[ok], minlength=edges.size - 1)
    total = np.bincount(idx[ok], weights=v[ok], minlength=edges.size - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return FrequencyBins(edges=edges, mean=mean, count=count)


def chirp_profiles(attribution, rate: float, edges=None, margin: int = 8, width: float = 0.01) -> dict[str, FrequencyBins]:
    """Attribution of a chirp binned by radial local frequency and along each axis.

    Parameters
    ----------
    attribution : array-like
        ``(H, W)`` map over the chirp (e.g. ``|x_hat| / (|x| + 1e-6)``).
    rate : float
        The chirp constant ``c`` (1024 for the paper's image).
    edges : array-like, optional
        Bin edges in cycles/px; default ``width``-wide bins up to the largest
        radial frequency of the map.
    margin : int, default 8
        Border pixels left out.
    width : float, default 0.01
        Default bin width (cycles/px). 0.005 bins follow the chirp's phase
        (the ratio ``|x_hat| / |x|`` differs between its bright and dark
        stripes) and put the minimum of a broad dip in a noisy place; 0.01
        bins agree between the 256- and 512-pixel chirps.

    Returns
    -------
    dict
        ``{"radial": ..., "x": ..., "y": ...}`` of :class:`FrequencyBins`
        (``"x"`` bins by ``f_x`` averaging over all rows, ``"y"`` by ``f_y``).
    """
    att = to_2d(attribution, "attribution")
    fy, fx = chirp_frequencies(att.shape, rate)
    fr = np.hypot(fx, fy)
    if edges is None:
        if not width > 0:
            raise ValueError(f"width must be positive, got {width!r}")
        edges = np.arange(0.0, fr.max() + width, width)
    return {
        "radial": bin_by_frequency(att, fr, edges, margin),
        "x": bin_by_frequency(att, fx, edges, margin),
        "y": bin_by_frequency(att, fy, edges, margin),
    }


@dataclasses.dataclass
class ChirpBand:
    """The band of lowest attribution of a binned profile.

    Attributes
    ----------
    lo, hi : float
        Frequency range (cycles/px): the contiguous bins around the minimum
        whose value lies below the midpoint of reference and minimum.
    f_min : float
        Centre of the lowest bin.
    value : float
        Mean attribution in the lowest bin.
    reference : float
        Mean attribution of the low-frequency bins (centres below ``ref_max``).
    depth : float
        ``1 - value / reference`` (0: no dip; 1: nothing kept).
    above : float
        Mean over the bins above the band relative to ``reference`` (NaN when
        the band reaches the top); larger than ``value / reference`` when the
        attribution recovers above the band (a dip, not a fall-off).
    """

    lo: float
    hi: float
    f_min: float
    value: float
    reference: float
    depth: float
    above: float

    def to_dict(self) -> dict:
        return {k: float(v) for k, v in dataclasses.asdict(self).items()}

    def __str__(self) -> str:
        rec = "" if np.isnan(self.above) else f", {self.above:.2f} of it above the band"
        return (f"lowest {self.lo:.3f}-{self.hi:.3f} cycles/px (min at {self.f_min:.3f}): "
                f"{self.value:.3f} vs {self.reference:.3f} at low frequency, depth {self.depth:.2f}{rec}")


def lowest_band(bins: FrequencyBins, ref_max: float = 0.05, min_count: int | None = None) -> ChirpBand:
    """Where a binned attribution profile is lowest, and how deep the dip is.

    Parameters
    ----------
    bins : FrequencyBins
    ref_max : float, default 0.05
        Bins with centres below it (cycles/px) make the low-frequency reference.
    min_count : int, optional
        Bins with fewer pixels are ignored (the sparse corner of the radial
        profile); default a fifth of the median count of non-empty bins.

    Returns
    -------
    ChirpBand
    """
    c, m = bins.centers, bins.mean
    if min_count is None:
        nonempty = bins.count[bins.count > 0]
        min_count = max(1, int(0.2 * np.median(nonempty))) if nonempty.size else 1
    ok = (bins.count >= min_count) & np.isfinite(m)
    ref_bins = ok & (c < ref_max)
    if not ref_bins.any() or not (ok & (c >= ref_max)).any():
        raise ValueError(f"need populated bins both below and above ref_max={ref_max}")
    reference = float(np.average(m[ref_bins], weights=bins.count[ref_bins]))
    cand = np.where(ok & (c >= ref_max))[0]
    k = int(cand[np.argmin(m[cand])])
    level = 0.5 * (reference + m[k])
    lo_k = hi_k = k
    while lo_k - 1 >= 0 and ok[lo_k - 1] and m[lo_k - 1] <= level:
        lo_k -= 1
    while hi_k + 1 < m.size and ok[hi_k + 1] and m[hi_k + 1] <= level:
        hi_k += 1
    rest = ok.copy()
    rest[: hi_k + 1] = False
    above = (float(np.average(m[rest], weights=bins.count[rest]) / reference)
             if rest.any() and reference > 0 else float("nan"))
    return ChirpBand(lo=float(bins.edges[lo_k]), hi=float(bins.edges[hi_k + 1]), f_min=float(c[k]),
                     value=float(m[k]), reference=reference,
                     depth=float(1 - m[k] / reference) if reference > 0 else float("nan"), above=above)
