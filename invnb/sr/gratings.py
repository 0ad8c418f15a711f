"""Sinusoidal gratings through the SR pipeline, and the least-squares fit that reads one frequency back.

A grating ``m + (c / 2) cos(2 pi k . r + phi)`` with a known wave vector ``k`` (:func:`grating`) becomes an
SR input by the same MATLAB-compatible pipeline as every SR sample (:func:`sr_input`: modcrop, bicubic
``imresize`` by ``1 / scale`` and back). Downscaling by ``s`` folds ``k`` onto ``k + (m, n) / s``;
:func:`alias_frequencies` lists those aliases (and the harmonics a nonlinear network adds), and
:func:`fit_sinusoid` reads the complex amplitude at ``k`` by a Hann-weighted least-squares fit with every
alias as a nuisance sinusoid, so that none of them is read as ``k``'s. :func:`grating_frequency` finds an
image's strongest sinusoid (the check that a grating is what it claims to be).

References
----------
Harris, "On the use of windows for harmonic analysis with the discrete Fourier transform", Proc. IEEE 1978.

Examples
--------
>>> k = wave_vector(0.2, 0.0)
>>> img = grating(64, 0.2, contrast=0.4) + 0.3 * np.cos(2 * np.pi * 0.3 * np.arange(64))[None, :]
>>> round(abs(fit_sinusoid(img, k, border=4, nuisance=alias_frequencies(k, 2))), 6)  # the x2 alias at 0.3 ignored
0.2
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from invnb._utils.windows import hann_2d
from invnb.sr.matlab import check_scale, imresize, modcrop

__all__ = [
    "alias_frequencies",
    "fit_sinusoid",
    "fold_frequency",
    "grating",
    "grating_frequency",
    "sinusoid_distance",
    "sr_input",
    "wave_vector",
]


def wave_vector(frequency: float, orientation: float) -> tuple[float, float]:
    """Horizontal and vertical components of a grating's frequency.

    Parameters
    ----------
    frequency : float
        Cycles per pixel along the wave vector (>= 0).
    orientation : float
        Angle of the wave vector from the horizontal (column) axis, degrees; 0 makes vertical stripes.

    Returns
    -------
    (fx, fy) : tuple of float
        Cycles per pixel along columns and rows.

    Examples
    --------
    >>> [round(v, 6) for v in wave_vector(0.2, 90.0)]  # horizontal stripes: the rows change
    [0.0, 0.2]
    """
    t = math.radians(orientation)
    return frequency * math.cos(t), frequency * math.sin(t)


def grating(size, frequency: float, orientation: float = 0.0, phase: float = 0.0, contrast: float = 0.5,
            mean: float = 0.5) -> np.ndarray:
    """A sinusoidal grating ``mean + (contrast / 2) cos(2 pi (fx j + fy i) + phase)``.

    Parameters
    ----------
    size : int or (int, int)
        Side, or ``(H, W)``.
    frequency : float
        Cycles per pixel, in ``[0, 0.5]``.
    orientation : float, default 0
        Degrees from the horizontal axis (:func:`wave_vector`).
    phase : float, default 0
        Degrees, at pixel ``(0, 0)``.
    contrast : float, default 0.5
        Peak-to-peak amplitude.
    mean : float, default 0.5
        Mean level (the network's input is luminance in [0, 1]).

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float64; row ``i``, column ``j``.

    Examples
    --------
    >>> g = grating(64, 0.1, orientation=30, contrast=0.4)
    >>> round(float(g.max() - g.min()), 2)
    0.4
    """
    h, w = (int(size), int(size)) if np.ndim(size) == 0 else (int(size[0]), int(size[1]))
    if h < 1 or w < 1:
        raise ValueError(f"size must be positive, got {size!r}")
    if not 0 <= frequency <= 0.5:
        raise ValueError(f"frequency must lie in [0, 0.5] cycles per pixel (the HR Nyquist band), got {frequency!r}")
    if not contrast >= 0:
        raise ValueError(f"contrast must be >= 0, got {contrast!r}")
    fx, fy = wave_vector(frequency, orientation)
    i, j = np.arange(h, dtype=np.float64)[:, None], np.arange(w, dtype=np.float64)[None, :]
    return mean + 0.5 * contrast * np.cos(2 * np.pi * (fx * j + fy * i) + math.radians(phase))


def sr_input(hr: np.ndarray, scale: int) -> np.ndarray:
    """The bicubic SR input of an HR luminance image, made as every SR sample.

    ``modcrop`` to a multiple of ``scale``, MATLAB's antialiased bicubic ``imresize`` by ``1 / scale`` and
    back by ``scale`` (the steps :func:`invnb.sr.make_sr_sample` applies to each YCbCr channel).

    Parameters
    ----------
    hr : numpy.ndarray
        ``(H, W)`` float luminance (any range).
    scale : int
        SR factor (1 returns the cropped image unchanged).

    Returns
    -------
    numpy.ndarray
        ``(H - H % scale, W - W % scale)`` float64.

    Examples
    --------
    >>> g = grating(64, 0.05, contrast=0.4)
    >>> x = sr_input(g, 2)
    >>> x.shape, bool(np.abs(x - g)[8:-8, 8:-8].max() < 0.01)  # a low frequency survives bicubic x2
    ((64, 64), True)
    """
    scale = check_scale(scale)
    hr = np.asarray(hr, dtype=np.float64)
    if hr.ndim != 2:
        raise ValueError(f"sr_input expects an (H, W) luminance image, got shape {hr.shape}")
    hr = modcrop(hr, scale)
    if scale == 1:
        return hr.copy()
    return imresize(imresize(hr, 1.0 / scale), float(scale))


def fold_frequency(q) -> np.ndarray:
    """A wave vector folded into ``[-0.5, 0.5)`` per axis: the same sinusoid on the integer pixel grid.

    Parameters
    ----------
    q : array-like
        ``(..., 2)`` or any shape of frequencies, cycles per pixel.

    Returns
    -------
    numpy.ndarray
        Same shape, float64.

    Examples
    --------
    >>> fold_frequency([0.7, -0.5]).round(12).tolist()
    [-0.3, -0.5]
    """
    q = np.asarray(q, dtype=np.float64)
    return q - np.floor(q + 0.5)


def sinusoid_distance(p, q) -> float:
    """Distance between the real sinusoids at wave vectors ``p`` and ``q`` on the pixel grid.

    Periodic (:func:`fold_frequency`) and sign-symmetric: ``cos(2 pi q . r)`` is ``cos(-2 pi q . r)``.

    Parameters
    ----------
    p, q : (float, float)
        Wave vectors, cycles per pixel.

    Returns
    -------
    float
        ``min(|fold(p - q)|, |fold(p + q)|)``: 0 for one and the same sinusoid.

    Examples
    --------
    >>> sinusoid_distance((0.2, 0.0), (-0.2, 0.0)), round(sinusoid_distance((0.2, 0.0), (0.7, 0.0)), 12)
    (0.0, 0.1)
    """
    d1 = np.linalg.norm(fold_frequency(np.subtract(p, q)))
    d2 = np.linalg.norm(fold_frequency(np.add(p, q)))
    return float(min(d1, d2))


def alias_frequencies(k, scale: int, harmonics: Sequence[int] = (2, 3)) -> list[tuple[float, float]]:
    """The frequencies besides ``k`` that an SR pipeline puts sinusoids at.

    Parameters
    ----------
    k : (float, float)
        Wave vector ``(fx, fy)``, cycles per pixel.
    scale : int
        SR factor ``s``: downscaling folds ``k`` onto ``k + (m, n) / s``, ``m, n = 0..s-1``.
    harmonics : sequence of int, default (2, 3)
        Multiples ``h k`` a nonlinear model may add.

    Returns
    -------
    list of (float, float)
        Distinct wave vectors folded into [-0.5, 0.5) per axis, each real sinusoid once (``q`` and ``-q`` are
        one), without ``k`` itself and without the constant (0, 0).

    Examples
    --------
    >>> [tuple(round(v, 6) for v in q) for q in alias_frequencies((0.2, 0.0), 2, harmonics=())]
    [(0.2, -0.5), (-0.3, 0.0), (-0.3, -0.5)]
    """
    scale = check_scale(scale)
    k = np.asarray(k, dtype=np.float64)
    cand = [k + np.array([m, n]) / scale for m in range(scale) for n in range(scale)]
    cand += [h * k for h in harmonics]
    out: list[tuple[float, float]] = []
    for q in cand:
        q = fold_frequency(q)
        if (sinusoid_distance(q, k) < 1e-9 or np.linalg.norm(q) < 1e-9
                or any(sinusoid_distance(q, p) < 1e-9 for p in out)):
            continue
        out.append((float(q[0]), float(q[1])))
    return out


def fit_sinusoid(img, k, border: int = 0, nuisance: Sequence = (), window: bool = True):
    """Complex amplitude of an image's sinusoid at a known wave vector, by weighted least squares.

    Fits ``b + Re(c exp(2 pi i k . r)) + sum_q Re(c_q exp(2 pi i q . r))`` over the interior crop, with
    pixel coordinates ``r = (j, i)`` of the *whole* image (so phases refer to its pixel (0, 0)), and returns
    ``c``: the sinusoid at ``k`` is ``|c| cos(2 pi k . r + arg c)``.

    Parameters
    ----------
    img : array-like
        ``(H, W)`` image, or a stack ``(..., H, W)`` fitted with one design (one solve).
    k : (float, float)
        ``(fx, fy)``, cycles per pixel.
    border : int, default 0
        Pixels left out on every side.
    nuisance : sequence of (float, float)
        Other wave vectors fitted at the same time (e.g. :func:`alias_frequencies`), so that their
        sinusoids are not read as ``k``'s. Ones within half a DFT bin of ``k`` or of each other are dropped
        (they cannot be told apart on the crop).
    window : bool, default True
        Weight the crop with a separable Hann window (suppresses leakage from components not fitted).

    Returns
    -------
    complex or numpy.ndarray
        ``c`` (complex ``(...)`` array for a stack); for an exact sinusoid ``A cos(2 pi k . r + phi)`` it is
        ``A exp(i phi)``.

    Examples
    --------
    >>> g = grating(64, 0.1, orientation=30, phase=40, contrast=0.4)
    >>> c = fit_sinusoid(g, wave_vector(0.1, 30))
    >>> round(abs(c), 6), round(float(np.degrees(np.angle(c))), 4)
    (0.2, 40.0)
    """
    a = np.asarray(img, dtype=np.float64)
    if a.ndim < 2:
        raise ValueError(f"img must be (H, W) or (..., H, W), got shape {a.shape}")
    c, _ = _fit(a, k, border, nuisance, window)
    return complex(c) if c.ndim == 0 else c


def _fit(a: np.ndarray, k, border: int, nuisance: Sequence, window: bool) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fit_sinusoid`'s amplitudes ``(...)`` and weighted residual sums of squares ``(...)``."""
    border = int(border)
    h, w = a.shape[-2:]
    if border < 0 or min(h, w) - 2 * border < 4:
        raise ValueError(f"border {border} leaves less than 4x4 pixels of an image of shape {a.shape}")
    crop = a[..., border:h - border, border:w - border]
    ch, cw = crop.shape[-2:]
    n = min(ch, cw)
    k = np.asarray(k, dtype=np.float64)
    kept: list[np.ndarray] = []
    for q in nuisance:
        q = fold_frequency(q)
        if (sinusoid_distance(q, k) < 0.5 / n or np.linalg.norm(q) < 0.5 / n
                or any(sinusoid_distance(q, p) < 0.5 / n for p in kept)):
            continue
        kept.append(q)
    i = np.arange(border, h - border, dtype=np.float64)[:, None]
    j = np.arange(border, w - border, dtype=np.float64)[None, :]
    cols = [np.ones((ch, cw))]
    for q in [k, *kept]:
        theta = 2 * np.pi * (q[0] * j + q[1] * i)
        cols += [np.cos(theta), np.sin(theta)]
    design = np.stack([c.ravel() for c in cols], axis=1)
    wts = np.sqrt(hann_2d((ch, cw)).ravel()) if window else np.ones(ch * cw)
    rhs = crop.reshape(-1, ch * cw).T * wts[:, None]
    lhs = design * wts[:, None]
    coef, *_ = np.linalg.lstsq(lhs, rhs, rcond=None)
    rss = ((lhs @ coef - rhs) ** 2).sum(axis=0)
    return (coef[1] - 1j * coef[2]).reshape(a.shape[:-2]), rss.reshape(a.shape[:-2])


def grating_frequency(img, border: int = 0, pad: int = 8) -> tuple[float, float]:
    """The wave vector of an image's strongest sinusoid.

    The peak of the Hann-windowed, zero-padded 2-D DFT of the mean-free crop, refined by minimising the
    residual of the weighted sinusoid fit (:func:`fit_sinusoid`) around it: nonlinear least squares, exact
    for a noise-free sinusoid.

    Parameters
    ----------
    img : array-like
        ``(H, W)`` image.
    border : int, default 0
        Pixels left out on every side.
    pad : int, default 8
        Zero-padding factor of the DFT (finer starting grid).

    Returns
    -------
    (fx, fy) : tuple of float
        Cycles per pixel, in the half plane ``fy > 0`` or ``fy == 0, fx >= 0`` (``k`` and ``-k`` are one
        sinusoid; ``|fy| <= 1e-6`` counts as 0).

    Examples
    --------
    >>> fx, fy = grating_frequency(grating(48, 0.15, orientation=30.0))
    >>> round(float(np.hypot(fx, fy)), 6), round(float(np.degrees(np.arctan2(fy, fx))), 4)
    (0.15, 30.0)
    """
    from scipy.optimize import minimize

    a = np.asarray(img, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"img must be (H, W), got shape {a.shape}")
    h, w = a.shape
    crop = a[border:h - border, border:w - border] if border else a
    if min(crop.shape) < 4:
        raise ValueError(f"border {border} leaves less than 4x4 pixels of an image of shape {a.shape}")
    win = hann_2d(crop.shape)
    z = (crop - np.average(crop, weights=win)) * win
    ny, nx = pad * crop.shape[0], pad * crop.shape[1]
    spec = np.abs(np.fft.rfft2(z, s=(ny, nx)))
    iy, ix = np.unravel_index(np.argmax(spec), spec.shape)
    start = np.array([ix / nx, np.fft.fftfreq(ny)[iy]])

    def rss(q):
        return float(_fit(a, q, border, (), True)[1])

    best = minimize(rss, start, method="Nelder-Mead",
                    options={"xatol": 1e-9, "fatol": 1e-15, "maxiter": 2000, "initial_simplex": start + np.array(
                        [[0, 0], [0.5 / nx, 0], [0, 0.5 / ny]])}).x
    fx, fy = (float(v) for v in fold_frequency(best))
    if fy < -1e-6 or (abs(fy) <= 1e-6 and fx < 0):
        fx, fy = -fx, -fy
    return fx, fy
