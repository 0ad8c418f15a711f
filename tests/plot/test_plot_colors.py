"""One colour per method in every figure (invnb.plot.colors), colour bars on map figures,
and the --replot options that redraw bundled figures from their summary files."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from invnb import plot  # noqa: E402
from invnb.attribution import available_methods  # noqa: E402
from invnb.paths import RESULTS_DIR  # noqa: E402
from invnb.plot import (  # noqa: E402
    METHOD_COLORS,
    method_color,
    method_colors,
    method_linestyle,
    plot_band_retention,  # noqa: E402
)
from invnb.plot import method_colors as sanity_colors  # noqa: E402


def test_every_method_has_its_own_colour():
    assert set(available_methods()) <= set(METHOD_COLORS)
    rgba = [to_rgba(c) for c in METHOD_COLORS.values()]
    assert len(set(rgba)) == len(rgba), "two methods share a colour"
    assert to_rgba(METHOD_COLORS["inverse"]) == to_rgba("black")
    assert to_rgba(METHOD_COLORS["inverse_paper"]) == to_rgba("red")


def test_labels_resolve_to_their_method_or_setting():
    assert method_color("inverse (paper)") == METHOD_COLORS["inverse_paper"]
    assert method_color("inverse (default)") == METHOD_COLORS["inverse"]
    assert method_color("Set5 x2 paper") == METHOD_COLORS["inverse_paper"]
    assert method_color("inverse (sweep)") == METHOD_COLORS["inverse"]
    assert method_color("grad_cam") == METHOD_COLORS["grad_cam"]
    assert method_color("no such method", default=None) is None
    assert method_color("no such method") not in METHOD_COLORS.values()
    assert method_linestyle("inverse.abs") == "--" and method_linestyle("inverse") == "-"
    assert method_linestyle("object_mask") == ":"  # the benchmark's reference row
    # the sanity figure's helper is the same map, whatever order the names come in
    names = ["sobel", "inverse_paper", "saliency"]
    assert sanity_colors(names) == method_colors(names[::-1]) == {n: METHOD_COLORS[n] for n in names}


def test_plot_functions_draw_a_method_in_its_colour():
    rows = [{"method": m, "mode": "hard", "amount": a, "reid_top1": r}
            for m in ("saliency", "inverse_paper") for a, r in ((0.1, 0.3), (0.5, 0.8))]
    fig = plot.plot_tradeoff_comparison(rows)
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
    for m in ("saliency", "inverse_paper"):
        assert to_rgba(lines[m].get_color()) == to_rgba(METHOD_COLORS[m])
    plt.close(fig)
    ax = plot_band_retention({"Set5 x2 default": np.ones(64), "Set5 x2 paper": np.ones(64)},
                             linestyles={"Set5 x2 paper": "--"})
    colours = [to_rgba(ln.get_color()) for ln in ax.get_lines()[:2]]
    assert colours == [to_rgba("black"), to_rgba("red")]
    assert ax.get_lines()[1].get_linestyle() == "--"
    plt.close(ax.figure)


@pytest.mark.parametrize("colorbar", [True, False])
def test_attribution_grid_has_one_colour_bar(colorbar):
    images = torch.rand(2, 3, 8, 8)
    maps = {"a": torch.rand(2, 8, 8), "b": torch.rand(2, 8, 8)}
    fig = plot.attribution_grid(images, maps, colorbar=colorbar)
    bars = [ax for ax in fig.axes if getattr(ax, "_colorbar", None) is not None]
    assert len(fig.axes) == 2 * 3 + (1 if colorbar else 0)
    assert len(bars) == (1 if colorbar else 0)
    if colorbar:
        assert bars[0].get_ylim() == pytest.approx((0.0, 1.0))
        # right of every panel, no overlap
        assert bars[0].get_position().x0 > max(a.get_position().x1 for a in fig.axes if a is not bars[0])
    plt.close(fig)


def test_benchmark_figures_draw_from_the_bundled_summary():
    from invnb.plot import plot_benchmark_curves, plot_benchmark_tradeoff

    folder = RESULTS_DIR / "synthetic_benchmark"
    trade = json.loads((folder / "tradeoff.json").read_text())
    fig = plot_benchmark_tradeoff(trade["rows"], trade["n_images"], trade["config"]["tradeoff_max_amount"])
    assert len(fig.axes) >= 2 and str(trade["n_images"]) in fig._suptitle.get_text()
    plt.close(fig)
    curves = json.loads((folder / "curves.json").read_text())
    fig = plot_benchmark_curves(curves["methods"], curves["step"])
    assert {ln.get_label() for ln in fig.axes[0].get_lines()} >= set(curves["methods"])
    plt.close(fig)


def test_chirp_images_round_trip_and_draw_the_chirp_grid(tmp_path):
    from invnb.plot import plot_chirp_grid, plot_retention_summary
    from invnb.sr.chirp_runs import load_chirp_images, save_chirp_images

    result = json.loads((RESULTS_DIR / "vdsr_chirp512_x2" / "summary.json").read_text())
    rng = np.random.default_rng(0)
    images = {}
    for c in result["chirp"]:
        x = rng.random((c["size"], c["size"]))
        images[(c["scale"], c["setting"])] = type("Run", (), {"x": x, "x_hat": 0.5 * x, "amount": c["amount"]})
    save_chirp_images(tmp_path / "chirp_images.npz", images)
    loaded = load_chirp_images(tmp_path / "chirp_images.npz", result)
    assert loaded.keys() == images.keys()
    for k, r in images.items():
        np.testing.assert_allclose(loaded[k].x_hat, r.x_hat, atol=1e-3)  # float16
    assert load_chirp_images(tmp_path / "missing.npz", result) == {}
    fig = plot_chirp_grid(loaded, result["chirp"][0]["rate"])
    plt.close(fig)
    fig = plot_retention_summary(json.loads((RESULTS_DIR / "vdsr_retention_set5_x2" / "summary.json").read_text()))
    assert len(fig.axes) == 2
    plt.close(fig)


def test_unknown_names_get_distinct_colours_apart_from_the_methods():
    colours = method_colors(["a", "b", "saliency", "c"])
    assert colours["saliency"] == METHOD_COLORS["saliency"]
    others = [to_rgba(colours[n]) for n in "abc"]
    assert len(set(others)) == 3
    assert not set(others) & {to_rgba(c) for c in METHOD_COLORS.values()}
