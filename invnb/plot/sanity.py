"""Figure of the model-randomisation sanity check (computation: :mod:`invnb.eval.sanity`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from invnb.plot.colors import method_colors

__all__ = ["plot_cascade_step", "plot_randomisation"]


_LABELS = {
    "spearman": "Spearman, trained vs random map",
    "ssim": "SSIM of max-normalised maps",
    "topk_iou": "IoU of the top 10% pixels",
    "mass_in_mask": "mass in the object",
    "pointing_game": "pointing game",
}


def plot_randomisation(summary: Sequence[Mapping], scores: Sequence[str] = tuple(_LABELS),
                       colors: Mapping[str, object] | None = None, axes=None,
                       highlight: Sequence[str] | None = None):
    """Curves of each score vs the number of layers re-initialised (cascade, top layer first).

    Parameters
    ----------
    summary : sequence of dict
        Rows of :func:`invnb.eval.randomisation_summary` (``method, mode, step, layer``,
        score means and ``<score>_sd``).
    scores : sequence of str
        One panel per score.
    colors : mapping, optional
        Colour per method; default :func:`invnb.plot.method_colors`.
    axes : sequence of Axes, optional
        One per score; a new figure otherwise.
    highlight : sequence of str, optional
        Methods drawn in colour with their bands; the others thin and grey, so that a
        few curves stand out of many (default: every method in colour).

    Returns
    -------
    matplotlib.figure.Figure
        Step 0 is the trained model; the band is +-1 sd over seeds; the
        marker right of the last step is the all-layers-at-once draw.
    """
    names = list(dict.fromkeys(r["method"] for r in summary))
    colors = dict(colors or method_colors(names))
    legend_ax = None
    if axes is None:
        ncols = 3
        nrows = -(-(len(scores) + 1) // ncols)
        fig, grid = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 4.4 * nrows), squeeze=False)
        grid = list(grid.ravel())
        axes, legend_ax = grid[:len(scores)], grid[len(scores)]
        for extra in grid[len(scores) + 1:]:
            extra.axis("off")
    fig = axes[0].figure
    layer_names: dict[int, str] = {}
    for ax, score in zip(axes, scores):
        for m in names:
            rows = sorted((r for r in summary if r["method"] == m and r["mode"] in ("trained", "cascade")),
                          key=lambda r: r["step"])
            if not rows:
                continue
            xs = np.array([r["step"] for r in rows])
            ys = np.array([r[score] for r in rows])
            sd = np.array([r.get(f"{score}_sd", 0.0) for r in rows])
            layer_names.update({r["step"]: r["layer"] for r in rows})
            shown = highlight is None or m in highlight
            color = colors.get(m) if shown else "0.7"
            label = m if shown else ("other methods" if m == next(n for n in names if n not in highlight) else None)
            ax.plot(xs, ys, "-o", ms=3 if shown else 2, color=color, label=label, zorder=3 if shown else 1,
                    lw=(2 if m.startswith("inverse") else 1.4) if shown else 0.8)
            if shown:
                ax.fill_between(xs, ys - sd, ys + sd, color=color, alpha=0.12, lw=0)
            full = [r for r in summary if r["method"] == m and r["mode"] == "all"]
            if full:
                ax.plot([xs.max() + 0.7], [full[0][score]], marker="*", ms=9 if shown else 6, color=color, ls="none")
        ax.set_title(_LABELS.get(score, score), fontsize=11)
        ax.set_xlabel("top layers re-initialised (* all at once)", fontsize=10)
        ax.grid(alpha=0.3)
    if layer_names:
        steps = sorted(layer_names)
        for ax in axes:
            ax.set_xticks(steps)
            ax.set_xticklabels([f"{s}: {layer_names[s]}" if s else "0: trained" for s in steps], fontsize=9,
                               rotation=60, ha="right")
    if legend_ax is not None:
        legend_ax.axis("off")
        legend_ax.legend(*axes[0].get_legend_handles_labels(), loc="center", fontsize=10, frameon=False)
    else:
        axes[-1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    return fig


def plot_cascade_step(summary: Sequence[Mapping], step: int, score: str = "spearman",
                      colors: Mapping[str, object] | None = None, ax=None):
    """One bar per method: a score at one cascade step, with +-1 sd over seeds.

    Chosen at a step where every method's map still has a ranking (for the inverse: before the
    randomised model's inverse becomes empty), the comparison does not depend on how an empty
    map is scored.

    Parameters
    ----------
    summary : sequence of dict
        Rows of :func:`invnb.eval.randomisation_summary`.
    step : int
        Number of top layers re-initialised.
    score : str
        A score column, e.g. ``"spearman"``; lower = the map depends more on the weights.
    colors : mapping, optional
        Colour per method; default :func:`invnb.plot.method_colors`.
    ax : Axes, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> rows = [{"method": "a", "mode": "cascade", "step": 1, "layer": "fc", "spearman": 0.5, "spearman_sd": 0.1}]
    >>> plot_cascade_step(rows, 1).axes[0].get_title()
    'Spearman, trained vs random map after 1 top layers re-initialised (fc)'
    """
    rows = sorted((r for r in summary if r["mode"] == "cascade" and r["step"] == step),
                  key=lambda r: r[score])
    if not rows:
        raise ValueError(f"no cascade rows at step {step}")
    colors = dict(colors or method_colors([r["method"] for r in rows]))
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.32 * len(rows) + 1.2))
    y = np.arange(len(rows))
    ax.barh(y, [r[score] for r in rows], xerr=[r.get(f"{score}_sd", 0.0) for r in rows],
            color=[colors.get(r["method"]) for r in rows], alpha=0.85)
    ax.set_yticks(y)
    ax.set_yticklabels([r["method"] for r in rows], fontsize=10)
    ax.set_xlabel(f"{_LABELS.get(score, score)} with the trained model's map (lower: depends more on the weights)",
                  fontsize=10)
    ax.set_title(f"{_LABELS.get(score, score)} after {step} top layers re-initialised ({rows[0]['layer']})",
                 fontsize=11)
    ax.axvline(0, color="grey", lw=0.8)
    ax.grid(axis="x", alpha=0.3)
    ax.figure.tight_layout()
    return ax.figure
