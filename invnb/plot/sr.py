"""Figures for the VDSR experiments (all matplotlib of the SR part lives here)."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from invnb.plot.colors import method_color

__all__ = ["plot_band_retention", "plot_chirp_colour_scale", "plot_chirp_grid", "plot_chirp_profiles", "plot_fidelity_amount",
           "plot_fidelity_sweep", "plot_frequency_profile", "plot_retention_summary"]


#: Colour scale of the chirp attribution maps (`plot_chirp_grid`): |x_hat| / |x| clipped to [0, 1].
CHIRP_CMAP, CHIRP_LABEL = "inferno", "|x_hat| / |x|"


def plot_frequency_profile(profile, ax=None, title: str | None = None, cut: int | None = 28):
    """The paper's frequency figure: mean |DCT| per zigzag band on a log axis.

    Parameters
    ----------
    profile : invnb.sr.FrequencyProfile
        Curves for focused, unfocused and all patches (64 bands).
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure is made otherwise.
    title : str, optional
        Axes title.
    cut : int or None, default 28
        Draw a dotted line at the first "high" band used by the summary.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.5))
    bands = np.arange(len(profile.all))
    ax.plot(bands, profile.unfocused, color="tab:green", lw=1.2, label=f"unfocused ({profile.n_unfocused} patches)")
    ax.plot(bands, profile.focused, color="tab:red", lw=1.2, label=f"focused ({profile.n_focused} patches)")
    ax.plot(bands, profile.all, "--", color="k", lw=1.0, label="all")
    if cut is not None:
        ax.axvline(cut, color="0.5", ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_xlim(0, len(bands) - 1)
    ax.set_xlabel("DCT band (zigzag order)")
    ax.set_ylabel("mean |DCT coefficient|")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return ax


def plot_fidelity_amount(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    ax=None,
    labels: Mapping[str, Sequence[str]] | None = None,
    xlabel: str = "amount of activation (lower = sparser explanation)",
    ylabel: str = "PSNR(y, y_hat) / dB (higher = more faithful)",
):
    """Fidelity against amount, one curve per method (e.g. a ``mask_weight`` sweep).

    Parameters
    ----------
    curves : mapping of str to (amounts, fidelities)
        Each method's points (a setting's name takes its colour,
        :func:`invnb.plot.method_color`).
    ax : matplotlib.axes.Axes, optional
        Where to draw.
    labels : mapping of str to sequence of str, optional
        Text put next to each point (e.g. the ``mask_weight``).
    xlabel, ylabel : str
        Axis labels.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.8))
    for name, (amounts, fidelity) in curves.items():
        ax.plot(amounts, fidelity, "o-", label=name, color=method_color(name, default=None))
        for text, xv, yv in zip((labels or {}).get(name, ()), amounts, fidelity):
            ax.annotate(str(text), (xv, yv), textcoords="offset points", xytext=(3, 3), fontsize="small")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def plot_chirp_profiles(profiles, scale: int, band=None, ax=None, title: str | None = None):
    """Attribution against local frequency on the chirp, with the LR Nyquist frequency marked.

    Parameters
    ----------
    profiles : mapping of str to invnb.sr.FrequencyBins
        ``{"radial": ..., "x": ..., "y": ...}`` from :func:`invnb.sr.chirp_profiles`.
    scale : int
        SR factor; a dashed line marks ``0.5 / scale`` cycles/px.
    band : invnb.sr.ChirpBand, optional
        Shaded: the band of lowest (radial) attribution.
    ax : matplotlib.axes.Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.5))
    styles = {"radial": ("k", "-"), "x": ("tab:blue", "--"), "y": ("tab:orange", ":")}
    for name, bins in profiles.items():
        color, ls = styles.get(name, (None, "-"))
        ax.plot(bins.centers, bins.mean, ls, color=color, lw=1.3, label=f"{name} frequency")
    nyq = 0.5 / scale
    ax.axvline(nyq, color="tab:red", ls="--", lw=1, label=f"LR Nyquist x{scale} ({nyq:.3f})")
    if band is not None:
        ax.axvspan(band.lo, band.hi, color="0.6", alpha=0.3, label=f"lowest band (depth {band.depth:.2f})")
    ax.set_xlabel("local frequency (cycles / HR pixel)")
    ax.set_ylabel("mean attribution |x_hat| / |x|")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return ax


