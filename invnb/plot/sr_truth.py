"""Figures of the SR ground truth: measured gain, per-band error, their agreement with attributions, LAM.

Sized for the book's page (about 690 pixels wide at 100 dpi: ``figsize`` width 6.9 inches).
:func:`ground_truth_figures` draws the four figures of a stored run of
:func:`invnb.sr.ground_truth.run_ground_truth`.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from invnb.plot.colors import method_color
from invnb.sr.agreement import FrequencyAgreement, as_curve
from invnb.sr.band_error import DEFAULT_EDGES, BandError
from invnb.sr.chirp import FrequencyBins
from invnb.sr.findings import chirp_agreements
from invnb.sr.networks import sr_network
from invnb.sr.response import FrequencyResponse

__all__ = ["PAGE_WIDTH", "SCALE_COLORS", "ground_truth_figures", "plot_band_error", "plot_frequency_agreement",
           "plot_frequency_agreement_grid", "plot_frequency_response", "plot_lam"]

#: Width of a figure that fills the book's page, inches (at 100 dpi: 690 pixels).
PAGE_WIDTH = 6.9
#: One colour per SR factor.
SCALE_COLORS = {2: "tab:blue", 3: "tab:orange", 4: "tab:green"}
_GAIN, _ERROR, _LAM = "tab:blue", "tab:green", "tab:purple"


def _style(name: str) -> str:
    return "--" if "bicubic" in name else "-"


def _attribution_color(name: str) -> str:
    if "lam" in name.lower():
        return _LAM
    return method_color(name, default="tab:brown")


def plot_frequency_response(responses: Sequence, ax=None, contrast: int | None = None, title: str | None = None,
                            quantity: str = "gain", label: str = "model"):
    """Measured response against grating frequency: the model (solid) and bicubic (dashed), a colour per scale.

    Parameters
    ----------
    responses : sequence of invnb.sr.FrequencyResponse
        One per scale.
    ax : matplotlib.axes.Axes, optional
    contrast : int, optional
        Index of one contrast (default: their mean).
    title : str, optional
    quantity : {"gain", "error"}
        ``"gain"``: amplitude at the grating frequency over the HR grating's (higher is better, 1 exact);
        ``"error"``: total relative error of the output (lower is better; log axis), with the model's
        harmonic distortion dotted.
    label : str, default "model"
        The network's name in the legend.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if quantity not in ("gain", "error"):
        raise ValueError(f"quantity must be 'gain' or 'error', got {quantity!r}")
    if ax is None:
        _, ax = plt.subplots(figsize=(PAGE_WIDTH, 3.2))
    for r in responses:
        color = SCALE_COLORS.get(r.scale, None)
        if quantity == "gain":
            model, bic = r.gain("model", contrast), r.gain("bicubic", contrast)
        else:
            model, bic = r.error("model", contrast), r.error("bicubic", contrast)
        ax.plot(r.frequencies, model, "-o", ms=2.5, lw=1.3, color=color, label=f"x{r.scale} {label}")
        ax.plot(r.frequencies, bic, "--", lw=1.1, color=color, label=f"x{r.scale} bicubic")
        if quantity == "error":
            ax.plot(r.frequencies, r.harmonics(contrast), ":", lw=1.1, color=color, label=f"x{r.scale} harmonics")
        ax.axvline(0.5 / r.scale, color=color, ls=":", lw=1)
    ax.axhline(1.0, color="0.5", lw=0.8)
    ax.set_xlim(0, 0.5)
    if quantity == "gain":
        ax.set_ylim(bottom=0)
        ax.set_ylabel("gain |output| / |HR|")
    else:
        ax.set_yscale("log")
        ax.set_ylabel("relative error of the output")
    ax.set_xlabel("grating frequency (cycles / HR pixel); dotted verticals: LR Nyquist 0.5 / scale")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", ncol=3)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def plot_band_error(curves: Mapping[str, object], ax=None, nyquist: float | None = None, title: str | None = None,
                    colors: Mapping[str, str] | None = None):
    """Per-band relative error ``|DFT(sr - hr)|^2 / |DFT(hr)|^2`` against radial frequency (log axis).

    Parameters
    ----------
    curves : mapping of str to curve
        :class:`~invnb.sr.BandError` or ``(frequencies, values)``; a name containing
        ``"bicubic"`` is drawn dashed.
    ax : matplotlib.axes.Axes, optional
    nyquist : float, optional
        Marks the LR Nyquist frequency.
    title : str, optional
    colors : mapping of str to str, optional
        Colour per curve.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(PAGE_WIDTH, 3.0))
    for name, curve in curves.items():
        f, v = as_curve(curve)
        ax.plot(f, v, _style(name), lw=1.2, label=name, color=(colors or {}).get(name))
    if nyquist is not None:
        ax.axvline(nyquist, color="0.3", ls=":", lw=1, label=f"LR Nyquist {nyquist:.3f}")
    ax.axhline(1.0, color="0.5", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlim(0, 0.5)
    ax.set_xlabel("radial frequency (cycles / HR pixel)")
    ax.set_ylabel("relative error per band")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small", ncol=2)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def plot_frequency_agreement(attributions: Mapping[str, object], gains: Mapping[str, object],
                             errors: Mapping[str, object], scale: int,
                             agreements: Mapping[str, FrequencyAgreement] | None = None, ax=None,
                             title: str | None = None, f_max: float | None = None):
    """Attribution, gain and per-band error on one frequency axis, with the bands that are compared.

    Left axis: each attribution curve divided by its own maximum (attributions of different methods have
    different units; the comparison is of shapes) and the gains (1 reproduces the frequency). Right axis
    (log): the per-band relative errors. A name containing ``"bicubic"`` is dashed. The lowest-attribution
    band of each agreement is shaded in its attribution's colour; the worst-gain and worst-error bands (the network's,
    the same for every attribution) are labelled bars along the bottom edge.

    Parameters
    ----------
    attributions, gains, errors : mapping of str to curve
        Curves (``FrequencyBins``, ``FrequencyResponse``, ``BandError`` or ``(frequencies, values)``).
        An attribution named after a setting (``"inverse (paper)"``) takes its colour; one containing
        ``"LAM"`` is purple.
    scale : int
        SR factor (a dotted line marks the LR Nyquist frequency).
    agreements : mapping of str to FrequencyAgreement, optional
        Keyed like ``attributions``; their bands are drawn and their Spearman numbers put in the legend.
    ax : matplotlib.axes.Axes, optional
    title : str, optional
    f_max : float, optional
        Right end of the axis; default the largest frequency of the attribution curves.

    Returns
    -------
    matplotlib.axes.Axes
        The left axes (the right one is ``ax.right_axis``).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(PAGE_WIDTH, 4.2), layout="constrained")
    agreements = agreements or {}
    right = ax.twinx()
    ax.right_axis = right
    top = 0.0
    for name, curve in attributions.items():
        f, v = as_curve(curve)
        top = max(top, float(np.nanmax(f)))
        color = _attribution_color(name)
        label = name
        if name in agreements:
            s = agreements[name].spearman
            label += f" (rho gain {s.get('gain', np.nan):+.2f}, error {s.get('error', np.nan):+.2f})"
            band = agreements[name].bands["attribution"]
            if band is not None:
                ax.axvspan(band.lo, band.hi, color=color, alpha=0.12, lw=0)
        top_v = float(np.nanmax(np.abs(v))) if np.isfinite(v).any() else 1.0
        ax.plot(f, v / (top_v or 1.0), "-", lw=1.6, color=color, label=label)
    for name, curve in gains.items():
        f, v = as_curve(curve)
        ax.plot(f, v, _style(name), marker="o" if "bicubic" not in name else None, ms=2.5, lw=1.2, color=_GAIN,
                label=name)
    for name, curve in errors.items():
        f, v = as_curve(curve)
        right.plot(f, v, _style(name), lw=1.2, color=_ERROR, label=name)
    first = next(iter(agreements.values()), None)
    for j, (key, color, text) in enumerate((("gain", _GAIN, "worst gain"), ("error", _ERROR, "worst error"))):
        if first is not None and first.bands.get(key) is not None:
            b = first.bands[key]
            lo = 0.02 + 0.05 * j
            ax.axvspan(b.lo, b.hi, ymin=lo, ymax=lo + 0.03, color=color, alpha=0.9, lw=0)
            ax.annotate(text, (b.lo, (lo + 0.015) * 1.25), xytext=(-3, 0), textcoords="offset points",
                        ha="right", va="center", fontsize=7, color=color)
    nyq = 0.5 / scale
    ax.axvline(nyq, color="0.3", ls=":", lw=1)
    ax.axhline(1.0, color="0.6", lw=0.7)
    ax.set_xlim(0, f_max if f_max is not None else max(top, nyq) * 1.02)
    right.set_yscale("log")
    ax.set_xlabel(f"frequency (cycles / HR pixel); dotted: LR Nyquist {nyq:.3f}")
    ax.set_ylim(0, 1.25)
    ax.set_ylabel("attribution / max, gain")
    right.set_ylabel("relative error per band", color=_ERROR)
    right.tick_params(axis="y", colors=_ERROR)
    ax.grid(True, alpha=0.3)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = right.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2,
              frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def plot_frequency_agreement_grid(panels: Mapping[int, Mapping[str, object]], row_height: float = 4.2):
    """One :func:`plot_frequency_agreement` panel per scale, stacked, at the page's width.

    Parameters
    ----------
    panels : mapping of int to mapping
        ``{scale: {"attributions": ..., "gains": ..., "errors": ..., "agreements": ..., "title": ...}}``
        (``agreements`` and ``title`` optional).
    row_height : float, default 4.2
        Inches per panel (its legend sits below it).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not panels:
        raise ValueError("plot_frequency_agreement_grid needs at least one panel")
    fig, axes = plt.subplots(len(panels), 1, figsize=(PAGE_WIDTH, row_height * len(panels)), squeeze=False)
    for ax, (scale, p) in zip(axes[:, 0], panels.items()):
        plot_frequency_agreement(p["attributions"], p["gains"], p["errors"], scale, p.get("agreements"), ax=ax,
                                 title=p.get("title", f"x{scale}"))
    fig.tight_layout()
    return fig


def plot_lam(x, attributions, window: tuple[int, int, int] | None = None, ax=None, title: str | None = None,
             vmax: float | None = None):
    """A LAM map over its input: the input in grey, ``|attribution|`` in colour, the target window boxed.

    Parameters
    ----------
    x : array-like
        ``(H, W)`` input.
    attributions : array-like
        ``(H, W)`` attributions (signed; ``|.|`` is drawn).
    window : (int, int, int), optional
        ``(h, w, size)`` of the output window (drawn when the output has the input's size).
    ax : matplotlib.axes.Axes, optional
    title : str, optional
    vmax : float, optional
        Top of the colour scale (share it across panels); default the map's 99.5th percentile.

    Returns
    -------
    matplotlib.axes.Axes
    """
    from matplotlib.patches import Rectangle

    if ax is None:
        _, ax = plt.subplots(figsize=(3.0, 3.0))
    x = np.asarray(x, dtype=np.float64)
    a = np.abs(np.asarray(attributions, dtype=np.float64))
    if x.shape != a.shape or x.ndim != 2:
        raise ValueError(f"x and attributions must be (H, W) of one shape, got {x.shape} and {a.shape}")
    top = vmax if vmax is not None else float(np.percentile(a, 99.5)) or 1.0
    ax.imshow(x, cmap="gray", vmin=0, vmax=1)
    ax.imshow(np.clip(a / top, 0, 1), cmap="magma", alpha=np.clip(a / top, 0, 1) ** 0.5, vmin=0, vmax=1)
    if window is not None:
        h, w, size = window
        ax.add_patch(Rectangle((w - 0.5, h - 0.5), size, size, fill=False, ec="cyan", lw=1.2))
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def _response_figure(resps: list, label: str):
    fig, axes = plt.subplots(2, 1, figsize=(PAGE_WIDTH, 6.6), sharex=True)
    plot_frequency_response(resps, ax=axes[0], label=label,
                            title=f"gain at the grating frequency: {label} (solid), bicubic (dashed)")
    plot_frequency_response(resps, ax=axes[1], quantity="error", label=label,
                            title=f"total relative error on the gratings; dotted: {label}'s harmonics")
    axes[0].set_xlabel("")
    fig.tight_layout()
    return fig


def _band_error_figure(result: Mapping, scales: list, label: str):
    centers = 0.5 * (DEFAULT_EDGES[1:] + DEFAULT_EDGES[:-1])
    first = result["scales"][scales[0]]["mean_error"]
    groups = [g for g in ("chirp", "artificial512", "photographs", "Set5", "Set14") if g in first]
    fig, axes = plt.subplots(len(groups), 1, figsize=(PAGE_WIDTH, 2.6 * len(groups)), squeeze=False, sharex=True)
    for ax, g in zip(axes[:, 0], groups):
        curves, colors = {}, {}
        for s in scales:
            e = result["scales"][s]["mean_error"][g]
            for k in ("model", "bicubic"):
                name = f"x{s} {label if k == 'model' else 'bicubic'}"
                curves[name] = (centers, np.array([np.nan if v is None else v for v in e[k]], dtype=float))
                colors[name] = SCALE_COLORS.get(int(s))
        n = first[g]["n_images"]
        plot_band_error(curves, ax=ax, colors=colors,
                        title=f"{g} ({n} image{'s' if n > 1 else ''}; {first[g].get('kind', '')})")
        for s in scales:
            ax.axvline(0.5 / int(s), color=SCALE_COLORS.get(int(s)), ls=":", lw=1)
        if ax is not axes[-1, 0]:
            ax.set_xlabel("")
    fig.tight_layout()
    return fig


def _agreement_figure(result: Mapping, scales: list, label: str):
    panels = {}
    for s in scales:
        r = result["scales"][s]
        resp = FrequencyResponse.from_dict(r["response"])
        err = {k: BandError.from_dict(r["chirp_local_error"][k]) for k in ("model", "bicubic")}
        names = {k: f"inverse ({k})" if k != "LAM" else "LAM (dense)" for k in r["attribution"]}
        agr = chirp_agreements(r, int(s))
        panels[int(s)] = dict(
            attributions={names[k]: FrequencyBins.from_dict(v["profile"]) for k, v in r["attribution"].items()},
            agreements={names[k]: v for k, v in agr.items()},
            gains={f"{label} gain": (resp.frequencies, resp.gain("model")),
                   "bicubic gain": (resp.frequencies, resp.gain("bicubic"))},
            errors={f"{label} error (chirp)": err["model"], "bicubic error (chirp)": err["bicubic"]},
            title=f"x{s}: {result['chirp_size']}-px chirp")
    return plot_frequency_agreement_grid(panels)


def _lam_figure(result: Mapping, scales: list, maps: Mapping):
    ncol = 1 + max(len(result["scales"][s]["lam_windows"]) for s in scales)
    fig, axes = plt.subplots(len(scales), ncol, figsize=(PAGE_WIDTH, PAGE_WIDTH / ncol * len(scales) + 0.3),
                             squeeze=False)
    for row, s in zip(axes, scales):
        x = np.asarray(maps[f"x{s}_x"], dtype=np.float64)
        plot_lam(x, maps[f"x{s}_lam_dense"], ax=row[0], title=f"x{s} dense LAM")
        for ax, w in zip(row[1:], result["scales"][s]["lam_windows"]):
            plot_lam(x, maps[f"x{s}_lam_{w['h']}_{w['w']}"], window=(w["h"], w["w"], w["window"]), ax=ax,
                     title=f"{w['f_window']:.2f} c/px, DI {w['diffusion_index']:.1f}")
    fig.tight_layout()
    return fig


def ground_truth_figures(result: Mapping, maps: Mapping | None = None) -> dict:
    """The figures of a ground-truth run (:func:`invnb.sr.ground_truth.run_ground_truth`).

    Parameters
    ----------
    result : mapping
        The run's record (or its ``summary.json``, read back).
    maps : mapping of str to array, optional
        Its attribution maps (``lam_maps.npz``); without them no ``"lam"`` figure.

    Returns
    -------
    dict of str to matplotlib.figure.Figure
        ``"response"`` (gain and total error on the gratings), ``"band_error"`` (per-band error per image
        group), ``"agreement"`` (attribution, gain and error on one axis per scale) and ``"lam"`` (the
        dense LAM and its windows); the caller saves and closes them.
    """
    label = sr_network(result["network"]).label
    scales = sorted(result["scales"], key=int)
    resps = [FrequencyResponse.from_dict(result["scales"][s]["response"]) for s in scales]
    figs = {"response": _response_figure(resps, label), "band_error": _band_error_figure(result, scales, label),
            "agreement": _agreement_figure(result, scales, label)}
    if maps:
        figs["lam"] = _lam_figure(result, scales, maps)
    return figs
