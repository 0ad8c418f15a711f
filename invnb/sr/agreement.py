"""Does an attribution's frequency curve point where the SR network actually loses accuracy?

Three curves on one axis of frequency (cycles per HR pixel): an attribution-by-frequency curve (what an
explanation says the network relies on, e.g. :func:`invnb.sr.chirp_profiles` of the inverse on the
chirp), the network's measured gain (:mod:`invnb.sr.response`: how much of each frequency its output
reproduces) and its per-band error (:mod:`invnb.sr.band_error`: how wrong it is there).
:func:`frequency_agreement` compares them below the low-resolution (LR) Nyquist frequency ``0.5 / scale``,
where the input still carries the content and a network can reproduce it or not:

- **rank agreement**: the Spearman correlation between attribution and gain (positive: the explanation is
  high where the network reproduces the band), and between attribution and error (negative: low where the
  network is wrong), each also against the network's gain and error *relative to bicubic* when bicubic's
  curves are given (where the network adds least to plain interpolation);
- **bands**: the band of lowest attribution, of worst gain and of worst error, each found by the rule of
  :func:`invnb.sr.lowest_band` (the contiguous bins around the extreme beyond the midpoint between the
  low-frequency level and the extreme), and whether the attribution's band overlaps the other two.

References
----------
Kwon et al., IEEE TNNLS 2021: "conventional CNNs for single image super-resolution overlook a portion of
frequency bands that may result in performance degradation" - the sentence these numbers test.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.stats import spearmanr

from invnb.sr.band_error import BandError
from invnb.sr.chirp import FrequencyBins, lr_nyquist
from invnb.sr.response import FrequencyResponse

__all__ = ["Band", "FrequencyAgreement", "as_curve", "extreme_band", "frequency_agreement", "overlap"]


@dataclasses.dataclass
class Band:
    """A contiguous frequency band around a curve's extreme.

    Attributes
    ----------
    lo, hi : float
        Range in cycles/px (edges of the bins).
    f_extreme : float
        Centre of the extreme bin.
    value : float
        The curve's value there.
    reference : float
        The curve's low-frequency level (mean of the bins below ``ref_max``).
    """

    lo: float
    hi: float
    f_extreme: float
    value: float
    reference: float

    def to_dict(self) -> dict:
        """JSON-ready dict of the five numbers."""
        return {k: float(v) for k, v in dataclasses.asdict(self).items()}


def extreme_band(edges, values, kind: str = "min", ref_max: float = 0.05, weights=None, ok=None,
                 min_depth: float = 0.0) -> Band | None:
    """The band around a binned curve's minimum (or maximum), by the rule of :func:`invnb.sr.lowest_band`.

    The extreme is searched among the bins with centres at or above ``ref_max``; the band is the run of
    contiguous usable bins around it whose values lie beyond the midpoint between the extreme and the
    reference (the weighted mean of the bins below ``ref_max``).

    Parameters
    ----------
    edges : array-like
        ``(B + 1,)`` bin edges.
    values : array-like
        ``(B,)`` the curve.
    kind : {"min", "max"}
        Which extreme.
    ref_max : float, default 0.05
        Bins with centres below it make the reference.
    weights : array-like, optional
        ``(B,)`` weights of the reference mean (e.g. pixel counts); default equal.
    ok : array-like of bool, optional
        ``(B,)`` usable bins (default: finite values).
    min_depth : float, default 0
        No band (None) when the extreme differs from the reference by less than ``min_depth`` times the
        reference's magnitude: a flat curve has no worst band, only noise.

    Returns
    -------
    Band or None

    Examples
    --------
    >>> edges = np.arange(0.0, 0.2 + 1e-9, 0.02)  # ten bins, centres 0.01 .. 0.19
    >>> b = extreme_band(edges, [1, 1, 1, 0.9, 0.4, 0.5, 0.95, 1, 1, 1], "min")
    >>> round(b.lo, 2), round(b.hi, 2), round(b.f_extreme, 2), b.value
    (0.08, 0.12, 0.09, 0.4)
    """
    e = np.asarray(edges, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if e.ndim != 1 or v.ndim != 1 or e.size != v.size + 1:
        raise ValueError(f"need (B + 1,) edges and (B,) values, got {e.shape} and {v.shape}")
    if kind not in ("min", "max"):
        raise ValueError(f"kind must be 'min' or 'max', got {kind!r}")
    c = 0.5 * (e[1:] + e[:-1])
    usable = np.isfinite(v) & (np.ones(v.shape, bool) if ok is None else np.asarray(ok, dtype=bool))
    wts = np.ones(v.shape) if weights is None else np.asarray(weights, dtype=np.float64)
    ref_bins = usable & (c < ref_max)
    if not ref_bins.any() or not (usable & (c >= ref_max)).any():
        raise ValueError(f"need usable bins both below and above ref_max={ref_max}")
    reference = float(np.average(v[ref_bins], weights=wts[ref_bins]))
    cand = np.where(usable & (c >= ref_max))[0]
    sign = 1.0 if kind == "min" else -1.0
    k = int(cand[np.argmin(sign * v[cand])])
    if abs(v[k] - reference) <= min_depth * abs(reference):
        return None
    level = 0.5 * (reference + v[k])
    lo_k = hi_k = k
    while lo_k - 1 >= 0 and usable[lo_k - 1] and sign * v[lo_k - 1] <= sign * level:
        lo_k -= 1
    while hi_k + 1 < v.size and usable[hi_k + 1] and sign * v[hi_k + 1] <= sign * level:
        hi_k += 1
    return Band(lo=float(e[lo_k]), hi=float(e[hi_k + 1]), f_extreme=float(c[k]), value=float(v[k]),
                reference=reference)


def overlap(a: Band | None, b: Band | None) -> float:
    """Intersection over union of two bands' frequency ranges.

    Parameters
    ----------
    a, b : Band or None
        The bands.

    Returns
    -------
    float
        0 for disjoint bands (or when either is None), 1 for identical ones.

    Examples
    --------
    >>> round(overlap(Band(0.1, 0.2, 0.15, 0.0, 1.0), Band(0.15, 0.25, 0.2, 0.0, 1.0)), 3)
    0.333
    """
    if a is None or b is None:
        return 0.0
    inter = max(0.0, min(a.hi, b.hi) - max(a.lo, b.lo))
    union = max(a.hi, b.hi) - min(a.lo, b.lo)
    return inter / union if union > 0 else 0.0


def as_curve(curve) -> tuple[np.ndarray, np.ndarray]:
    """``(frequencies, values)`` of a curve given as a pair, a :class:`~invnb.sr.FrequencyBins`, a
    :class:`~invnb.sr.BandError` (its relative error) or a :class:`~invnb.sr.FrequencyResponse` (the
    model's gain).

    Parameters
    ----------
    curve : pair of array-like, FrequencyBins, BandError or FrequencyResponse
        The curve.

    Returns
    -------
    frequencies, values : numpy.ndarray
        ``(B,)`` each, float64.

    Examples
    --------
    >>> f, v = as_curve(([0.1, 0.2], [1.0, 0.5]))
    >>> f.tolist(), v.tolist()
    ([0.1, 0.2], [1.0, 0.5])
    """
    if isinstance(curve, FrequencyBins):
        return curve.centers, curve.mean
    if isinstance(curve, BandError):
        return curve.centers, curve.relative
    if isinstance(curve, FrequencyResponse):
        return curve.frequencies, curve.gain("model")
    f, v = (np.asarray(a, dtype=np.float64) for a in curve)
    if f.ndim != 1 or f.shape != v.shape:
        raise ValueError(f"a curve needs 1-D frequencies and values of one length, got {f.shape} and {v.shape}")
    return f, v


def _on(centers: np.ndarray, curve) -> np.ndarray:
    """A curve linearly interpolated at `centers` (NaN outside its finite range)."""
    if curve is None:
        return np.full(centers.shape, np.nan)
    f, v = as_curve(curve)
    keep = np.isfinite(f) & np.isfinite(v)
    if keep.sum() < 2:
        return np.full(centers.shape, np.nan)
    f, v = f[keep], v[keep]
    order = np.argsort(f)
    f, v = f[order], v[order]
    out = np.interp(centers, f, v)
    out[(centers < f[0]) | (centers > f[-1])] = np.nan
    return out


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return float("nan")
    return float(spearmanr(a[ok], b[ok]).statistic)


@dataclasses.dataclass
class FrequencyAgreement:
    """Agreement numbers of an attribution curve with a network's gain and per-band error.

    Attributes
    ----------
    scale : int
        SR factor.
    f_max : float
        Upper frequency of the comparison (the LR Nyquist frequency by default).
    edges : numpy.ndarray
        ``(B + 1,)`` edges of the common bins (the attribution's, up to ``f_max``).
    curves : dict of str to numpy.ndarray
        ``(B,)`` each on the common bins: ``attribution``, ``gain``, ``error`` and, when given,
        ``gain_bicubic``, ``error_bicubic``, ``gain_vs_bicubic`` (ratio), ``error_vs_bicubic`` (ratio).
    spearman : dict of str to float
        Spearman correlation of the attribution with each other curve (NaN with fewer than 3 bins). Read it
        with :attr:`ranges`: a correlation with a flat curve ranks noise.
    bands : dict of str to Band or None
        ``attribution`` (lowest), ``gain`` (lowest), ``error`` (highest) and, when bicubic's curves are
        given, ``gain_vs_bicubic`` (lowest) and ``error_vs_bicubic`` (highest); None where the curve has no
        extreme that departs from its low-frequency level by more than ``min_depth``.
    overlaps : dict of str to float
        Intersection over union of the attribution's band with each other band (0 when either is None).
    ranges : dict of str to (float, float)
        Minimum and maximum of each curve on the common bins.
    """

    scale: int
    f_max: float
    edges: np.ndarray
    curves: dict[str, np.ndarray]
    spearman: dict[str, float]
    bands: dict[str, Band | None]
    overlaps: dict[str, float]
    ranges: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)

    @property
    def centers(self) -> np.ndarray:
        return 0.5 * (self.edges[1:] + self.edges[:-1])

    def overlaps_band(self, name: str) -> bool:
        """Whether the attribution's lowest band shares any frequency with band `name`."""
        return self.overlaps.get(name, 0.0) > 0

    def to_dict(self) -> dict:
        """JSON-ready dict (NaN as None)."""
        def clean(x):
            return None if x is None or (isinstance(x, float) and np.isnan(x)) else x

        return {"scale": self.scale, "f_max": self.f_max, "edges": self.edges.tolist(),
                "curves": {k: [clean(float(x)) for x in v] for k, v in self.curves.items()},
                "spearman": {k: clean(v) for k, v in self.spearman.items()},
                "bands": {k: None if b is None else b.to_dict() for k, b in self.bands.items()},
                "overlaps": dict(self.overlaps), "ranges": {k: list(v) for k, v in self.ranges.items()},
                "overlap": {k: self.overlaps_band(k) for k in self.overlaps}}

    def __str__(self) -> str:
        def rng(name):
            lo, hi = self.ranges.get(name, (np.nan, np.nan))
            return f"{lo:.3g}..{hi:.3g}"

        def band(b):
            return "none" if b is None else f"{b.lo:.2f}-{b.hi:.2f}"

        parts = [f"x{self.scale} below {self.f_max:.3f} cycles/px ({self.edges.size - 1} bins): "
                 f"lowest attribution {band(self.bands['attribution'])}"]
        for name in ("gain", "gain_vs_bicubic", "error", "error_vs_bicubic"):
            if name in self.spearman:
                parts.append(f"{name} [{rng(name)}] band {band(self.bands.get(name))} (Spearman "
                             f"{self.spearman[name]:+.2f}, overlap {self.overlaps.get(name, 0.0):.2f})")
        return "; ".join(parts)


def frequency_agreement(attribution, gain, error, scale: int, gain_bicubic=None, error_bicubic=None,
                        f_max: float | None = None, ref_max: float = 0.05, min_count: int | None = None,
                        min_depth: float = 0.02) -> FrequencyAgreement:
    """Compare an attribution-by-frequency curve with a network's gain and per-band error.

    Every curve is put on the attribution's bins (linear interpolation at the bin centres) that lie wholly
    below ``f_max``; bins with few pixels (the sparse corner of a radial chirp profile) are left out.

    Parameters
    ----------
    attribution : invnb.sr.FrequencyBins or (frequencies, values)
        Attribution against frequency, e.g. ``chirp_profiles(...)["radial"]``; a pair is taken as bin
        centres of equal width.
    gain : invnb.sr.FrequencyResponse or (frequencies, values)
        The network's gain (higher is better).
    error : invnb.sr.BandError or (frequencies, values)
        The network's per-band relative error (lower is better).
    scale : int
        SR factor.
    gain_bicubic, error_bicubic : curve, optional
        Bicubic's gain and error on the same images, for the curves relative to bicubic.
    f_max : float, optional
        Upper end of the comparison; default the LR Nyquist frequency ``0.5 / scale``.
    ref_max : float, default 0.05
        Bins below it make each curve's low-frequency level (see :func:`extreme_band`).
    min_count : int, optional
        Attribution bins with fewer pixels are left out; default a fifth of the median count of non-empty
        bins (as :func:`invnb.sr.lowest_band`).
    min_depth : float, default 0.02
        A curve whose extreme departs from its low-frequency level by at most this fraction has no band
        (e.g. a gain within 2 % of 1 everywhere: nothing is lost).

    Returns
    -------
    FrequencyAgreement

    Examples
    --------
    >>> f = np.arange(0.005, 0.25, 0.01)
    >>> agr = frequency_agreement((f, 1 - f), (f, 1 - 2 * f), (f, f), scale=2)
    >>> round(agr.spearman["gain"], 3), round(agr.spearman["error"], 3)
    (1.0, -1.0)
    """
    if isinstance(scale, bool) or int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    scale = int(scale)
    if isinstance(attribution, FrequencyBins):
        edges, att, count = attribution.edges, attribution.mean.astype(np.float64), attribution.count
    else:
        c, att = as_curve(attribution)
        if c.size < 2 or not (np.diff(c) > 0).all():
            raise ValueError("an attribution curve given as a pair needs increasing frequencies")
        half = np.diff(c).mean() / 2
        edges = np.concatenate([[c[0] - half], 0.5 * (c[1:] + c[:-1]), [c[-1] + half]])
        count = np.ones(c.size, dtype=np.int64)
    f_max = lr_nyquist(scale) if f_max is None else float(f_max)
    centers = 0.5 * (edges[1:] + edges[:-1])
    if min_count is None:
        nonempty = count[count > 0]
        min_count = max(1, int(0.2 * np.median(nonempty))) if nonempty.size else 1
    keep = (edges[1:] <= f_max + 1e-9) & (count >= min_count) & np.isfinite(att)
    if keep.sum() < 2:
        raise ValueError(f"fewer than two usable attribution bins below f_max={f_max:.3f}")
    last = int(np.where(keep)[0].max())
    edges, att, count, keep = edges[:last + 2], att[:last + 1], count[:last + 1], keep[:last + 1]
    centers = centers[:last + 1]
    curves = {"attribution": np.where(keep, att, np.nan), "gain": _on(centers, gain), "error": _on(centers, error)}
    if gain_bicubic is not None:
        curves["gain_bicubic"] = _on(centers, gain_bicubic)
        with np.errstate(invalid="ignore", divide="ignore"):
            curves["gain_vs_bicubic"] = curves["gain"] / curves["gain_bicubic"]
    if error_bicubic is not None:
        curves["error_bicubic"] = _on(centers, error_bicubic)
        with np.errstate(invalid="ignore", divide="ignore"):
            curves["error_vs_bicubic"] = curves["error"] / curves["error_bicubic"]
    for name in curves:
        curves[name] = np.where(keep & np.isfinite(curves[name]), curves[name], np.nan)
    others = [n for n in ("gain", "gain_vs_bicubic", "error", "error_vs_bicubic") if n in curves]
    spearman = {n: _spearman(curves["attribution"], curves[n]) for n in others}
    bands = {"attribution": extreme_band(edges, curves["attribution"], "min", ref_max, weights=count,
                                         min_depth=min_depth)}
    for n in others:
        try:
            bands[n] = extreme_band(edges, curves[n], "min" if n.startswith("gain") else "max", ref_max,
                                    min_depth=min_depth)
        except ValueError:  # the curve has no usable bin below or above ref_max
            bands[n] = None
    overlaps = {n: overlap(bands["attribution"], b) for n, b in bands.items() if n != "attribution"}
    ranges = {n: (float(np.nanmin(v)), float(np.nanmax(v))) if np.isfinite(v).any() else (np.nan, np.nan)
              for n, v in curves.items()}
    return FrequencyAgreement(scale=scale, f_max=f_max, edges=np.asarray(edges, dtype=np.float64),
                              curves=curves, spearman=spearman, bands=bands, overlaps=overlaps, ranges=ranges)
