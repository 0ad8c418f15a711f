"""invnb.plot.claim2 smoke tests on the Agg backend, on the bundled ground-truth run."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest import REPO  # noqa: E402

from invnb.book.results import load_json  # noqa: E402
from invnb.plot.claim2 import plot_chirp_curves, plot_claim2_scale  # noqa: E402
from invnb.plot.sr_truth import PAGE_WIDTH  # noqa: E402


def test_plot_claim2_scale_draws_three_panels_at_page_width():
    truth = load_json(REPO / "data" / "results" / "sr_ground_truth" / "summary.json")
    fig = plot_claim2_scale(truth["scales"]["2"], 2, label="VDSR")
    axes = fig.get_axes()
    assert len(axes) == 3 and fig.get_size_inches()[0] == pytest.approx(PAGE_WIDTH)
    assert axes[2].get_yscale() == "log" and axes[0].get_xlim() == axes[2].get_xlim()
    assert len(axes[0].get_lines()) >= len(truth["scales"]["2"]["attribution"])
    plt.close(fig)


def test_plot_chirp_curves_shares_one_y_axis():
    f = np.linspace(0.01, 0.2, 10)
    fig = plot_chirp_curves({2: {"default": (f, 0.9 - f)}, 4: {"paper": (f, f * 4)}}, ylim=(0, 1))
    a, b = fig.get_axes()
    assert a.get_ylim() == b.get_ylim() == (0, 1)
    plt.close(fig)
    with pytest.raises(ValueError):
        plot_chirp_curves({})
