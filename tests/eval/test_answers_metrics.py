"""Answer-checking tests of invnb.eval and invnb.eval.tradeoff: values known by hand, and the
direction the trade-off must move in."""

import pytest
import torch
from conftest import tiny_cnn
from torch import nn

from invnb.eval import amount_of_activation, inverse_tradeoff

torch.set_num_threads(1)


def test_amount_of_activation_with_a_zero_pixel_in_the_input():
    """Half the pixels kept (ratio 1), half dropped (ratio 0): the amount is 1/2. A pixel where
    the input itself is 0 (and so is the kept input) has ratio 0/(0 + eps) = 0 and must not
    change that; without the eps it would be NaN and turn the score into 0."""
    x = torch.ones(1, 3, 4, 4)
    keep = torch.zeros(1, 1, 4, 4)
    keep[..., :, :2] = 1.0
    x_hat = x * keep
    assert float(amount_of_activation(x_hat, x)[0]) == pytest.approx(0.5, abs=1e-6)
    x[0, :, 1, 3] = 0.0  # a dropped pixel
    x_hat = x * keep
    assert float(amount_of_activation(x_hat, x)[0]) == pytest.approx(0.5, abs=1e-6)
    x[0, 0, 2, 0] = 0.0  # a kept pixel, one channel: ratio 0 in that channel there
    x_hat = x * keep
    # that pixel's channel sum is 2 of 3, the maximum stays 3: (7 * 3 + 2) / 3 / 16
    assert float(amount_of_activation(x_hat, x)[0]) == pytest.approx((7 * 3 + 2) / 3 / 16, abs=1e-6)


def test_amount_of_activation_subtracts_each_channel_minimum():
    """Ratio 0.5 everywhere in channel 0 plus 1 on one pixel of channel 1: after the channel
    minima are removed only that pixel is left, so the amount is 1/16 (not (16*0.5 + 1)/... )."""
    x = torch.full((1, 2, 4, 4), 2.0)
    x_hat = torch.zeros_like(x)
    x_hat[0, 0] = 1.0
    x_hat[0, 1, 0, 0] = 2.0
    assert float(amount_of_activation(x_hat, x)[0]) == pytest.approx(1 / 16, abs=1e-6)


def test_amount_of_activation_eps_is_the_papers():
    """The guard is the paper's 1e-6, which matters where the input is about that small: a kept
    pixel with |x| = 1e-6 has ratio 1e-6 / (1e-6 + 1e-6) = 1/2, not about 1. One channel, 2x2:
    ratios [1/(1 + 1e-6), 0, 1/2, 0], minimum 0, maximum 1/(1 + 1e-6), so the amount is
    (1 + (1 + 1e-6) / 2) / 4 = 0.375000125 (a much smaller eps would give about 1/2)."""
    x = torch.tensor([[[[1.0, 1.0], [1e-6, 1.0]]]], dtype=torch.float64)
    x_hat = torch.tensor([[[[1.0, 0.0], [1e-6, 0.0]]]], dtype=torch.float64)
    expected = (1 + (1 + 1e-6) / 2) / 4
    assert float(amount_of_activation(x_hat, x)[0]) == pytest.approx(expected, abs=1e-9)


def test_larger_mask_weight_keeps_less():
    """The trade-off moves one way: every step up in mask_weight lowers the amount of activation
    (measured on this tiny model: 0.66, 0.38, 0.077, 0.023); with no penalty every image is
    re-identified."""
    model = tiny_cnn(0, 5, pool=nn.AdaptiveMaxPool2d)
    g = torch.Generator().manual_seed(0)
    sign = torch.where(torch.rand(4, 3, 8, 8, generator=g) < 0.5, -1.0, 1.0)
    x = sign * (torch.rand(4, 3, 8, 8, generator=g) + 0.5)
    rows = inverse_tradeoff(model, x, mask_weights=(0.0, 0.3, 1.0, 3.0))
    amounts = [r["amount"] for r in rows]
    assert all(b < 0.8 * a for a, b in zip(amounts, amounts[1:])), amounts
    assert rows[0]["reid_top1"] == 1.0 and rows[0]["n_failed"] == 0


def test_localisation_accepts_numpy_and_channel_masks():
    """(N, 1, H, W) masks and numpy masks mean the same as (N, H, W) tensors."""
    from invnb.eval import mass_in_mask, pointing_game

    masks = torch.zeros(2, 4, 4, dtype=torch.bool)
    masks[:, :2, :2] = True
    a = torch.zeros(2, 4, 4)
    a[0, 1, 1] = 5.0
    a[1, 3, 3] = 5.0
    a[1, 0, 0] = 1.0
    for m in (masks, masks[:, None], masks.numpy(), masks[:, None].float()):
        assert pointing_game(a, m).tolist() == [1.0, 0.0]
        assert mass_in_mask(a, m).tolist() == pytest.approx([1.0, 1 / 6])


