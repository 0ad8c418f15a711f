"""The Hann window of the SR frequency measurements (sinusoid fits, band-error spectra)."""

from __future__ import annotations

import numpy as np

__all__ = ["hann", "hann_2d"]


def hann(n: int) -> np.ndarray:
    """The ``n``-point Hann window without its zero end points (all ones for ``n = 1``).

    Parameters
    ----------
    n : int
        Length (>= 1).

    Returns
    -------
    numpy.ndarray
        ``(n,)`` float64, positive, symmetric, peak at the centre.

    Examples
    --------
    >>> hann(3).round(3).tolist()
    [0.5, 1.0, 0.5]
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"a window needs at least one point, got n={n}")
    return np.hanning(n + 2)[1:-1] if n > 1 else np.ones(1)


def hann_2d(shape) -> np.ndarray:
    """The separable Hann window ``hann(H)[:, None] * hann(W)[None, :]`` of an ``(H, W)`` image."""
    return np.outer(hann(shape[0]), hann(shape[1]))
