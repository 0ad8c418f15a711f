"""An SR model's measured frequency response: sinusoidal gratings in, gain per frequency out.

A grating ``m + (c / 2) cos(2 pi k . r + phi)`` with a known wave vector ``k`` is made into an SR input by
the same MATLAB-compatible pipeline as every SR sample (:func:`invnb.sr.modcrop`, bicubic
:func:`invnb.sr.imresize` by ``1 / scale`` and back by ``scale``); the SR model maps that bicubic input
to its estimate of the high-resolution (HR) image; a weighted least-squares fit of the known sinusoid on an
interior crop reads the estimate's complex amplitude at ``k``. The **gain** is that amplitude over the HR
grating's: 1 reproduces the frequency, 0 loses it, above 1 exaggerates it. The bicubic input's own gain is
measured the same way beside it.

Measuring one frequency in a finite, non-periodic image needs three precautions, all taken here:

- **Borders.** The pipeline's symmetric padding and the network's zero padding disturb a band along every
  side; the fit uses only the interior (``border`` pixels left out on every side).
- **Aliases.** Downscaling by ``s`` folds ``k`` onto ``k + (m, n) / s``; upscaling puts copies of the
  folded spectrum there, so the SR input carries sinusoids at those frequencies besides ``k``, and near the
  low-resolution (LR) Nyquist frequency ``0.5 / s`` one of them lies close to ``k``. The fit includes every
  such alias (and the harmonics ``2k``, ``3k`` a nonlinear network makes) as a nuisance sinusoid, so its
  amplitude is not read as ``k``'s. Where an alias lies within half a DFT bin of ``k`` the two cannot be
  told apart on the crop: the measurement is flagged (``resolved`` False). An alias that coincides with
  ``k`` exactly (a grating on the LR Nyquist frequency) is the same sinusoid, so the gain there depends on
  the grating's phase: hence several phases.
- **Leakage.** The fit weights the crop with a separable Hann window, which keeps the sidelobes of the
  remaining components (noise, intermodulation) from leaking into the estimate.

The gratings, the pipeline and the fit are in :mod:`invnb.sr.gratings`.

References
----------
Kim et al., "Accurate Image Super-Resolution Using Very Deep Convolutional Networks", CVPR 2016 (VDSR).
Kwon et al., IEEE TNNLS 2021 (the claim that SR networks overlook frequency bands).

Examples
--------
A network that returns its bicubic input has bicubic's gain: near 1 well below the LR Nyquist frequency
(0.25 cycles/px at x2), small above it.

>>> resp = frequency_response(lambda x: x, scale=2, frequencies=[0.05, 0.3], orientations=[0], phases=[0])
>>> resp.gain("model").round(2).tolist() == resp.gain("bicubic").round(2).tolist()
True
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from invnb._utils.windows import hann_2d
from invnb.sr.gratings import (
    alias_frequencies,
    fit_sinusoid,
    grating,
    sinusoid_distance,
    sr_input,
    wave_vector,
)
from invnb.sr.matlab import check_scale

__all__ = ["DEFAULT_FREQUENCIES", "FrequencyResponse", "frequency_response"]

#: Grating frequencies of :func:`frequency_response` by default, cycles per HR pixel: 0.01, 0.03, ..., 0.49.
DEFAULT_FREQUENCIES = np.round(np.arange(0.01, 0.5, 0.02), 10)


@dataclasses.dataclass
class FrequencyResponse:
    """Gains of an SR model and of bicubic upscaling, per grating.

    Attributes
    ----------
    scale : int
        SR factor.
    frequencies : numpy.ndarray
        ``(F,)`` cycles per HR pixel.
    orientations, phases : numpy.ndarray
        ``(O,)``, ``(P,)`` degrees.
    contrasts : numpy.ndarray
        ``(C,)`` peak-to-peak amplitudes of the HR gratings.
    model, bicubic : numpy.ndarray
        ``(C, F, O, P)`` complex: the output's (resp. bicubic input's) amplitude at the grating frequency
        over the HR grating's. ``abs`` is the gain, ``angle`` the phase shift.
    resolved : numpy.ndarray
        ``(F, O)`` bool: no alias lies within half a DFT bin of the grating frequency on the crop.
    sizes : numpy.ndarray
        ``(F,)`` side of the gratings (pixels); the fit used ``sizes - 2 * border`` of it.
    border : int
        Pixels left out on every side.
    error_model, error_bicubic : numpy.ndarray
        ``(C, F, O, P)`` total relative error of the output (resp. bicubic input) on the interior:
        ``sqrt(sum w (out - hr)^2 / sum w (hr - mean(hr))^2)`` with the Hann weights ``w`` of the fit. Unlike
        the gain it counts everything that is wrong, also what the model *adds* at other frequencies
        (harmonics, aliases); 0 is perfect, 1 as wrong as an output without the grating.
    harmonics_model : numpy.ndarray
        ``(C, F, O, P)`` amplitude of the output's second and third harmonics (``2k``, ``3k``, folded)
        over the HR grating's, ``sqrt(|c_2k|^2 + |c_3k|^2) / |c_hr|``: the distortion a nonlinear model
        adds (0 for a linear one).
    """

    scale: int
    frequencies: np.ndarray
    orientations: np.ndarray
    phases: np.ndarray
    contrasts: np.ndarray
    model: np.ndarray
    bicubic: np.ndarray
    resolved: np.ndarray
    sizes: np.ndarray
    border: int
    error_model: np.ndarray | None = None
    error_bicubic: np.ndarray | None = None
    harmonics_model: np.ndarray | None = None

    def _mean(self, arr: np.ndarray, contrast: int | None, resolved_only: bool) -> np.ndarray:
        g = arr if contrast is None else arr[[contrast]]
        keep = self.resolved if resolved_only else np.ones_like(self.resolved)
        w = np.broadcast_to(keep[None, :, :, None], g.shape).astype(np.float64)
        num, den = (g * w).sum(axis=(0, 2, 3)), w.sum(axis=(0, 2, 3))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.maximum(den, 1), np.nan)

    def error(self, which: str = "model", contrast: int | None = None, resolved_only: bool = True) -> np.ndarray:
        """Total relative error per frequency (:attr:`error_model` / :attr:`error_bicubic`), averaged as
        :meth:`gain` (lower is better).

        Returns
        -------
        numpy.ndarray
            ``(F,)``.
        """
        if which not in ("model", "bicubic"):
            raise ValueError(f"which must be 'model' or 'bicubic', got {which!r}")
        arr = getattr(self, f"error_{which}")
        if arr is None:
            raise ValueError("this FrequencyResponse was stored without its errors")
        return self._mean(arr, contrast, resolved_only)

    def harmonics(self, contrast: int | None = None, resolved_only: bool = True) -> np.ndarray:
        """The model's harmonic distortion per frequency (:attr:`harmonics_model`), averaged as :meth:`gain`.

        Returns
        -------
        numpy.ndarray
            ``(F,)``.
        """
        if self.harmonics_model is None:
            raise ValueError("this FrequencyResponse was stored without its harmonics")
        return self._mean(self.harmonics_model, contrast, resolved_only)

    def gain(self, which: str = "model", contrast: int | None = None, resolved_only: bool = True) -> np.ndarray:
        """Gain per frequency: ``|ratio|`` averaged over orientations and phases (and contrasts).

        Parameters
        ----------
        which : {"model", "bicubic"}
        contrast : int, optional
            Index into :attr:`contrasts`; default the mean over all of them.
        resolved_only : bool, default True
            Average only the orientations where the grating frequency is resolved from its aliases (NaN
            where none is).

        Returns
        -------
        numpy.ndarray
            ``(F,)``.
        """
        if which not in ("model", "bicubic"):
            raise ValueError(f"which must be 'model' or 'bicubic', got {which!r}")
        return self._mean(np.abs(getattr(self, which)), contrast, resolved_only)

    def cutoff(self, level: float = 0.5, which: str = "model") -> float:
        """The lowest frequency at which the mean gain (:meth:`gain`) falls below ``level``.

        Linear interpolation between the two measured frequencies around the crossing; NaN when the gain
        never falls below ``level`` (or starts below it).

        Parameters
        ----------
        level : float, default 0.5
            0.5: the half-gain frequency; 0.9: where the first tenth is lost.
        which : {"model", "bicubic"}

        Returns
        -------
        float
            Cycles per HR pixel.
        """
        g = self.gain(which)
        ok = np.isfinite(g)
        f, g = self.frequencies[ok], g[ok]
        below = np.where(g < level)[0]
        if below.size == 0 or below[0] == 0:
            return float("nan")
        k = int(below[0])
        return float(f[k - 1] + (level - g[k - 1]) * (f[k] - f[k - 1]) / (g[k] - g[k - 1]))

    def to_dict(self) -> dict:
        """JSON-ready dict (complex ratios as ``[re, im]`` pairs); :meth:`from_dict` reads it back."""
        def cplx(a):
            return np.stack([a.real, a.imag], axis=-1).tolist()

        return {"scale": self.scale, "frequencies": self.frequencies.tolist(),
                "orientations": self.orientations.tolist(), "phases": self.phases.tolist(),
                "contrasts": self.contrasts.tolist(), "model": cplx(self.model), "bicubic": cplx(self.bicubic),
                "resolved": self.resolved.tolist(), "sizes": self.sizes.tolist(), "border": self.border,
                "gain": {"model": self.gain("model").tolist(), "bicubic": self.gain("bicubic").tolist()},
                **{k: getattr(self, k).tolist() for k in ("error_model", "error_bicubic", "harmonics_model")
                   if getattr(self, k) is not None}}

    @classmethod
    def from_dict(cls, d: dict) -> "FrequencyResponse":
        """Inverse of :meth:`to_dict`."""
        def cplx(a):
            a = np.asarray(a, dtype=np.float64)
            return a[..., 0] + 1j * a[..., 1]

        return cls(scale=int(d["scale"]), frequencies=np.asarray(d["frequencies"], dtype=np.float64),
                   orientations=np.asarray(d["orientations"], dtype=np.float64),
                   phases=np.asarray(d["phases"], dtype=np.float64),
                   contrasts=np.asarray(d["contrasts"], dtype=np.float64), model=cplx(d["model"]),
                   bicubic=cplx(d["bicubic"]), resolved=np.asarray(d["resolved"], dtype=bool),
                   sizes=np.asarray(d["sizes"], dtype=np.int64), border=int(d["border"]),
                   **{k: np.asarray(d[k], dtype=np.float64) for k in ("error_model", "error_bicubic",
                                                                     "harmonics_model") if k in d})


def _grating_size(frequency: float, scale: int, border: int, periods: float, min_interior: int) -> int:
    interior = max(min_interior, math.ceil(periods / frequency)) if frequency > 0 else min_interior
    side = interior + 2 * border
    return int(math.ceil(side / scale) * scale)


def _run(model: Callable, images: np.ndarray, batch_size: int, device, dtype) -> np.ndarray:
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(images[start:start + batch_size, None]).to(device=device, dtype=dtype)
            y = model(x)
            if not isinstance(y, torch.Tensor) or tuple(y.shape) != tuple(x.shape):
                raise ValueError(f"the SR model must map (N, 1, H, W) to (N, 1, H, W); it returned "
                                 f"{tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__} for "
                                 f"{tuple(x.shape)} (wrap a residual network with invnb.sr.with_residual)")
            out.append(y[:, 0].detach().double().cpu().numpy())
    return np.concatenate(out)


def frequency_response(
    model: Callable[[torch.Tensor], torch.Tensor],
    scale: int,
    frequencies: Sequence[float] | None = None,
    orientations: Sequence[float] = (0.0, 22.5, 45.0, 67.5),
    phases: Sequence[float] = (0.0, 90.0),
    contrasts: Sequence[float] = (0.2, 0.6),
    mean: float = 0.5,
    border: int | None = None,
    periods: float = 2.0,
    min_interior: int = 64,
    batch_size: int = 16,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> FrequencyResponse:
    """Measure an SR model's gain per frequency on gratings, with bicubic's beside it.

    For every frequency, orientation, phase and contrast: the HR grating (:func:`grating`), its bicubic SR
    input (:func:`sr_input`), the model's output on it, and the amplitudes at the grating frequency of the
    three (:func:`fit_sinusoid` with the :func:`alias_frequencies` as nuisances, Hann-weighted, on the
    interior); beside them the total relative error of the output and of the bicubic input, and the
    output's harmonics (:class:`FrequencyResponse`). Each grating is large enough that the interior holds
    ``periods`` periods and at least ``min_interior`` pixels.

    Parameters
    ----------
    model : callable
        Maps a bicubic input ``(N, 1, H, W)`` (luminance in [0, 1]) to the SR estimate of the same shape;
        for a residual network use :func:`invnb.sr.with_residual`. Called under ``torch.no_grad``.
    scale : int
        SR factor.
    frequencies : sequence of float, optional
        Cycles per HR pixel in ``(0, 0.5)``; default :data:`DEFAULT_FREQUENCIES`.
    orientations, phases : sequence of float
        Degrees. The default orientations sample the quarter circle evenly, so their mean matches a radial
        average (the chirp's radial profile mixes all orientations); the LR sampling lattice is square, so
        a 45-degree grating passes the LR Nyquist frequency only at ``sqrt(2) * 0.5 / scale``.
    contrasts : sequence of float, default (0.2, 0.6)
        Peak-to-peak amplitudes; ``mean +- contrast / 2`` must stay in [0, 1].
    mean : float, default 0.5
        Mean luminance.
    border : int, optional
        Pixels left out on every side; default ``20 + 4 * scale`` (VDSR's receptive radius plus the
        pipeline's padding reach of two LR pixels each way).
    periods : float, default 2
        Periods the interior must hold (sets the size at low frequencies).
    min_interior : int, default 64
        Smallest interior side.
    batch_size : int, default 16
        Gratings per model call (the result does not depend on it).
    device : str or torch.device, optional
        Where the model runs (default: the model's device, else CPU).
    progress : bool, default False
        Progress bar over frequencies.

    Returns
    -------
    FrequencyResponse

    Examples
    --------
    >>> resp = frequency_response(lambda x: x, scale=2, frequencies=[0.05, 0.3], orientations=[0], phases=[0])
    >>> bool(resp.gain("model")[0] > 0.95), bool(resp.gain("model")[1] < 0.3)  # bicubic keeps 0.05, loses 0.3
    (True, True)
    """
    scale = check_scale(scale)
    freqs = np.asarray(DEFAULT_FREQUENCIES if frequencies is None else frequencies, dtype=np.float64)
    if freqs.ndim != 1 or freqs.size == 0 or not ((freqs > 0) & (freqs < 0.5)).all():
        raise ValueError(f"frequencies must be a non-empty 1-D sequence in (0, 0.5) cycles per pixel, got {freqs}")
    orients, phs, cons = (np.asarray(v, dtype=np.float64).ravel() for v in (orientations, phases, contrasts))
    if orients.size == 0 or phs.size == 0 or cons.size == 0:
        raise ValueError("orientations, phases and contrasts need at least one value each")
    if (cons <= 0).any() or (mean - cons / 2 < 0).any() or (mean + cons / 2 > 1).any():
        raise ValueError(f"every grating must lie in [0, 1]: mean {mean} +- contrast / 2 for contrasts {cons}")
    border = 20 + 4 * scale if border is None else int(border)
    if border < 0:
        raise ValueError(f"border must be >= 0, got {border}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    param = next(iter(model.parameters()), None) if isinstance(model, nn.Module) else None
    device = device if device is not None else (param.device if param is not None else "cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    if isinstance(model, nn.Module):
        model.eval()
    shape = (cons.size, freqs.size, orients.size, phs.size)
    out_model, out_bic = np.zeros(shape, complex), np.zeros(shape, complex)
    err_model, err_bic, harm = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    resolved = np.zeros((freqs.size, orients.size), dtype=bool)
    sizes = np.zeros(freqs.size, dtype=np.int64)
    items = range(freqs.size)
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc=f"gratings x{scale}", leave=False)
    for fi in items:
        f = float(freqs[fi])
        size = _grating_size(f, scale, border, periods, min_interior)
        sizes[fi] = size
        n = size - 2 * border
        combos = [(ci, oi, pi) for ci in range(cons.size) for oi in range(orients.size) for pi in range(phs.size)]
        hr = np.stack([grating(size, f, orients[oi], phs[pi], cons[ci], mean) for ci, oi, pi in combos])
        bic = np.stack([sr_input(g, scale) for g in hr])
        sr = _run(model, bic, int(batch_size), device, dtype)
        for oi in range(orients.size):
            k = wave_vector(f, float(orients[oi]))
            aliases = alias_frequencies(k, scale)
            resolved[fi, oi] = not [q for q in aliases if 1e-9 <= sinusoid_distance(q, k) < 0.5 / n]
            idx = [t for t, (_, o, _) in enumerate(combos) if o == oi]
            amp = fit_sinusoid(np.concatenate([hr[idx], bic[idx], sr[idx]]), k, border, aliases)
            c_hr, c_bic, c_sr = amp[:len(idx)], amp[len(idx):2 * len(idx)], amp[2 * len(idx):]
            k_all = [k, *aliases]
            c2 = fit_sinusoid(sr[idx], 2 * np.asarray(k), border, [q for q in k_all + [3 * np.asarray(k)]])
            c3 = fit_sinusoid(sr[idx], 3 * np.asarray(k), border, [q for q in k_all + [2 * np.asarray(k)]])
            for t, (ci, _, pi) in enumerate(combos[u] for u in idx):
                out_bic[ci, fi, oi, pi] = c_bic[t] / c_hr[t]
                out_model[ci, fi, oi, pi] = c_sr[t] / c_hr[t]
                harm[ci, fi, oi, pi] = np.hypot(abs(c2[t]), abs(c3[t])) / abs(c_hr[t])
        wts = hann_2d((n, n))
        ref = hr[:, border:size - border, border:size - border]
        ref_ss = (wts * (ref - (ref * wts).sum(axis=(1, 2), keepdims=True) / wts.sum()) ** 2).sum(axis=(1, 2))
        for arr, out in ((err_bic, bic), (err_model, sr)):
            e = ((out[:, border:size - border, border:size - border] - ref) ** 2 * wts).sum(axis=(1, 2))
            for t, (ci, oi, pi) in enumerate(combos):
                arr[ci, fi, oi, pi] = np.sqrt(e[t] / ref_ss[t])
    return FrequencyResponse(scale=scale, frequencies=freqs, orientations=orients, phases=phs, contrasts=cons,
                             model=out_model, bicubic=out_bic, resolved=resolved, sizes=sizes, border=border,
                             error_model=err_model, error_bicubic=err_bic, harmonics_model=harm)
