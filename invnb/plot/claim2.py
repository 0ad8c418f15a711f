"""Chapter 03's figures of claim 2, each readable at the book's page width (690 pixels).

:func:`plot_claim2_scale` puts, for one scale, what the attributions say (their curves by frequency on the
chirp), the network's measured gain and its per-band error on one shared frequency axis, in three stacked
panels rather than on twin axes. :func:`plot_chirp_curves` draws chirp attribution curves of several
scales side by side on one shared y axis; :func:`plot_chirp_maps` the chirp inversions as maps, one row per
scale, with one colour bar.
"""

from __future__ import annotations

from typing import Mapping

import matplotlib.pyplot as plt
import numpy as np

from invnb.plot.colors import method_color
from invnb.plot.sr_truth import PAGE_WIDTH
from invnb.sr.agreement import as_curve
from invnb.sr.band_error import BandError
from invnb.sr.chirp import FrequencyBins, lr_nyquist
from invnb.sr.response import FrequencyResponse

__all__ = ["CLAIM2_COLORS", "plot_chirp_curves", "plot_chirp_maps", "plot_claim2_scale"]

#: Colour per attribution: the inverse's settings as everywhere in the book, LAM purple.
CLAIM2_COLORS = {"paper": method_color("paper"), "LAM": "tab:purple", "default": method_color("default")}
_NAMES = {"paper": "inverse, paper setting", "LAM": "LAM", "default": "inverse, default"}
_GAIN, _ERROR, _WORSE = "tab:blue", "tab:green", "0.88"
_FONT = {"axes.titlesize": 9, "axes.labelsize": 9, "xtick.labelsize": 8, "ytick.labelsize": 8,
         "legend.fontsize": 8}


def _worse_spans(record: Mapping, scale: int) -> list[tuple[float, float]]:
    """Bands below the LR Nyquist frequency where the network's error on the photographs exceeds bicubic's."""
    photos = record.get("findings", {}).get("error", {}).get("photographs") or {}
    half = 0.005  # the bands of invnb.sr.band_error.DEFAULT_EDGES are 0.01 wide; the findings list their centres
    return [(c - half, c + half) for c in photos.get("bands_worse_than_bicubic", []) if c < lr_nyquist(scale)]


def plot_claim2_scale(record: Mapping, scale: int, label: str = "network", f_max: float | None = None):
    """Attributions, measured gain and per-band error of one scale, on one frequency axis.

    Top: each attribution's curve by local frequency on the chirp, divided by its own maximum (LAM and
    the inverse have different units; shapes are compared). Middle: the gain of the network (solid) and
    of bicubic (dashed) on sinusoidal gratings. Bottom: the relative error per band on the chirp (log),
    network solid, bicubic dashed. Grey spans: bands below the LR Nyquist frequency (dotted) where the
    network's error on the photographs exceeds bicubic's.

    Parameters
    ----------
    record : mapping
        One scale of a ground-truth run (``attribution``, ``response``, ``chirp_local_error``,
        ``agreement_photographs``), as in ``data/results/sr_ground_truth/summary.json``.
    scale : int
        SR factor.
    label : str, default "network"
        The network's name.
    f_max : float, optional
        Right end of the axis; default the highest frequency of the attribution curves.

    Returns
    -------
    matplotlib.figure.Figure
    """
    with plt.rc_context(_FONT):
        fig, axes = plt.subplots(3, 1, figsize=(PAGE_WIDTH, 6.2), sharex=True, layout="constrained",
                                 gridspec_kw={"height_ratios": [1.2, 1, 1]})
        top = 0.0
        for m, att in record["attribution"].items():
            f, v = as_curve(FrequencyBins.from_dict(att["profile"]))
            top = max(top, float(np.nanmax(f)))
            scale_v = float(np.nanmax(np.abs(v))) or 1.0
            axes[0].plot(f, v / scale_v, lw=1.8, color=CLAIM2_COLORS.get(m, "tab:gray"), label=_NAMES.get(m, m))
        axes[0].set_ylim(0, 1.05)
        axes[0].set_ylabel("attribution / max")
        axes[0].legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=3, frameon=False, borderaxespad=0.2)
        resp = FrequencyResponse.from_dict(record["response"])
        axes[1].plot(resp.frequencies, resp.gain("model"), "-o", ms=3, lw=1.5, color=_GAIN, label=f"{label}")
        axes[1].plot(resp.frequencies, resp.gain("bicubic"), "--", lw=1.3, color=_GAIN, label="bicubic")
        axes[1].axhline(1.0, color="0.5", lw=0.8)
        axes[1].set_ylim(0, max(1.25, float(np.nanmax(resp.gain("model"))) * 1.05))
        axes[1].set_ylabel("gain on gratings")
        axes[1].legend(loc="lower left")
        for k, ls in (("model", "-"), ("bicubic", "--")):
            f, v = as_curve(BandError.from_dict(record["chirp_local_error"][k]))
            axes[2].plot(f, v, ls, lw=1.5, color=_ERROR, label=label if k == "model" else "bicubic")
        axes[2].set_yscale("log")
        axes[2].set_ylabel("error per band (chirp)")
        axes[2].legend(loc="lower right")
        nyq = lr_nyquist(scale)
        spans = _worse_spans(record, scale)
        for ax in axes:
            for lo, hi in spans:
                ax.axvspan(lo, hi, color=_WORSE, lw=0, zorder=0)
            ax.axvline(nyq, color="0.3", ls=":", lw=1.2)
            ax.grid(True, alpha=0.3)
        axes[0].set_xlim(0, f_max if f_max is not None else max(top, nyq) * 1.02)
        fig.suptitle(f"x{scale}: LR Nyquist {nyq:.3f} cycles/px (dotted); grey: {label} worse than "
                     "bicubic on the photographs", fontsize=9)
        axes[2].set_xlabel("frequency (cycles / HR pixel)")
    return fig


