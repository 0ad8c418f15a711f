"""Tests of invnb.eval.tradeoff (kept inputs, trade-off rows, tables) and smoke tests of invnb.plot."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from conftest import tiny_cnn as conftest_tiny_cnn  # noqa: E402
from torch import nn  # noqa: E402

from invnb import plot  # noqa: E402
from invnb.eval import (  # noqa: E402
    deletion_curve,
    inverse_tradeoff,
    keep_soft,
    keep_top_fraction,
    kept_input_scores,
    map_tradeoff,
    read_table,
    reid_rates,
    write_table,
)


def tiny_cnn(seed=0, classes=5):
    return conftest_tiny_cnn(seed, classes, pool=nn.AdaptiveMaxPool2d)


def _images(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    sign = torch.where(torch.rand(n, 3, 8, 8, generator=g) < 0.5, -1.0, 1.0)
    return sign * (torch.rand(n, 3, 8, 8, generator=g) + 0.5)  # |x| in [0.5, 1.5]: no near-zero pixels


def test_keep_top_fraction_keeps_the_highest_pixels():
    x = _images(2)
    a = torch.rand(2, 8, 8)
    kept = keep_top_fraction(x, a, 0.25)
    on = (kept != 0).all(dim=1)  # (N, H, W) kept pixels
    assert (on.flatten(1).sum(1) == 16).all()
    for i in range(2):
        assert a[i][on[i]].min() > a[i][~on[i]].max()
        assert torch.equal(kept[i][:, on[i]], x[i][:, on[i]])
    assert torch.equal(keep_top_fraction(x, a, 1.0), x)
    assert (keep_top_fraction(x, a, 0.0) == 0).all()
    assert ((keep_top_fraction(x, torch.ones(2, 8, 8), 0.5) != 0).all(1).flatten(1).sum(1) == 32).all()
    with pytest.raises(ValueError, match="fraction"):
        keep_top_fraction(x, a, 1.5)


def test_keep_soft_scales_by_normalised_map():
    x = _images(2)
    a = torch.rand(2, 8, 8) * 3
    norm = a / a.flatten(1).amax(1)[:, None, None]
    assert torch.allclose(keep_soft(x, a, 1.0), x * norm[:, None])
    assert torch.allclose(keep_soft(x, a, 2.0), x * norm[:, None] ** 2)
    assert (keep_soft(x, torch.zeros(2, 8, 8)) == 0).all()
    with pytest.raises(ValueError, match="non-negative"):
        keep_soft(x, -a)


def test_amount_of_hard_masks_is_the_kept_fraction():
    model = tiny_cnn()
    x = _images(4)
    cls = model(x).argmax(1)
    a = torch.rand(4, 8, 8)
    for f in (0.0, 0.125, 0.5):
        s = kept_input_scores(model, keep_top_fraction(x, a, f), x, cls)
        assert torch.allclose(s["amount"], torch.full((4,), f), atol=1e-5)
    full = kept_input_scores(model, x, x, cls)
    assert full["top1"].all() and full["top5"].all()
    nan = kept_input_scores(model, torch.full_like(x, float("nan")), x, cls)
    assert not nan["top1"].any()


def test_map_tradeoff_rows():
    model = tiny_cnn()
    x = _images(4)
    a = torch.rand(4, 8, 8)
    rows = map_tradeoff(model, x, a, "random", fractions=(0.1, 1.0), exponents=(1.0,))
    assert [(r["mode"], r["param"]) for r in rows] == [("hard", 0.1), ("hard", 1.0), ("soft", 1.0)]
    assert rows[1]["reid_top1"] == 1.0  # the whole image keeps the prediction
    assert rows[0]["amount"] == pytest.approx(0.09375, abs=1e-5)  # round(0.1 * 64) = 6 pixels of 64
    assert all(0 <= r["reid_top1"] <= r["reid_top5"] <= 1 and r["n_images"] == 4 for r in rows)
    assert all(r["method"] == "random" for r in rows)


def test_inverse_tradeoff_rows():
    model = tiny_cnn()
    x = _images(2)
    rows = inverse_tradeoff(model, x, mask_weights=(0.1, 3.0), max_iter=20)
    assert [r["param"] for r in rows] == [0.1, 3.0]
    assert all(r["mode"] == "inverse" and r["param_name"] == "mask_weight" for r in rows)
    assert rows[1]["amount"] < rows[0]["amount"]  # a larger mask_weight keeps less


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_table_round_trip(tmp_path, suffix):
    rows = [{"method": "a", "mode": "hard", "param": 0.5, "amount": 0.25, "reid_top1": 1.0, "n_images": 3},
            {"method": "b", "mode": "inverse", "param": 2.0, "amount": 0.125, "reid_top1": 0.5, "n_images": 3,
             "n_failed": 1}]
    path = write_table(rows, tmp_path / "sub" / f"t{suffix}")
    back = read_table(path)
    assert back[0]["amount"] == 0.25 and back[1]["n_failed"] == 1 and back[1]["method"] == "b"
    with pytest.raises(ValueError, match="csv or .json"):
        write_table(rows, tmp_path / "t.txt")


# --------------------------------------------------------------------------- plot smoke tests (Agg)
def test_to_image():
    t = torch.rand(3, 5, 6)
    img = plot.to_image(t)
    assert img.shape == (5, 6, 3) and np.allclose(img, t.permute(1, 2, 0).numpy())
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.2, 0.2)
    norm = (t - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    assert np.allclose(plot.to_image(norm[None], mean, std), img, atol=1e-6)
    wide = plot.to_image(torch.tensor([[[-2.0, 0.0], [2.0, 1.0]]]))
    assert wide.shape == (2, 2) and wide.min() == 0 and wide.max() == 1
    with pytest.raises(ValueError, match="channels"):
        plot.to_image(torch.rand(4, 5, 5))


def test_plot_functions_return_matplotlib_objects():
    model = tiny_cnn()
    x = _images(2)
    a = torch.rand(2, 8, 8)
    ax = plot.show_attribution(a[0], image=x[0], colorbar=True, title="t")
    assert isinstance(ax, plt.Axes)
    fig = plot.attribution_grid(x, {"random": a, "twice": 2 * a})
    assert isinstance(fig, plt.Figure) and len(fig.axes) == 6 + 1  # 2 x 3 panels and the colour bar
    assert len(plot.attribution_grid(x, {"random": a, "twice": 2 * a}, colorbar=False).axes) == 6
    curve = deletion_curve(model, x, a, step=8)
    assert isinstance(plot.plot_curves({"random": curve}), plt.Axes)
    assert isinstance(plot.plot_curves(curve, image=1), plt.Axes)
    from invnb.inverse import LayerStack

    stack = LayerStack(model)
    acts = stack.record(x)
    assert isinstance(plot.plot_reid(reid_rates(stack, acts, acts[-1].argmax(1))), plt.Axes)
    rows = map_tradeoff(model, x, a, "random", fractions=(0.1, 0.5), exponents=(1.0,))
    ax = plot.plot_tradeoff(rows)
    assert isinstance(ax, plt.Axes) and len(ax.lines) == 2
    plt.close("all")


# --------------------------------------------------------------------------- the fair protocol
def test_tradeoff_auc_and_reid_at_amount_on_hand_made_curves():
    from invnb.eval import reid_at_amount, tradeoff_auc

    # (0,0)-(0.1,0.5)-(0.2,1.0), flat to 0.3: 0.025 + 0.075 + 0.1 = 0.2, / 0.3
    assert tradeoff_auc([0.2, 0.1], [1.0, 0.5]) == pytest.approx(2 / 3)
    # a point beyond the window: the curve is cut at 0.3 by interpolation (0.5 there)
    assert tradeoff_auc([0.6], [1.0]) == pytest.approx(0.25)
    assert tradeoff_auc([0.05, 0.6], [1.0, 1.0]) == pytest.approx((0.025 + 0.25) / 0.3)
    assert tradeoff_auc([0.1, float("nan")], [1.0, 0.3]) == pytest.approx((0.05 + 0.2) / 0.3)
    assert tradeoff_auc([0.1, 0.2], [0.5, 1.0], max_amount=0.2) == pytest.approx((0.025 + 0.075) / 0.2)
    assert reid_at_amount([0.1, 0.2], [0.5, 1.0], 0.15) == pytest.approx(0.75)
    assert reid_at_amount([0.1, 0.2], [0.5, 1.0], 0.05) == pytest.approx(0.25)
    assert reid_at_amount([0.1, 0.2], [0.5, 1.0], 0.9) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="as many"):
        tradeoff_auc([0.1], [0.5, 0.6])


def test_attribution_map_kinds_of_a_kept_input_by_hand():
    from invnb.inverse import attribution_map as kept_input_map

    x = torch.tensor([[[[1.0, 4.0]]], [[[2.0, -2.0]]]])  # (2, 1, 1, 2)
    xh = torch.tensor([[[[0.5, 2.0]]], [[[0.0, 0.0]]]])
    assert kept_input_map(xh, x, "ratio")[0, 0].tolist() == pytest.approx([1.0, 1.0], rel=1e-5)  # 0.5, 0.5
    assert kept_input_map(xh, x, "abs")[0, 0].tolist() == pytest.approx([0.25, 1.0])
    assert kept_input_map(xh, x, "abs_x")[0, 0].tolist() == pytest.approx([0.5 / 8, 1.0])
    assert kept_input_map(xh, x, "abs")[1].abs().sum() == 0  # an all-zero kept input stays zero
    with pytest.raises(ValueError, match="kind"):
        kept_input_map(xh, x, "bogus")


def test_keep_top_fraction_seeded_ties_are_shared_across_images_and_batches():
    x = torch.randn(3, 3, 8, 8)
    a = torch.ones(3, 8, 8)  # all ties
    kept = keep_top_fraction(x, a, 0.25, seed=5)
    on = kept.abs().sum(1) > 0
    assert (on.flatten(1).sum(1) == 16).all()
    assert torch.equal(on[0], on[1]) and torch.equal(on[1], on[2])  # the same tie order for every image
    assert torch.equal(keep_top_fraction(x[1:2], a[1:2], 0.25, seed=5), kept[1:2])
    assert not on[0].flatten()[:16].all()  # not the raster order
    assert (keep_top_fraction(x, a, 0.25).abs().sum(1) > 0)[0].flatten()[:16].all()  # seed None: raster


def test_tradeoff_comparison_figure():
    rows = [{"method": m, "mode": mode, "amount": am, "reid_top1": r}
            for m in ("a", "b") for mode in ("hard", "soft") for am, r in ((0.1, 0.2), (0.4, 0.9))]
    rows += [{"method": "a", "mode": "own", "amount": 0.2, "reid_top1": 1.0},
             {"method": "inv (sweep)", "mode": "inverse", "amount": 0.3, "reid_top1": 0.8},
             {"method": "object", "mode": "object", "amount": 0.15, "reid_top1": 1.0}]
    fig = plot.plot_tradeoff_comparison(rows)
    assert isinstance(fig, plt.Figure) and len(fig.axes) == 2
    # per panel: 2 curves, 1 own star, the sweep, the object
    assert [len(ax.lines) for ax in fig.axes] == [5, 5]
    colours = {ln.get_label(): ln.get_color() for ln in fig.axes[0].lines}
    assert colours["a"] != colours["b"]
    plt.close(fig)


def test_tradeoff_auc_difference_paired_bootstrap_matches_scipy():
    from scipy.stats import bootstrap

    from invnb.eval import tradeoff_auc, tradeoff_auc_difference

    rng = np.random.default_rng(3)
    n = 200
    am_a = np.array([[0.05], [0.1], [0.2]]) + 0.02 * rng.random((3, n))
    re_a = (rng.random((3, n)) < np.array([[0.3], [0.6], [0.9]])).astype(float)
    am_b = np.array([[0.04], [0.12], [0.25], [0.4]]) + 0.02 * rng.random((4, n))
    re_b = (rng.random((4, n)) < np.array([[0.2], [0.7], [0.8], [1.0]])).astype(float)
    res = tradeoff_auc_difference(am_a, re_a, am_b, re_b, n_boot=4000, seed=1)
    auc_a = tradeoff_auc(am_a.mean(1).tolist(), re_a.mean(1).tolist())
    auc_b = tradeoff_auc(am_b.mean(1).tolist(), re_b.mean(1).tolist())
    assert res["auc_a"] == pytest.approx(auc_a) and res["difference"] == pytest.approx(auc_a - auc_b)

    def stat(i):  # resampled image indices, the same for both methods
        return (tradeoff_auc(am_a[:, i].mean(1).tolist(), re_a[:, i].mean(1).tolist())
                - tradeoff_auc(am_b[:, i].mean(1).tolist(), re_b[:, i].mean(1).tolist()))

    ref = bootstrap((np.arange(n),), stat, vectorized=False, n_resamples=4000, method="percentile",
                    confidence_level=0.95, random_state=np.random.default_rng(2))
    # independent resampling streams: equal up to Monte Carlo error
    assert res["low"] == pytest.approx(ref.confidence_interval.low, abs=0.01)
    assert res["high"] == pytest.approx(ref.confidence_interval.high, abs=0.01)
    assert res["se"] == pytest.approx(ref.standard_error, rel=0.1)
    assert res["low"] < res["difference"] < res["high"]
    # a method against itself: no difference in any resample
    same = tradeoff_auc_difference(am_a, re_a, am_a, re_a, n_boot=50)
    assert same["difference"] == 0 and same["low"] == 0 and same["high"] == 0
    with pytest.raises(ValueError, match="same N images"):
        tradeoff_auc_difference(am_a, re_a, am_b[:, :10], re_b[:, :10])
