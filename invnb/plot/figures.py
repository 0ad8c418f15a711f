"""Figures for attributions and metrics (all of invnb's matplotlib lives here).

Every function takes arrays or tensors (any device) plus an optional ``ax`` and
returns the Axes (or Figure for multi-panel figures), so notebooks compose
them freely. Maps are normalised here, for display only; pass ``vmax`` to
share one colour scale across panels.

Examples
--------
>>> from invnb.datasets import MEAN, STD
>>> ax = show_attribution(attributions[0], image=x[0], mean=MEAN, std=STD)
>>> fig = attribution_grid(x, {"random": attributions}, mean=MEAN, std=STD)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from invnb.plot.colors import method_colors, method_linestyle

__all__ = ["to_image", "show_image", "show_attribution", "attribution_grid", "shared_colorbar", "plot_curves", "plot_reid", "plot_tradeoff", "plot_tradeoff_comparison", "legend_below"]


def to_numpy(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().float().cpu().numpy()
    return np.asarray(t, dtype=float)


def to_image(t, mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> np.ndarray:
    """Convert an image tensor to an array ``imshow`` can draw.

    Parameters
    ----------
    t : Tensor or array
        (C, H, W) or (1, C, H, W) image, C = 1 or 3, on any device.
    mean, std : sequence of float, optional
        Per-channel normalisation to undo (``t * std + mean``). Without them,
        an image already in [0, 1] is shown as is and anything else is
        min-max scaled.

    Returns
    -------
    numpy.ndarray
        (H, W, 3) float in [0, 1] for colour images, (H, W) for grey ones.

    Examples
    --------
    >>> from invnb.datasets import MEAN, STD
    >>> to_image(x[0], mean=MEAN, std=STD).shape     # (H, W, 3) in [0, 1]
    (64, 64, 3)
    """
    a = to_numpy(t)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 3 or a.shape[0] not in (1, 3):
        raise ValueError(f"expected a (C, H, W) image with 1 or 3 channels, got shape {a.shape}.")
    if (mean is None) != (std is None):
        raise ValueError("give both mean and std to undo a normalisation, or neither.")
    if mean is not None:
        a = a * np.asarray(std, dtype=float).reshape(-1, 1, 1) + np.asarray(mean, dtype=float).reshape(-1, 1, 1)
    elif a.min() < 0 or a.max() > 1:
        lo, hi = a.min(), a.max()
        a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    a = np.clip(a, 0.0, 1.0).transpose(1, 2, 0)
    return a[..., 0] if a.shape[-1] == 1 else a


def _ax(ax):
    if ax is None:
        _, ax = plt.subplots()
    return ax


def show_image(t, ax=None, mean=None, std=None, title: str | None = None):
    """Draw one image tensor; returns the Axes. See :func:`to_image` for the arguments."""
    ax = _ax(ax)
    img = to_image(t, mean, std)
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def show_attribution(attributions, image=None, ax=None, mean=None, std=None, cmap: str = "magma",
                     alpha: float = 0.65, vmax: float | None = None, title: str | None = None, colorbar: bool = False,
                     background: str = "grey"):
    """Draw an attribution map, optionally over its image.

    Parameters
    ----------
    attributions : Tensor or array
        (H, W) map (or (1, H, W)).
    image : Tensor or array, optional
        (C, H, W) image drawn underneath (see :func:`to_image` for ``mean``/``std``).
    ax : matplotlib Axes, optional
        Where to draw; a new figure when None.
    cmap : str
        Colour map of the attribution; a perceptually uniform one
        (``"magma"``, ``"viridis"``) keeps equal steps of the map equally visible.
    alpha : float
        Share of the map's colour in each pixel over the image (1 without an image).
    vmax : float, optional
        Value drawn at full colour; default the map's maximum. Give the same
        value to several panels to compare magnitudes.
    title : str, optional
        Panel title.
    colorbar : bool
        Add a colour bar.
    background : {"grey", "colour"}
        ``"grey"``: the map is blended with a greyscale copy of the image, so
        the image's own colours cannot be mistaken for the map's;
        ``"colour"``: the map is drawn with opacity `alpha` over the image as it is.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if background not in ("grey", "colour"):
        raise ValueError(f"background must be 'grey' or 'colour', got {background!r}")
    ax = _ax(ax)
    a = to_numpy(attributions)
    a = a.reshape(a.shape[-2:]) if a.ndim == 3 and a.shape[0] == 1 else a
    if a.ndim != 2:
        raise ValueError(f"expected an (H, W) map, got shape {a.shape}.")
    vmax = float(a.max()) if vmax is None else float(vmax)
    norm = plt.Normalize(0.0, vmax if vmax > 0 else 1.0)
    if image is not None and background == "grey":
        img = to_image(image, mean, std)
        grey = (img.mean(axis=2) if img.ndim == 3 else img)[..., None]
        if grey.shape[:2] != a.shape:
            raise ValueError(f"the map {a.shape} and the image {grey.shape[:2]} differ in size.")
        colour = plt.get_cmap(cmap)(norm(np.clip(a, 0.0, None)))[..., :3]
        ax.imshow((1 - alpha) * grey + alpha * colour, vmin=0, vmax=1)
        im = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    else:
        if image is not None:
            show_image(image, ax=ax, mean=mean, std=std)
        im = ax.imshow(a, cmap=cmap, norm=norm, alpha=alpha if image is not None else 1.0)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return ax