def plot_chirp_curves(curves: Mapping[int, Mapping[str, object]], title: str | None = None, ylim=(0.0, 1.05)):
    """Chirp attribution against radial local frequency, one panel per scale, one shared y axis.

    Parameters
    ----------
    curves : mapping of int to mapping of str to curve
        ``{scale: {setting: FrequencyBins or (frequencies, values)}}``; a setting named ``"paper"`` or
        ``"default"`` takes the book's colour for it.
    title : str, optional
        Figure title.
    ylim : (float, float), default (0, 1.05)
        The shared y range (a fixed range, so that every panel reads alike).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not curves:
        raise ValueError("plot_chirp_curves needs at least one scale")
    with plt.rc_context(_FONT):
        fig, axes = plt.subplots(1, len(curves), figsize=(PAGE_WIDTH, 2.8), sharey=True, squeeze=False,
                                 layout="constrained")
        for ax, (scale, by) in zip(axes[0], sorted(curves.items())):
            for name, curve in by.items():
                f, v = as_curve(curve)
                ax.plot(f, v, lw=1.6, color=method_color(name), label=name)
            ax.axvline(lr_nyquist(scale), color="0.3", ls=":", lw=1.2)
            ax.set_title(f"x{scale} (Nyquist {lr_nyquist(scale):.3f})")
            ax.set_xlabel("cycles / HR pixel")
            ax.grid(True, alpha=0.3)
        axes[0, 0].set_ylim(*ylim)
        axes[0, 0].set_ylabel("mean |x̂| / |x|")
        axes[0, 0].legend(loc="lower right")
        if title:
            fig.suptitle(title, fontsize=9)
    return fig


def plot_chirp_maps(runs: Mapping[int, object], cmap: str = "viridis"):
    """Chirp inversions as maps: input, inverse input, attribution ``|x̂| / |x|``; one row per scale.

    Parameters
    ----------
    runs : mapping of int to invnb.sr.VDSRInversion
        ``{scale: inversion}`` with ``x`` and ``x_hat`` (``(H, W)`` arrays in [0, 1]).
    cmap : str, default "viridis"
        Perceptually uniform colour map of the attribution (0 to 1, one colour bar for all rows).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from invnb.sr.frequency import attribution_ratio

    if not runs:
        raise ValueError("plot_chirp_maps needs at least one run")
    with plt.rc_context(_FONT):
        fig, axes = plt.subplots(len(runs), 3, figsize=(PAGE_WIDTH, 2.2 * len(runs) + 0.4), squeeze=False,
                                 layout="constrained")
        im = None
        for row, (scale, r) in zip(axes, sorted(runs.items())):
            row[0].imshow(r.x, cmap="gray", vmin=0, vmax=1)
            row[1].imshow(r.x_hat, cmap="gray", vmin=0, vmax=1)
            im = row[2].imshow(np.clip(attribution_ratio(r.x_hat, r.x), 0, 1), cmap=cmap, vmin=0, vmax=1)
            row[0].set_title(f"x{scale}: bicubic input x")
            row[1].set_title("inverse input x̂")
            row[2].set_title(f"|x̂| / |x| (amount {r.amount:.2f})")
            for a in row:
                a.set_axis_off()
        fig.colorbar(im, ax=axes[:, 2], fraction=0.08, pad=0.02, label="|x̂| / |x|")
    return fig
