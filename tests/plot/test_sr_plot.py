"""invnb.plot.sr smoke tests on the Agg backend."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from invnb.plot import plot_fidelity_amount, plot_frequency_profile  # noqa: E402
from invnb.sr import frequency_profile  # noqa: E402


def test_plot_frequency_profile_log_axis_and_given_ax():
    rng = np.random.default_rng(0)
    prof = frequency_profile(rng.random((32, 32)), rng.random((32, 32)))
    fig, ax = plt.subplots()
    out = plot_frequency_profile(prof, ax=ax, title="t")
    assert out is ax and ax.get_yscale() == "log"
    assert len(ax.lines) == 4  # three curves and the cut marker
    np.testing.assert_allclose(ax.lines[2].get_ydata(), prof.all)
    plt.close(fig)
    ax2 = plot_frequency_profile(prof, cut=None)
    assert len(ax2.lines) == 3 and isinstance(ax2.figure, matplotlib.figure.Figure)
    plt.close(ax2.figure)


def test_plot_fidelity_amount():
    ax = plot_fidelity_amount({"paper": ([0.1, 0.2], [20.0, 25.0]), "ours": ([0.1], [30.0])}, labels={"paper": ["a", "b"]})
    assert len(ax.lines) == 2 and len(ax.texts) == 2
    plt.close(ax.figure)
