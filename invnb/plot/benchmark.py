"""Figures of the synthetic benchmark: the trade-off of every map and the mean deletion / insertion curves."""

from __future__ import annotations

import torch

from invnb.plot.figures import legend_below, plot_curves, plot_tradeoff_comparison

__all__ = ["plot_benchmark_curves", "plot_benchmark_tradeoff"]


def plot_benchmark_tradeoff(trade: list[dict], n_images: int, max_amount: float):
    """Every map's hard and soft trade-off curves (:func:`plot_tradeoff_comparison`), legend below.

    Parameters
    ----------
    trade : list of dict
        Trade-off rows (``tradeoff.json``'s ``rows``).
    n_images : int
        Images they were measured on (for the title).
    max_amount : float
        Right end of the amount axis (the AUC's range).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = plot_tradeoff_comparison(trade, max_amount=max_amount)
    fig.set_size_inches(14, 7.6)
    fig.suptitle(f"Trade-off on {n_images} held-out synthetic images, every map under the same rules "
                 "(upper left is better)")
    legend_below(fig, ncol=4, height=0.17)
    return fig


def plot_benchmark_curves(means: dict, step: int):
    """Mean deletion and insertion curves of every map, one legend below.

    Parameters
    ----------
    means : dict
        ``{row: {"deletion" | "insertion": {"fractions", "mean", "auc"}}}`` (``curves.json``'s ``methods``).
    step : int
        Pixels per step of the curves.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    from invnb.eval.causal import CausalCurve

    fig, axes = plt.subplots(1, 2, figsize=(13, 7.5))
    for ax, mode in zip(axes, ("deletion", "insertion")):
        curves = {name: CausalCurve(auc=torch.tensor([m[mode]["auc"]]),
                                    fractions=torch.tensor(m[mode]["fractions"], dtype=torch.float32),
                                    scores=torch.tensor([m[mode]["mean"]], dtype=torch.float32), classes=None,
                                    mode=mode, step=step)
                  for name, m in means.items()}
        plot_curves(curves, ax=ax)
    for ax in axes:  # one legend: the methods (the AUCs are in the results table)
        for line in ax.get_lines():
            line.set_label(line.get_label().split(" (AUC")[0])
    legend_below(fig, ncol=4, height=0.26)
    return fig
