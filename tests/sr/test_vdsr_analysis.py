"""invnb.sr.analysis on a tiny random VDSR (fast; the real network is in the benchmark)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from invnb.inverse import LayerwiseInverse
from invnb.models import VDSR
from invnb.sr import (
    FrequencyProfile,
    analyse_samples,
    center_crop,
    invert_sample,
    invert_vdsr,
    make_sr_sample,
    psnr,
)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return VDSR(depth=4, channels=6).double().eval()


@pytest.fixture(scope="module")
def samples():
    rng = np.random.default_rng(0)
    hr = [rng.integers(0, 256, (24, 24, 3), dtype=np.uint8) for _ in range(2)]
    return [make_sr_sample(h, 2, name=f"img{i}") for i, h in enumerate(hr)]


def test_invert_vdsr_targets_the_networks_own_output(tiny):
    x = torch.rand(2, 1, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x_hat, y, y_hat, res = invert_vdsr(tiny, x, LayerwiseInverse.from_setting(tiny, "vdsr", max_iter=30))
    with torch.no_grad():
        torch.testing.assert_close(y, tiny(x))
        torch.testing.assert_close(y_hat, tiny(x_hat))
    torch.testing.assert_close(res.features[-1], y)  # the top target is the residual itself
    assert x_hat.shape == x.shape
    # the inverse input is a pixel-wise attenuation of the input
    assert (x_hat.abs() <= x.abs() + 1e-12).all() and (x_hat * x >= 0).all()


def test_invert_sample_measures_consistently(tiny, samples):
    r = invert_sample(tiny, samples[0], LayerwiseInverse.from_setting(tiny, "vdsr", max_iter=30))
    assert r.x.shape == r.x_hat.shape == r.gt.shape == (24, 24)
    assert r.fidelity == pytest.approx(psnr(r.y, r.y_hat, data_range=1, border=2))
    assert r.table.psnr["dA"] == pytest.approx(psnr(r.x, r.x_hat, data_range=1, border=2))
    assert r.table.psnr["dD"] == pytest.approx(psnr(r.x + r.y, r.gt, data_range=1, border=2))
    assert 0 <= r.amount <= 1 and r.seconds > 0 and not r.failed
    prof = r.frequency_profile()
    assert isinstance(prof, FrequencyProfile) and prof.n_focused + prof.n_unfocused == 9


def test_analyse_samples_averages_and_calls_back(tiny, samples):
    seen = []
    rep = analyse_samples(tiny, samples, LayerwiseInverse.from_setting(tiny, "vdsr_paper", max_iter=20), callback=seen.append)
    assert [r.name for r in seen] == ["img0", "img1"] and rep.images == seen
    assert rep.table.n_images == 2
    assert rep.table.mse["dA"] == pytest.approx(np.mean([r.table.mse["dA"] for r in seen]))
    assert rep.amount == pytest.approx(np.mean([r.amount for r in seen]))
    assert rep.frequency_profile().n_images == 2


def test_paper_setting_is_the_papers(tiny):
    inv = LayerwiseInverse.from_setting(tiny, "vdsr_paper")
    assert (inv.penalty, inv.solver, inv.mask_weight, inv.relu_in_objective, inv.scale_bound) == (
        "l2", "paper", 0.15, "always", True)
    with pytest.raises(ValueError, match="unknown inverse setting 'fast'"):
        LayerwiseInverse.from_setting(tiny, "fast")
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        invert_vdsr(tiny, torch.zeros(1, 3, 8, 8, dtype=torch.float64))


def test_center_crop(samples):
    c = center_crop(samples[0], 10)
    assert c.im_b_y.shape == c.im_gt_y.shape == (10, 10) and c.im_l_y is None
    np.testing.assert_array_equal(c.im_b_y, samples[0].im_b_y[7:17, 7:17])
    with pytest.raises(ValueError, match="does not fit"):
        center_crop(samples[0], 30)


def test_output_fidelity_known_answers():
    from invnb.sr import output_fidelity

    rng = np.random.default_rng(0)
    y = rng.normal(size=(20, 20))
    f = output_fidelity(y, 1.5 * y)  # right shape, 1.5x too large
    assert f["correlation"] == pytest.approx(1.0) and f["norm_ratio"] == pytest.approx(1.5)
    assert f["relative_error"] == pytest.approx(0.5)
    g = output_fidelity(y, -y, border=2)
    assert g["correlation"] == pytest.approx(-1.0) and g["relative_error"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="all zero"):
        output_fidelity(np.zeros((4, 4)), y[:4, :4])


def test_target_scale_option(tiny):
    x = torch.rand(1, 1, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    outs = {}
    for rule in ("forward", "none", "active"):
        inv = LayerwiseInverse.from_setting(tiny, "vdsr", max_iter=10, target_scale=rule)
        assert inv.target_scale == rule
        outs[rule] = invert_vdsr(tiny, x, inv)[0]
    assert LayerwiseInverse.from_setting(tiny, "vdsr").target_scale == "forward"  
    assert not torch.allclose(outs["forward"], outs["none"])
    with pytest.raises(ValueError, match="target_scale"):
        LayerwiseInverse.from_setting(tiny, "vdsr", target_scale="support")


def test_invert_chirp_bins_to_a_profile():
    from invnb.sr import FrequencyBins, attribution_ratio, chirp_profiles, invert_chirp

    torch.manual_seed(0)
    model = VDSR(depth=4, channels=6).eval()  # float32, like the pipeline's input
    r = invert_chirp(model, 2, size=64, inverse=LayerwiseInverse.from_setting(model, "vdsr", max_iter=5))
    assert r.x.shape == (64, 64) and r.name == "chirp64"
    prof = chirp_profiles(attribution_ratio(r.x_hat, r.x), 128.0, margin=2)
    back = FrequencyBins.from_dict(prof["radial"].to_dict())
    np.testing.assert_allclose(back.mean, prof["radial"].mean)
    assert np.nanmax(prof["radial"].mean) <= 1 + 1e-3  # an attenuation: |x_hat| <= |x|

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from invnb.plot import plot_band_retention, plot_chirp_grid

    fig = plot_chirp_grid({(2, "default"): r}, 128.0)
    assert len(fig.axes) == 5 and len(fig.axes[3].lines) == 4  # 4 panels + a colourbar; radial, x, y, Nyquist line
    assert fig.axes[4].get_label() == "<colorbar>" and fig.axes[4].get_ylabel() == "|x_hat| / |x|"
    # the stand-alone bar (for the bundled figure drawn before the grid had bars) shows the grid's scale
    from invnb.plot import plot_chirp_colour_scale

    grid_image = fig.axes[2].images[0]
    bar = plot_chirp_colour_scale("attribution").axes[0]
    from matplotlib.collections import QuadMesh

    bar_map = next(c for c in bar.collections if isinstance(c, QuadMesh))  # the bar's colour patches
    assert bar.get_xlabel() == "attribution"
    assert bar_map.get_cmap().name == grid_image.get_cmap().name
    assert bar_map.get_clim() == grid_image.get_clim() == (0.0, 1.0)
    ax = plot_band_retention({"a": np.linspace(1, 0, 64), "b": np.ones(64)})
    assert len(ax.lines) == 3
    plt.close("all")
