"""One colour per method in every figure (invnb.plot_colors), colour bars on map figures,
and the --replot options that redraw bundled figures from their summary files."""

from __future__ import annotations

import importlib.util
import json
import shutil

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from invnb import plot  # noqa: E402
from invnb.baselines import available_methods  # noqa: E402
from invnb.paths import RESULTS_DIR, SOURCE_ROOT  # noqa: E402
from invnb.plot_colors import METHOD_COLORS, method_color, method_colors, method_linestyle  # noqa: E402
from invnb.plot_sanity import method_colors as sanity_colors  # noqa: E402
from invnb.plot_sr import plot_band_retention  # noqa: E402


def _script(name):
    spec = importlib.util.spec_from_file_location(name, SOURCE_ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def test_synthetic_benchmark_replot_redraws_only_the_figure(tmp_path, capsys):
    bench = _script("synthetic_benchmark")
    folder = tmp_path / "bench"
    shutil.copytree(RESULTS_DIR / "synthetic_benchmark", folder)
    (folder / "tradeoff.png").unlink()
    (folder / "curves.json").unlink(missing_ok=True)  # as runs made before curves.json existed
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert bench.main(["--replot", str(folder)]) == 0
    assert (folder / "tradeoff.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.name != "tradeoff.png"} == before
    assert "no curves.json" in capsys.readouterr().out
    # with mean curves (as the script now writes them), curves.png is redrawn too
    curve = {"fractions": [0.0, 0.5, 1.0], "mean": [0.9, 0.4, 0.1], "auc": 0.45, "n_images": 3}
    (folder / "curves.json").write_text(json.dumps(
        {"step": 128, "methods": {"inverse": {"deletion": curve, "insertion": curve}}}))
    (folder / "curves.png").unlink()
    assert bench.main(["--replot", str(folder)]) == 0
    assert (folder / "curves.png").stat().st_size > 0
    assert bench.main(["--replot", str(tmp_path / "missing")]) == 2


def test_vdsr_chirp_replot_redraws_retention_from_the_summary(tmp_path):
    chirp = _script("vdsr_chirp")
    folder = tmp_path / "ret"
    shutil.copytree(RESULTS_DIR / "vdsr_retention_set5_x2", folder)
    (folder / "retention.png").unlink()
    summary = (folder / "summary.json").read_bytes()
    chirp.main(["--replot", str(folder)])
    assert (folder / "retention.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (folder / "summary.json").read_bytes() == summary
    with pytest.raises(SystemExit):
        chirp.main(["--replot", str(tmp_path / "missing")])


def test_vdsr_chirp_replot_draws_the_chirp_grid_from_saved_images(tmp_path):
    chirp = _script("vdsr_chirp")
    folder = tmp_path / "chirp"
    shutil.copytree(RESULTS_DIR / "vdsr_chirp512_x2", folder)
    result = json.loads((folder / "summary.json").read_text())
    rng = np.random.default_rng(0)
    images = {}
    for c in result["chirp"]:
        x = rng.random((c["size"], c["size"]))
        images[(c["scale"], c["setting"])] = type("Run", (), {"x": x, "x_hat": 0.5 * x, "amount": c["amount"]})
    chirp.save_images(folder / "chirp_images.npz", images)
    loaded = chirp.load_images(folder / "chirp_images.npz", result)
    assert loaded.keys() == images.keys()
    for k, r in images.items():
        np.testing.assert_allclose(loaded[k].x_hat, r.x_hat, atol=1e-3)  # float16
    (folder / "chirp.png").unlink()
    chirp.main(["--replot", str(folder)])
    assert (folder / "chirp.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_names_get_distinct_colours_apart_from_the_methods():
    colours = method_colors(["a", "b", "saliency", "c"])
    assert colours["saliency"] == METHOD_COLORS["saliency"]
    others = [to_rgba(colours[n]) for n in "abc"]
    assert len(set(others)) == 3
    assert not set(others) & {to_rgba(c) for c in METHOD_COLORS.values()}