def test_mean_curve_averages_over_images():
    from invnb.eval import CausalCurve

    scores = torch.tensor([[1.0, 0.5, 0.0], [0.0, 0.5, 1.0]])
    c = CausalCurve(auc=torch.zeros(2), fractions=torch.tensor([0.0, 0.5, 1.0]), scores=scores, classes=None,
                    mode="deletion", step=1)
    torch.testing.assert_close(c.mean_curve(), torch.tensor([0.5, 0.5, 0.5]))


def test_the_benchmarks_pointing_tie_tolerance_is_a_tenth_of_a_percent():
    """POINTING_RTOL is documented as 0.1%: a pixel 0.05% below the maximum ties with it (half
    the tied pixels inside the mask: 0.5), one 0.15% below does not (the maximum is outside: 0)."""
    from invnb.eval import POINTING_RTOL, pointing_game

    a = torch.zeros(2, 4, 4)
    a[:, 0, 0] = 1.0  # the maximum, outside the mask
    a[0, 3, 3] = 1.0 - 5e-4
    a[1, 3, 3] = 1.0 - 1.5e-3
    m = torch.zeros(2, 4, 4, dtype=torch.bool)
    m[:, 3, 3] = True
    got = pointing_game(a.double(), m, rtol=POINTING_RTOL)
    assert got.tolist() == pytest.approx([0.5, 0.0])


def test_pointing_game_scores_maps_in_their_own_precision_and_with_grad():
    """A float64 map whose maximum exceeds a pixel outside the mask by 1e-12 (below float32
    resolution) is a clean hit, not a tie; a map that still requires grad is scored as is, and a
    numpy map gives the same answer."""
    from invnb.eval import pointing_game

    a = torch.zeros(1, 4, 4, dtype=torch.float64)
    a[0, 0, 0] = 1.0
    a[0, 3, 3] = 1.0 + 1e-12
    m = torch.zeros(1, 4, 4, dtype=torch.bool)
    m[0, 3, 3] = True
    assert pointing_game(a.clone().requires_grad_(True), m).tolist() == pytest.approx([1.0])
    assert pointing_game(a.numpy(), m.numpy()).tolist() == pytest.approx([1.0])
    assert pointing_game(a.float(), m).tolist() == pytest.approx([0.5])  # in float32 they tie


def test_rise_kernel_is_a_reflected_gaussian_centred_in_its_window():
    """RISE's 11x11, sigma 5 kernel from its recipe written out: a unit delta at the centre (5, 5)
    blurred by scipy's sampled Gaussian (radius 4 sigma = 20, normalised) with half-sample
    reflection, which is separable and per axis folds the taps at d = i - 5 and at the mirror
    images of the centre (-6 and 16, period 22) back into the window."""
    import math

    from invnb.eval import rise_blur_kernel

    sigma, radius = 5.0, 20
    w = {d: math.exp(-d * d / (2 * sigma**2)) for d in range(-radius, radius + 1)}
    total = sum(w.values())
    centres = [c + 22 * k for k in range(-3, 4) for c in (5, -6)]
    g = torch.tensor([sum(w.get(i - c, 0.0) for c in centres) / total for i in range(11)], dtype=torch.float64)
    expected = torch.outer(g, g)
    got = rise_blur_kernel()
    assert got.shape == (11, 11)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-7)
    assert float(got.sum()) == pytest.approx(1.0, abs=1e-5)


def test_causal_metrics_print_no_progress_bar_by_default(capfd):
    """Library calls are quiet unless progress=True is asked for (a notebook loop over images
    would otherwise print one bar per call)."""
    from invnb.eval import deletion_auc, deletion_curve, insertion_auc, insertion_curve

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 2)).eval()
    x, a = torch.rand(2, 3, 4, 4), torch.rand(2, 4, 4)
    capfd.readouterr()
    for f in (deletion_curve, insertion_curve, deletion_auc, insertion_auc):
        f(model, x, a)
    assert capfd.readouterr().err == ""
    deletion_curve(model, x, a, progress=True)
    assert "deletion" in capfd.readouterr().err  # the bar does show when asked for


def test_mass_in_mask_by_hand_for_a_small_total_and_a_zero_map():
    """|a| = 0.2 inside and 0.2 outside: 0.2 / 0.4 = 0.5 (the total is below 1 on purpose); an
    all-zero map is uniform: the mask's area fraction, 1/4."""
    from invnb.eval import mass_in_mask

    a = torch.tensor([[[0.2, -0.2], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    m = torch.tensor([[[True, False], [False, False]], [[True, False], [False, False]]])
    assert mass_in_mask(a, m).tolist() == pytest.approx([0.5, 0.25], rel=1e-6)
    assert mass_in_mask(a * 1e-3, m).tolist() == pytest.approx([0.5, 0.25], rel=1e-5)