def attribution_grid(images, maps: Mapping[str, object], mean=None, std=None, cmap: str = "magma",
                     alpha: float = 0.65, size: float = 1.8, colorbar: bool = True, width: float | None = None,
                     fontsize: float = 9, row_labels: Sequence[str] | None = None, background: str = "grey"):
    """One row per image: the image, then each method's map over it.

    Parameters
    ----------
    images : Tensor or array
        (N, C, H, W) images.
    maps : mapping of str to Tensor or array
        Method name -> (N, H, W) map; each map is drawn on its own scale
        (0 to its maximum; negative values clipped to 0).
    mean, std : sequence of float, optional
        Normalisation to undo for display.
    cmap, alpha, background
        As in :func:`show_attribution` (default: magma over a greyscale copy).
    size : float
        Panel size in inches (ignored when `width` is given).
    colorbar : bool
        Add one colour bar for all panels, in units of each map's maximum.
    width : float, optional
        Width of the whole figure in inches, colour bar included (e.g.
        :data:`invnb.plot.PAGE_WIDTH`, the book's text width); the panels
        share what the bar leaves.
    fontsize : float
        Size of the titles and row labels in points.
    row_labels : sequence of str, optional
        One label per image, left of its row.

    Returns
    -------
    matplotlib.figure.Figure
    """
    n = len(images)
    cols = 1 + len(maps)
    bar = 0.8 if colorbar else 0.0
    if width is not None:
        size = (float(width) - bar) / cols
    fig, axes = plt.subplots(n, cols, figsize=(size * cols, size * n + 0.35), squeeze=False)
    for i in range(n):
        show_image(images[i], ax=axes[i, 0], mean=mean, std=std)
        if i == 0:
            axes[i, 0].set_title("input", fontsize=fontsize)
        if row_labels is not None:
            axes[i, 0].set_axis_on()
            axes[i, 0].set_xticks([])
            axes[i, 0].set_yticks([])
            axes[i, 0].set_ylabel(row_labels[i], fontsize=fontsize)
        for j, (name, m) in enumerate(maps.items(), start=1):
            show_attribution(m[i], image=images[i], ax=axes[i, j], mean=mean, std=std, cmap=cmap, alpha=alpha,
                             background=background)
            if i == 0:
                axes[i, j].set_title(name, fontsize=fontsize)
    if colorbar:
        cb = shared_colorbar(fig, cmap=cmap, label="share of the map's maximum", width=bar)
        cb.set_label("share of the map's maximum", fontsize=fontsize)
        cb.ax.tick_params(labelsize=fontsize - 1)
    else:
        fig.tight_layout()
    return fig


def shared_colorbar(fig, cmap: str = "magma", label: str = "", vmin: float = 0.0, vmax: float = 1.0,
                    width: float = 0.8):
    """Lay out ``fig`` and add one colour bar to the right of all its panels.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        A figure whose panels all use the same colour map and scale.
    cmap : str
        Their colour map.
    label : str
        Text along the bar (what the colours measure).
    vmin, vmax : float
        Values at the bottom and top of the bar.
    width : float
        Inches added on the right for the bar, its ticks and its label.

    Returns
    -------
    matplotlib.colorbar.Colorbar
    """
    w, h = fig.get_size_inches()
    fig.set_size_inches(w + width, h)
    total = w + width
    axes = [a for a in fig.axes]
    fig.tight_layout(rect=(0, 0, 1 - width / total, 1))
    top = max(a.get_position().y1 for a in axes)
    bottom = min(a.get_position().y0 for a in axes)
    cax = fig.add_axes((1 - width / total + 0.06 / total, bottom, 0.12 / total, top - bottom))
    cb = fig.colorbar(plt.cm.ScalarMappable(norm=plt.Normalize(vmin, vmax), cmap=cmap), cax=cax)
    if label:
        cb.set_label(label, fontsize="small")
    cb.ax.tick_params(labelsize="small")
    return cb