def plot_chirp_grid(runs: Mapping, rate: float):
    """One row per (scale, setting): input, inverse input, attribution, attribution vs frequency.

    Parameters
    ----------
    runs : mapping of (int, str) to invnb.sr.VDSRInversion
        Chirp inversions keyed by ``(scale, setting)``.
    rate : float
        The chirp constant.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from invnb.sr.chirp import chirp_profiles, lowest_band
    from invnb.sr.frequency import attribution_ratio

    if not runs:
        raise ValueError("plot_chirp_grid needs at least one run")
    fig, axes = plt.subplots(len(runs), 4, figsize=(15, 3.6 * len(runs)), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1, 1, 1.6]})
    for row, ((scale, setting), r) in zip(axes, runs.items()):
        att = attribution_ratio(r.x_hat, r.x)
        prof = chirp_profiles(att, rate)
        row[0].imshow(r.x, cmap="gray", vmin=0, vmax=1)
        row[0].set_title(f"x{scale} input (bicubic)")
        row[1].imshow(r.x_hat, cmap="gray", vmin=0, vmax=1)
        row[1].set_title(f"inverse input, {setting}")
        im = row[2].imshow(np.clip(att, 0, 1), cmap=CHIRP_CMAP, vmin=0, vmax=1)
        row[2].set_title(f"attribution (amount {r.amount:.2f})")
        row[2].figure.colorbar(im, ax=row[2], fraction=0.046, pad=0.03, label=CHIRP_LABEL)
        for a in row[:3]:
            a.set_axis_off()
        plot_chirp_profiles(prof, scale, lowest_band(prof["radial"]), ax=row[3],
                            title=f"x{scale} {setting}: attribution vs local frequency")
    fig.tight_layout()
    return fig


def plot_chirp_colour_scale(label: str = CHIRP_LABEL, width: float = 6.0):
    """A horizontal colour bar of the chirp maps' scale (`plot_chirp_grid`'s: 0 to 1), on its own.

    For a figure drawn before its maps had colour bars: the scale is the same
    fixed mapping, so the bar can be drawn apart from the maps.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib as mpl

    fig, ax = plt.subplots(figsize=(width, 1.0))
    fig.colorbar(mpl.cm.ScalarMappable(norm=mpl.colors.Normalize(0, 1), cmap=CHIRP_CMAP), cax=ax,
                 orientation="horizontal", label=label)
    fig.subplots_adjust(left=0.05, right=0.95, bottom=0.6, top=0.95)
    return fig


def plot_band_retention(curves: Mapping[str, Sequence[float]], ax=None, title: str | None = None,
                        linestyles: Mapping[str, str] | None = None):
    """Per-band retention mean |DCT(x_hat)| / mean |DCT(x)| in zigzag order, one curve per run.

    Parameters
    ----------
    curves : mapping of str to sequence of float
        ``(64,)`` retention per zigzag band (NaN where the input has nothing).
        A name with a setting in it (``"Set5 x2 paper"``) takes that
        setting's colour (:func:`invnb.plot.method_color`).
    ax : matplotlib.axes.Axes, optional
    title : str, optional
    linestyles : mapping of str to str, optional
        Line style per curve (e.g. one per scale); default solid.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.5))
    for name, c in curves.items():
        c = np.asarray(c, dtype=np.float64)
        ax.plot(np.arange(c.size), c, (linestyles or {}).get(name, "-"), lw=1.2, label=name,
                color=method_color(name, default=None))
    ax.axhline(1.0, color="0.5", lw=0.8)
    ax.set_xlabel("DCT band of 8x8 patches (zigzag order, 0 = DC)")
    ax.set_ylabel("retention |DCT(x_hat)| / |DCT(x)|")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return ax


def plot_retention_summary(result: Mapping):
    """Per-band DCT retention of a chirp summary (its chirp and Set5 records), magnitude and projection.

    Colour: the setting; line style: the scale (x2 solid, x3 dashed, x4 dotted). Returns the Figure.
    """
    import matplotlib.pyplot as plt

    dashes = {2: "-", 3: "--", 4: ":"}
    fig, axes = plt.subplots(1, 2, figsize=(13, 3.8))
    for ax, key in zip(axes, ("retention", "retention_projection")):
        curves, styles = {}, {}
        for part, label in (("chirp", "chirp"), ("set5", "Set5")):
            for c in result.get(part, []):
                name = f"{label} x{c['scale']} {c['setting']}"
                curves[name], styles[name] = c[key], dashes.get(c["scale"], "-.")
        plot_band_retention(curves, ax=ax, title="magnitude" if key == "retention" else "projection (in phase)",
                            linestyles=styles)
    axes[0].set_yscale("log")
    return fig


def plot_fidelity_sweep(sweep: Mapping):
    """PSNR(y, y_hat) and the correlation of y_hat with y against the amount, for ``mask_weight`` sweeps.

    `sweep` is ``{name: [record with amount, psnr_dB, fidelity, mask_weight]}``. Returns the Figure.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, (key, label) in zip(axes, (("psnr_dB", "PSNR(y, y_hat) / dB"),
                                       ("correlation", "correlation of y_hat with y"))):
        curves = {n: ([r["amount"] for r in rows], [r[key] if key in r else r["fidelity"][key] for r in rows])
                  for n, rows in sweep.items()}
        labels = {n: [f"{r['mask_weight']:g}" for r in rows] for n, rows in sweep.items()}
        plot_fidelity_amount(curves, ax=ax, labels=labels, ylabel=label)
    fig.tight_layout()
    return fig
