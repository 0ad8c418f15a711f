"""The chirp curves of a VDSR fidelity run (:func:`invnb.sr.fidelity.run_fidelity`)."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from invnb.plot.colors import method_color
from invnb.sr.chirp import FrequencyBins, lr_nyquist

__all__ = ["plot_fidelity_curves"]


def plot_fidelity_curves(result: Mapping):
    """Attribution ``|x_hat| / |x|`` by radial local frequency on the chirp, per chirp and scale.

    One panel per chirp image (rows) and scale (columns), one curve per setting (colour:
    :func:`invnb.plot.method_color`; the walk dashed, in the default's colour), the scale's
    LR Nyquist frequency dotted. Bins with fewer than a fifth of the median count are left out.

    Parameters
    ----------
    result : mapping
        A fidelity run's summary: ``{"runs": [record, ...]}``, records of
        :func:`invnb.sr.fidelity.fidelity_record` with ``image``; those without ``profile``
        (the photographs) are skipped.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If no record has a chirp profile.
    """
    import matplotlib.pyplot as plt

    runs = [r for r in result["runs"] if "profile" in r]
    if not runs:
        raise ValueError("the run has no chirp records (no 'profile'): nothing to draw")
    names = sorted({r["image"] for r in runs}, key=lambda n: (len(n), n))  # chirp64 before chirp128
    scales = sorted({r["scale"] for r in runs})
    fig, axes = plt.subplots(len(names), len(scales), figsize=(4.2 * len(scales), 3.2 * len(names)), squeeze=False)
    for i, name in enumerate(names):
        for j, scale in enumerate(scales):
            ax = axes[i, j]
            size = None
            for r in runs:
                if r["image"] != name or r["scale"] != scale:
                    continue
                size = r["size"]
                bins = FrequencyBins.from_dict(r["profile"])
                ok = bins.count >= max(1, int(0.2 * np.median(bins.count[bins.count > 0])))
                ax.plot(bins.centers[ok], bins.mean[ok],
                        color=method_color("default" if r["setting"] == "walk" else r["setting"]),
                        linestyle="--" if r["setting"] == "walk" else "-",
                        label=f"{r['setting']} (amount {r['amount']:.2f}, corr {r['fidelity']['correlation']:.2f})")
            ax.axvline(lr_nyquist(scale), color="grey", linestyle=":", linewidth=1)
            ax.set_title(f"{name} ({size} px after the crop to the scale), x{scale}", fontsize=9)
            ax.set_xlabel("radial local frequency (cycles/px)")
            ax.set_ylabel("mean |x_hat| / |x|")
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