def plot_curves(curves, ax=None, image: int | None = None):
    """Deletion or insertion curves with their AUC in the legend.

    Parameters
    ----------
    curves : CausalCurve or mapping of str to CausalCurve
        From :func:`invnb.eval.deletion_curve` / ``insertion_curve``.
    ax : matplotlib Axes, optional
        Where to draw.
    image : int, optional
        Draw this image's curve; default the mean over images.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _ax(ax)
    if not isinstance(curves, Mapping):
        curves = {"": curves}
    mode = None
    top = 1.0
    colors = method_colors([n for n in curves if n])
    for name, c in curves.items():
        scores = to_numpy(c.scores)
        y = scores.mean(axis=0) if image is None else scores[image]
        auc = float(to_numpy(c.auc).mean()) if image is None else float(to_numpy(c.auc)[image])
        label = f"{name} (AUC {auc:.3f})" if name else f"AUC {auc:.3f}"
        ax.plot(to_numpy(c.fractions), y, label=label, color=colors.get(name),
                ls=method_linestyle(name), lw=2.2 if name in ("inverse", "inverse_paper") else 1.2)
        mode = c.mode
        top = max(top, float(np.max(y)))
    better = {"deletion": "lower is better", "insertion": "higher is better"}.get(mode, "")
    ax.set_xlabel(f"fraction of pixels {'deleted' if mode == 'deletion' else 'inserted'}")
    ax.set_ylabel("class probability")
    ax.set_title(f"{mode} ({better})" if mode else "")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02 * top)
    ax.legend(fontsize="small")
    return ax


def plot_reid(reids, ax=None, k: int = 1, linestyles: Mapping[str, str] | None = None):
    """Re-identification rate per layer.

    Parameters
    ----------
    reids : Reidentification or mapping of str to Reidentification
        From :func:`invnb.eval.reid_rates`.
    ax : matplotlib Axes, optional
        Where to draw.
    k : int
        Which top-k rate to draw.
    linestyles : mapping of str to str, optional
        Line style of some curves (e.g. ``{"default, rescaled": "--"}``); default solid.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _ax(ax)
    linestyles = dict(linestyles or {})
    if not isinstance(reids, Mapping):
        reids = {"": reids}
    names = None
    colors = method_colors([n for n in reids if n])
    for name, r in reids.items():
        dashed = linestyles.get(name, "-") != "-"
        ax.plot(range(len(r.layers)), to_numpy(r.rate(k)), marker="o", ms=3 if dashed else 4, label=name or None,
                color=colors.get(name), ls=linestyles.get(name, "-"), alpha=0.7 if dashed else 1.0)
        names = r.names
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=90, fontsize="small")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("layer fed with the inverse feature")
    ax.set_ylabel(f"top-{k} re-identification")
    if any(reids):
        ax.legend(fontsize="small")
    return ax


def plot_tradeoff(rows: Sequence[Mapping], ax=None, reid: str = "reid_top1", modes: Sequence[str] | None = None,
                  colors: Mapping[str, object] | None = None):
    """The paper's trade-off plot: amount of activation vs. re-identification.

    Parameters
    ----------
    rows : sequence of dict
        Rows of :func:`invnb.eval.map_tradeoff` / ``inverse_tradeoff``
        (or :func:`invnb.eval.read_table`).
    ax : matplotlib Axes, optional
        Where to draw.
    reid : str
        Column on the vertical axis.
    modes : sequence of str, optional
        Keep only these modes (``"hard"``, ``"soft"``, ``"inverse"``).
    colors : mapping of str to colour, optional
        Colour of each method; default :func:`invnb.plot.method_color`
        (the same colour for a method in every figure).

    Returns
    -------
    matplotlib.axes.Axes
        One line per (method, mode), points sorted by amount; inverse rows are
        drawn thick, and a method with a single point as a star. Upper left
        is better: little of the input kept, class still recognised.
    """
    ax = _ax(ax)
    if colors is None:
        colors = method_colors(list(dict.fromkeys(r["method"] for r in rows)))
    groups: dict[tuple[str, str], list[Mapping]] = {}
    for r in rows:
        if modes is None or r["mode"] in modes:
            groups.setdefault((r["method"], r["mode"]), []).append(r)
    styles = {"hard": "-", "soft": "--", "inverse": "-"}
    for (method, mode), rs in groups.items():
        rs = sorted(rs, key=lambda r: float(r["amount"]))
        xs, ys = [float(r["amount"]) for r in rs], [float(r[reid]) for r in rs]
        single = len(rs) == 1
        label = method if mode == "inverse" else f"{method} ({mode})"
        ax.plot(xs, ys, styles.get(mode, ":"), color=colors.get(method), marker="*" if single else "o",
                ms=12 if single else 3, lw=2.5 if mode == "inverse" else 1.2, label=label,
                zorder=3 if mode == "inverse" else 2)
    ax.set_xlabel("amount of activation (lower = less kept)")
    ax.set_ylabel(reid.replace("reid_", "re-identification ").replace("top", "top-"))
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", ncol=2)
    return ax


