"""invnb.plot.sr_truth smoke tests on the Agg backend."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from invnb.plot.sr_truth import (  # noqa: E402
    PAGE_WIDTH,
    plot_band_error,
    plot_frequency_agreement,
    plot_frequency_agreement_grid,
    plot_frequency_response,
    plot_lam,
)
from invnb.sr import band_error, frequency_agreement, frequency_response  # noqa: E402

F = np.arange(0.005, 0.23, 0.01)


def test_plot_frequency_response_and_band_error():
    resp = frequency_response(lambda x: x, 2, frequencies=[0.05, 0.15, 0.3], orientations=(0,), phases=(0,),
                              contrasts=(0.4,), border=12)
    ax = plot_frequency_response([resp], title="t")
    assert len(ax.lines) == 4  # model, bicubic, the Nyquist line, the line at 1
    np.testing.assert_allclose(ax.lines[0].get_ydata(), resp.gain("model"))
    plt.close(ax.figure)
    ax = plot_frequency_response([resp], quantity="error")
    assert ax.get_yscale() == "log" and len(ax.lines) == 5  # + the harmonics
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="quantity"):
        plot_frequency_response([resp], quantity="phase")
    hr = np.random.default_rng(0).random((40, 40))
    ax = plot_band_error({"model": band_error(0.9 * hr, hr), "bicubic": band_error(0.5 * hr, hr)}, nyquist=0.25)
    assert ax.get_yscale() == "log" and ax.lines[1].get_linestyle() == "--"
    plt.close(ax.figure)


def test_plot_frequency_agreement_draws_three_kinds_of_curve_on_one_axis():
    att = {"inverse (default)": (F, 1 - F), "LAM": (F, F)}
    gains = {"VDSR gain": (F, 1 - 2 * F), "bicubic gain": (F, 1 - 3 * F)}
    errors = {"VDSR error": (F, F), "bicubic error": (F, 2 * F)}
    agr = {"inverse (default)": frequency_agreement(att["inverse (default)"], gains["VDSR gain"],
                                                    errors["VDSR error"], 2)}
    ax = plot_frequency_agreement(att, gains, errors, 2, agr, title="x2")
    assert len(ax.lines) == 2 + 2 + 2  # attributions, gains, the Nyquist line and the line at 1
    assert len(ax.right_axis.lines) == 2 and ax.right_axis.get_yscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("rho gain +1.00" in t for t in labels)
    # an attribution is drawn relative to its maximum
    assert ax.lines[1].get_ydata()[-1] == pytest.approx(1.0) and ax.lines[1].get_ydata()[0] == pytest.approx(F[0] / F[-1])
    plt.close(ax.figure)
    fig = plot_frequency_agreement_grid({2: dict(attributions=att, gains=gains, errors=errors, agreements=agr),
                                         4: dict(attributions=att, gains=gains, errors=errors)})
    assert fig.get_size_inches()[0] == pytest.approx(PAGE_WIDTH) and len(fig.axes) == 4
    plt.close(fig)
    with pytest.raises(ValueError, match="at least one"):
        plot_frequency_agreement_grid({})


def test_plot_lam():
    x = np.random.default_rng(0).random((32, 32))
    ax = plot_lam(x, x - 0.5, window=(8, 8, 16), title="LAM")
    assert len(ax.images) == 2 and len(ax.patches) == 1
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="one shape"):
        plot_lam(x, x[:-1])


def test_ground_truth_figures_of_a_run():
    import json

    import torch

    from invnb.models import VDSR
    from invnb.plot.sr_truth import ground_truth_figures
    from invnb.sr import GroundTruthConfig, rounded, run_ground_truth

    torch.manual_seed(0)
    cfg = GroundTruthConfig(scales=(2, 3), settings=(), chirp_size=64, images=(), lam_steps=2,
                            response=dict(frequencies=[0.05, 0.15, 0.3], orientations=[0], phases=[0]))
    result, maps = run_ground_truth(VDSR(depth=3, channels=4).eval(), cfg)
    stored = json.loads(json.dumps(rounded(result)))  # as --replot reads it back
    figs = ground_truth_figures(stored, {k: v.astype(np.float32) for k, v in maps.items()})
    assert set(figs) == {"response", "band_error", "agreement", "lam"}
    assert all(f.get_size_inches()[0] == pytest.approx(PAGE_WIDTH) for f in figs.values())
    labels = [t.get_text() for t in figs["response"].axes[0].get_legend().get_texts()]
    assert "x2 VDSR" in labels and "x3 bicubic" in labels
    assert len(figs["band_error"].axes) == 1  # the chirp (no other image)
    assert len(figs["lam"].axes) == 2 * 4  # per scale: the dense map and three windows
    for f in figs.values():
        plt.close(f)
    assert "lam" not in ground_truth_figures(stored)
    plt.close("all")
