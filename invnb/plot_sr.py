"""Figures for the VDSR experiments (all matplotlib of the SR part lives here)."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["plot_fidelity_amount", "plot_frequency_profile"]


def plot_frequency_profile(profile, ax=None, title: str | None = None, cut: int | None = 28):
    """The paper's frequency figure: mean |DCT| per zigzag band on a log axis.

    Parameters
    ----------
    profile : invnb.frequency.FrequencyProfile
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
        Each method's points.
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
        ax.plot(amounts, fidelity, "o-", label=name)
        for text, xv, yv in zip((labels or {}).get(name, ()), amounts, fidelity):
            ax.annotate(str(text), (xv, yv), textcoords="offset points", xytext=(3, 3), fontsize="x-small")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return ax