def plot_tradeoff_comparison(rows: Sequence[Mapping], reid: str = "reid_top1", max_amount: float | None = 0.3,
                             colors: Mapping[str, object] | None = None):
    """Every method's trade-off under the same hard and soft rules, side by side.

    Parameters
    ----------
    rows : sequence of dict
        Trade-off rows (``mode`` ``"hard"``, ``"soft"``, ``"own"`` (a method's
        own kept input, one point), ``"inverse"`` (a ``mask_weight`` sweep) or
        ``"object"`` (the object itself)), e.g. ``tradeoff.json`` of
        ``scripts/synthetic_benchmark.py``.
    reid : str
        Column on the vertical axis.
    max_amount : float or None
        Shade the amounts over which the summary number is taken.
    colors : mapping, optional
        One colour per method; default :func:`invnb.plot.method_color`;
        the inverse sweep is black.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels (hard top-k masks, soft masks). Each shows every method's
        curve under that rule; own kept inputs are stars in both panels, the
        inverse's ``mask_weight`` sweep a thick black line, the object a
        grey cross.
    """
    names = list(dict.fromkeys(r["method"] for r in rows if r["mode"] in ("hard", "soft", "own")))
    if colors is None:
        colors = method_colors(names)
    fig, axes = plt.subplots(1, 2, figsize=(14, 6), sharey=True)
    for ax, mode, title in zip(axes, ("hard", "soft"), ("hard masks: top pixels of each map kept",
                                                        "soft masks: x * (a / max a) ** e")):
        for name in names:
            pts = sorted((r for r in rows if r["method"] == name and r["mode"] == mode),
                         key=lambda r: float(r["amount"]))
            if pts:
                ax.plot([float(r["amount"]) for r in pts], [float(r[reid]) for r in pts], marker="o", ms=3, lw=1.2,
                        ls=method_linestyle(name), color=colors.get(name), label=name)
            own = [r for r in rows if r["method"] == name and r["mode"] == "own"]
            for r in own:
                ax.plot(float(r["amount"]), float(r[reid]), "*", ms=13, mec="black", mew=0.6,
                        color=colors.get(name), label=f"{name} (own kept input)" if not pts else None, zorder=4)
        sweep = sorted((r for r in rows if r["mode"] == "inverse"), key=lambda r: float(r["amount"]))
        if sweep:
            ax.plot([float(r["amount"]) for r in sweep], [float(r[reid]) for r in sweep], "-s", color="black",
                    lw=2.5, ms=4, label=f"{sweep[0]['method']}: own kept input, mask_weight sweep", zorder=3)
        for r in rows:
            if r["mode"] == "object":
                ax.plot(float(r["amount"]), float(r[reid]), "X", ms=11, color="grey", label=r["method"], zorder=4)
        if max_amount:
            ax.axvspan(0, max_amount, color="0.9", zorder=0)
        ax.set_title(title)
        ax.set_xlabel("amount of activation (lower = less kept)")
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(reid.replace("reid_", "re-identification ").replace("top", "top-"))
    # one legend for both panels (a method may have curves in one panel only)
    handles = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    axes[1].legend(handles.values(), handles.keys(), fontsize="small", ncol=2, loc="lower right")
    fig.tight_layout()
    return fig


def legend_below(fig, ncol: int = 4, height: float = 0.2, fontsize: str = "medium") -> None:
    """Replace the legends of all panels by one legend under them, readable at page width.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure; entries with the same label are shown once.
    ncol : int
        Legend columns.
    height : float
        Share of the figure height kept for the legend.
    fontsize : str
        Legend font size.
    """
    handles = {}
    for ax in fig.axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=ncol, fontsize=fontsize, frameon=False)
    fig.tight_layout(rect=(0, height, 1, 1))
