"""Tests of invnb.eval against cases computed by hand."""

import numpy as np
import pytest
import torch
from conftest import tiny_cnn
from torch import nn

from invnb.eval import (
    amount_of_activation,
    curve_auc,
    default_step,
    deletion_auc,
    deletion_curve,
    gaussian_blur,
    insertion_auc,
    insertion_curve,
    mass_in_mask,
    pointing_game,
    reid_rates,
    rise_blur_kernel,
)

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                 reason="no CUDA device"))]


class PixelSum(nn.Module):
    """Two logits: ``[sum(w * x) - bias, 0]``; class 0's logit is linear in the pixels."""

    def __init__(self, w: torch.Tensor, bias: float = 0.0):
        super().__init__()
        self.w = nn.Parameter(w, requires_grad=False)
        self.bias = bias
        self.eval()

    def forward(self, x):
        s = (x * self.w).flatten(1).sum(1) - self.bias
        return torch.stack([s, torch.zeros_like(s)], dim=1)


# --------------------------------------------------------------------------- AUC
@pytest.mark.parametrize(
    "curve, expected",
    [
        ([1.0, 0.75, 0.5, 0.25, 0.0], 0.5),  # straight line: half the square
        ([0.3, 0.3, 0.3], 0.3),  # constant
        ([1.0, 0.0, 0.0, 0.0, 0.0], 0.125),  # one trapezoid of 4: (1 + 0) / 2 / 4
        ([0.0, 1.0], 0.5),
        ([0.0, 1.0, 1.0], 0.75),  # (0.5 + 1) / 2
    ],
)
def test_curve_auc_known_curves(curve, expected):
    assert float(curve_auc(torch.tensor(curve))) == pytest.approx(expected)


def test_curve_auc_batched_and_error():
    c = torch.tensor([[1.0, 0.5, 0.0], [0.0, 0.0, 1.0]])
    assert torch.allclose(curve_auc(c), torch.tensor([0.5, 0.25]))
    with pytest.raises(ValueError, match="at least 2 points"):
        curve_auc(torch.tensor([1.0]))


def test_default_step_matches_rise_at_224():
    assert default_step(224, 224) == 224
    assert default_step(4, 4) == 1
    hw = 64 * 64
    steps = -(-hw // default_step(64, 64))
    assert steps <= 224


# --------------------------------------------------------------------------- closed-form curves
def _linear_setup(seed=0, size=4):
    g = torch.Generator().manual_seed(seed)
    w = torch.rand(1, 1, size, size, generator=g) + 0.1
    x = torch.rand(2, 1, size, size, generator=g) + 0.5
    contrib = (w * x)[:, 0]  # (N, H, W) per-pixel share of the logit
    return PixelSum(w), x, contrib


@pytest.mark.parametrize("step", [1, 3, 16])
def test_deletion_curve_linear_logit_closed_form(step):
    model, x, contrib = _linear_setup()
    curve = deletion_curve(model, x, contrib, target=lambda out: out[:, 0], step=step)
    n_pix = 16
    n_steps = -(-n_pix // step)
    for i in range(2):
        c = np.sort(contrib[i].flatten().numpy())[::-1]  # deleted first: largest contributions
        total = c.sum()
        expected = [total - c[: min(k * step, n_pix)].sum() for k in range(n_steps + 1)]
        np.testing.assert_allclose(curve.scores[i].numpy(), expected, rtol=1e-5, atol=1e-5)
        exp_auc = (sum(expected) - expected[0] / 2 - expected[-1] / 2) / n_steps
        assert float(curve.auc[i]) == pytest.approx(exp_auc, rel=1e-5)
    assert curve.fractions[0] == 0 and curve.fractions[-1] == 1
    assert curve.scores.shape == (2, n_steps + 1)
    assert curve.classes is None


def test_deletion_curve_softmax_closed_form():
    model, x, contrib = _linear_setup(seed=1)
    curve = deletion_curve(model, x, contrib, target=0, step=2)
    for i in range(2):
        c = np.sort(contrib[i].flatten().numpy().astype(np.float64))[::-1]
        remaining = c.sum() - np.concatenate([[0.0], np.cumsum(c)[1::2]])
        expected = 1.0 / (1.0 + np.exp(-remaining))  # softmax([s, 0])[0]
        np.testing.assert_allclose(curve.scores[i].numpy(), expected, rtol=1e-5)


def test_insertion_curve_closed_form_with_zero_substrate():
    model, x, contrib = _linear_setup(seed=2)
    curve = insertion_curve(model, x, contrib, target=lambda out: out[:, 0], step=4, substrate=torch.zeros(1))
    for i in range(2):
        c = np.sort(contrib[i].flatten().numpy())[::-1]
        expected = [c[: 4 * k].sum() for k in range(5)]  # inserted first: largest contributions
        np.testing.assert_allclose(curve.scores[i].numpy(), expected, rtol=1e-5, atol=1e-6)


def test_substrate_as_callable_and_constant():
    model, x, contrib = _linear_setup(seed=3)
    logit = lambda out: out[:, 0]  # noqa: E731
    a = deletion_curve(model, x, contrib, target=logit, step=16, substrate=lambda t: torch.full_like(t, 2.0))
    b = deletion_curve(model, x, contrib, target=logit, step=16, substrate=2.0)
    w = model.w
    assert torch.allclose(a.scores, b.scores)
    assert torch.allclose(a.scores[:, -1], (2.0 * w).sum().expand(2))


def test_first_and_last_points_are_intact_image_and_substrate():
    model = tiny_cnn()
    x = torch.randn(3, 3, 8, 8)
    attr = torch.rand(3, 8, 8)
    p = torch.softmax(model(x), 1)
    cls = p.argmax(1)
    d = deletion_curve(model, x, attr, step=5)
    assert torch.equal(d.classes, cls)
    assert torch.allclose(d.scores[:, 0], p[torch.arange(3), cls], atol=1e-6)
    p0 = torch.softmax(model(torch.zeros_like(x)), 1)[torch.arange(3), cls]
    assert torch.allclose(d.scores[:, -1], p0, atol=1e-6)
    ins = insertion_curve(model, x, attr, step=5)
    pb = torch.softmax(model(gaussian_blur(x)), 1)[torch.arange(3), cls]
    assert torch.allclose(ins.scores[:, 0], pb, atol=1e-6)
    assert torch.allclose(ins.scores[:, -1], p[torch.arange(3), cls], atol=1e-6)
    assert ((d.auc >= 0) & (d.auc <= 1)).all() and ((ins.auc >= 0) & (ins.auc <= 1)).all()


def test_oracle_beats_random_beats_anti_oracle():
    # Class 0 wins by a margin that the deleted pixels' contributions eat away:
    # deleting the largest contributions first is the fastest way down.
    g = torch.Generator().manual_seed(0)
    w = torch.rand(1, 1, 12, 12, generator=g) ** 3
    x = torch.rand(4, 1, 12, 12, generator=g) + 0.2
    model = PixelSum(w, bias=float((w * x).flatten(1).sum(1).mean()) / 2)
    contrib = (w * x)[:, 0]
    random_map = torch.rand(4, 12, 12, generator=g)
    auc = {
        name: deletion_auc(model, x, a, target=0, step=4)
        for name, a in (("oracle", contrib), ("random", random_map), ("anti", -contrib))
    }
    assert (auc["oracle"] < auc["random"]).all() and (auc["random"] < auc["anti"]).all()
    ins = {name: insertion_auc(model, x, a, target=0, step=4, substrate=0.0)
           for name, a in (("oracle", contrib), ("random", random_map), ("anti", -contrib))}
    assert (ins["oracle"] > ins["random"]).all() and (ins["random"] > ins["anti"]).all()


@pytest.mark.parametrize("device", DEVICES)
def test_batched_equals_unbatched(device):
    model = tiny_cnn().to(device)
    x = torch.randn(3, 3, 8, 8, device=device)
    attr = torch.rand(3, 8, 8, device=device)
    full = deletion_curve(model, x, attr, step=7)
    assert full.scores.device.type == device
    for bs in (1, 4, 1000):
        part = deletion_curve(model, x, attr, step=7, batch_size=bs)
        assert torch.allclose(full.scores, part.scores, atol=1e-6)
    one = torch.cat([insertion_auc(model, x[i:i + 1], attr[i:i + 1], step=7) for i in range(3)])
    assert torch.allclose(one, insertion_auc(model, x, attr, step=7, batch_size=2), atol=1e-6)


def test_ties_are_broken_in_raster_order():
    model, x, contrib = _linear_setup(seed=4)
    logit = lambda out: out[:, 0]  # noqa: E731
    curve = deletion_curve(model, x, torch.ones(2, 4, 4), target=logit, step=1)
    raster = contrib.flatten(1)
    expected = raster.sum(1, keepdim=True) - torch.cat([torch.zeros(2, 1), raster.cumsum(1)], 1)
    assert torch.allclose(curve.scores, expected, atol=1e-5)


def test_curve_input_errors():
    model = tiny_cnn()
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(ValueError, match="upsample"):
        deletion_curve(model, x, torch.rand(2, 4, 4))
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        deletion_curve(model, x, torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="NaN"):
        deletion_curve(model, x, torch.full((2, 8, 8), float("nan")))
    with pytest.raises(ValueError, match="step"):
        deletion_curve(model, x, torch.rand(2, 8, 8), step=0)
    with pytest.raises(ValueError, match="unsqueeze"):
        deletion_curve(model, x[0], torch.rand(8, 8))
    with pytest.raises(ValueError, match="broadcast"):
        deletion_curve(model, x, torch.rand(2, 8, 8), substrate=torch.zeros(5, 1, 1))
    with pytest.raises(ValueError, match="class indices"):
        deletion_curve(model, x, torch.rand(2, 8, 8), target=[1, 2, 3])


def test_training_mode_warns():
    model = tiny_cnn().train()
    with pytest.warns(UserWarning, match="eval"):
        deletion_auc(model, torch.randn(1, 3, 8, 8), torch.rand(1, 8, 8), step=32)


# --------------------------------------------------------------------------- blur substrate
def test_rise_kernel_is_reflect_folded_gaussian():
    # RISE smooths a delta inside an 11 x 11 window with scipy's reflecting
    # boundary: 1-D Gaussian taps at offsets -20..20 (truncate = 4 sigma),
    # normalised, each added to the window position it reflects onto.
    k, sigma = 11, 5.0
    offsets = np.arange(-20, 21)
    taps = np.exp(-0.5 * (offsets / sigma) ** 2)
    taps /= taps.sum()
    k1 = np.zeros(k)
    for off, t in zip(offsets, taps):
        p = k // 2 + off
        while not 0 <= p < k:
            p = -p - 1 if p < 0 else 2 * k - 1 - p
        k1[p] += t
    expected = np.outer(k1, k1)
    np.testing.assert_allclose(rise_blur_kernel(11, 5.0).numpy(), expected, rtol=1e-5, atol=1e-7)
    assert float(rise_blur_kernel().sum()) == pytest.approx(1.0, abs=1e-6)


def test_gaussian_blur_properties():
    x = torch.full((1, 3, 32, 32), 2.0)
    b = gaussian_blur(x)
    assert torch.allclose(b[..., 5:-5, 5:-5], x[..., 5:-5, 5:-5], atol=1e-5)  # kernel sums to 1
    assert (b[..., 0, 0] < 2.0).all()  # zero padding darkens the borders, as in RISE
    y = torch.zeros(1, 3, 32, 32)
    y[0, 1, 16, 16] = 1.0
    by = gaussian_blur(y)
    assert by[0, 0].abs().max() < 1e-7 and by[0, 2].abs().max() < 1e-7  # channels stay separate
    assert torch.allclose(by[0, 1, 11:22, 11:22], rise_blur_kernel().flip(0, 1))


# --------------------------------------------------------------------------- re-identification
class LogitStack:
    """A stand-in layer stack whose features already are logits."""

    def __init__(self, n_layers=2):
        self.layers = [nn.Identity() for _ in range(n_layers)]
        self.names = [f"layer{i}" for i in range(n_layers)]

    def forward_from(self, k, h):
        return h


def test_reid_rates_constructed_ranks():
    n_classes = 8
    classes = torch.tensor([0, 1, 2, 3])
    rank_of_class = [0, 2, 5, None]  # position of the true class in the sorted logits
    feats = torch.zeros(4, n_classes)
    for i, r in enumerate(rank_of_class):
        if r is None:
            feats[i] = float("nan")
            continue
        others = [c for c in range(n_classes) if c != classes[i]]
        order = others[:r] + [int(classes[i])] + others[r:]
        feats[i, order] = torch.arange(n_classes, 0, -1).float()
    res = reid_rates(LogitStack(), [feats, feats], classes, topk=(1, 5))
    assert res.layers == [0, 1] and res.names == ["layer0", "layer1"]
    assert res.hits[0, 0].tolist() == [True, False, False, False]
    assert res.hits[0, 1].tolist() == [True, True, False, False]
    assert res.rate(1).tolist() == [0.25, 0.25] and res.rate(5).tolist() == [0.5, 0.5]
    failed = torch.tensor([False, False, False, True])
    res = reid_rates(LogitStack(), [feats, feats], classes, layers=[1], topk=(1, 5), failed=failed)
    assert res.rate(1).tolist() == pytest.approx([1 / 3]) and res.rate(5).tolist() == pytest.approx([2 / 3])
    assert res.as_rows()[0]["top5"] == pytest.approx(2 / 3)
    with pytest.raises(KeyError):
        res.rate(3)
    # top-k beyond the number of classes counts every class
    assert reid_rates(LogitStack(), [feats[:3]], classes[:3], layers=[0], topk=(20,)).rate(20).tolist() == [1.0]


def test_reid_rates_of_forward_record_is_perfect():
    from invnb.inverse import LayerStack

    model = tiny_cnn()
    stack = LayerStack(model)
    x = torch.randn(4, 3, 8, 8)
    acts = stack.record(x)
    classes = acts[-1].argmax(1)
    res = reid_rates(stack, acts, classes, batch_size=3)
    assert res.layers == list(range(len(stack.layers)))
    assert (res.rates == 1).all()
    wrong = reid_rates(stack, acts, (classes + 1) % 5, topk=(1,))
    assert (wrong.rates == 0).all()


def test_reid_rates_errors():
    with pytest.raises(ValueError, match="no inverse feature"):
        reid_rates(LogitStack(), [torch.zeros(2, 3), None], torch.tensor([0, 1]), layers=[1])
    with pytest.raises(ValueError, match="topk"):
        reid_rates(LogitStack(), [torch.zeros(2, 3)], torch.tensor([0, 1]), topk=(0,))


# --------------------------------------------------------------------------- amount of activation
def test_amount_of_activation_by_hand():
    x = torch.ones(1, 1, 2, 2)
    x_hat = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    assert float(amount_of_activation(x_hat, x)) == pytest.approx(0.25, rel=1e-5)
    # per-channel minimum removed before the channel sum:
    # ch0 ratio [1, .5, .5, .5] - .5 = [.5, 0, 0, 0]; ch1 [0, 0, 0, 1];
    # sum [.5, 0, 0, 1] / max 1 -> mean over 4 pixels = 0.375
    x2 = torch.ones(1, 2, 2, 2)
    x2_hat = torch.tensor([[[[1.0, 0.5], [0.5, 0.5]], [[0.0, 0.0], [0.0, 1.0]]]])
    assert float(amount_of_activation(x2_hat, x2)) == pytest.approx(0.375, rel=1e-5)
    # sign and scale of x do not matter, only the ratio |x_hat| / |x|
    assert float(amount_of_activation(-3 * x2_hat, -3 * x2)) == pytest.approx(0.375, rel=1e-5)


def test_amount_of_activation_batch_and_edge_cases():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 5, 5, generator=g) + 0.5
    keep = torch.rand(3, 1, 5, 5, generator=g)
    one = torch.cat([amount_of_activation(x[i:i + 1] * keep[i:i + 1], x[i:i + 1]) for i in range(3)])
    both = amount_of_activation(x * keep, x)
    assert torch.allclose(one, both)
    assert ((both >= 0) & (both <= 1)).all()
    assert torch.equal(amount_of_activation(torch.zeros_like(x), x), torch.zeros(3))
    with pytest.raises(ValueError, match="same shape"):
        amount_of_activation(x[:2], x)


# --------------------------------------------------------------------------- localisation
def test_pointing_game_constructed_maps():
    masks = torch.zeros(4, 4, 4, dtype=torch.bool)
    masks[:, :2, :2] = True
    a = torch.zeros(4, 4, 4)
    a[0, 1, 1] = 5.0  # max inside
    a[1, 3, 3] = 5.0  # max outside
    a[2, 0, 0] = a[2, 3, 3] = 5.0  # two maxima, one inside
    a[3, 2, 2] = 5.0  # just outside the mask's corner
    assert pointing_game(a, masks).tolist() == [1.0, 0.0, 0.5, 0.0]
    assert pointing_game(a, masks, tolerance=1).tolist() == [1.0, 0.0, 0.5, 1.0]
    # a constant map scores the mask's area fraction
    assert pointing_game(torch.ones(1, 4, 4), masks[:1]).item() == pytest.approx(0.25)


def test_mass_in_mask_constructed_maps():
    masks = torch.tensor([[[1, 0], [0, 0]], [[1, 1], [0, 0]], [[1, 0], [0, 0]]])
    a = torch.tensor([[[2.0, 1.0], [1.0, 0.0]], [[-1.0, 1.0], [0.0, 2.0]], [[0.0, 0.0], [0.0, 0.0]]])
    assert mass_in_mask(a, masks).tolist() == pytest.approx([0.5, 0.5, 0.25])
    with pytest.raises(ValueError, match="masks"):
        mass_in_mask(a, masks[:, :1])


# --------------------------------------------------------------------------- the fair protocol: ties
def test_pointing_game_tie_tolerance_on_constructed_maps():
    from invnb.eval import POINTING_RTOL

    masks = torch.zeros(3, 4, 4, dtype=torch.bool)
    masks[:, :2, :2] = True  # 4 of 16 pixels
    a = torch.zeros(3, 4, 4)
    # image 0: strict max outside, three near-ties (within 1e-3) inside
    a[0, 3, 3] = 1.0
    a[0, 0, 0] = a[0, 0, 1] = a[0, 1, 0] = 0.9995
    # image 1: a clear peak inside, the runner-up 1% lower outside
    a[1, 0, 0] = 1.0
    a[1, 3, 3] = 0.99
    # image 2: all-zero map, every pixel ties
    strict = pointing_game(a, masks)
    tolerant = pointing_game(a, masks, rtol=POINTING_RTOL)
    assert strict.tolist() == pytest.approx([0.0, 1.0, 0.25])
    assert tolerant.tolist() == pytest.approx([0.75, 1.0, 0.25])
    # scale-free: multiplying a map changes nothing
    assert pointing_game(7 * a, masks, rtol=POINTING_RTOL).tolist() == pytest.approx(tolerant.tolist())
    with pytest.raises(ValueError, match="rtol"):
        pointing_game(a, masks, rtol=1.5)


def test_pixel_ranks_break_ties_by_the_seeded_keys_only():
    from invnb.eval import pixel_ranks, tie_keys

    a = torch.tensor([[[3.0, 1.0], [1.0, 2.0]]])
    raster = pixel_ranks(a)
    assert raster.tolist() == [[[0, 2, 3, 1]]]  # ties (the two 1s) in raster order
    ranks = pixel_ranks(a, 6, seed=3)
    assert ranks.shape == (6, 1, 4)
    assert (ranks[:, 0, 0] == 0).all() and (ranks[:, 0, 3] == 1).all()  # untied pixels keep their rank
    keys = tie_keys(4, 6, seed=3)
    for r in range(6):  # the tied pair follows the keys of its two pixels
        assert (ranks[r, 0, 1] < ranks[r, 0, 2]) == (keys[r, 1] < keys[r, 2])
    assert torch.equal(pixel_ranks(a, 6, seed=3), ranks)  # seeded: repeatable
    assert not torch.equal(tie_keys(100, 1, seed=0), tie_keys(100, 1, seed=1))
    with pytest.raises(ValueError, match="seed"):
        pixel_ranks(a, 2)


def test_tie_averaged_deletion_on_a_block_constant_map_matches_the_expectation():
    # Score = sum of x over 6 evidence pixels (a linear score through `target`),
    # x = 1 everywhere, deleted pixels become 0. Block A (value 2, 8 pixels) holds
    # 4 evidence pixels, block B (value 1, 8 pixels) holds 2. With step 4 the
    # expected remaining evidence after 0, 4, 8, 12, 16 deletions is
    # 6, 6 - 4*4/8, 2, 2 - 4*2/8, 0 = [6, 4, 2, 1, 0] (hypergeometric means).
    w = torch.zeros(1, 4, 4)
    evid = [(0, 0), (0, 1), (0, 2), (0, 3), (2, 0), (2, 1)]
    for i, j in evid:
        w[0, i, j] = 1.0
    model = PixelSum(w)
    x = torch.ones(1, 1, 4, 4)
    a = torch.ones(1, 4, 4)
    a[0, :2] = 2.0  # block A: rows 0-1 (evidence (0,0)..(0,3)); block B: rows 2-3 ((2,0), (2,1))
    score = lambda out: out[:, 0]  # noqa: E731
    mean = deletion_curve(model, x, a, target=score, step=4, tie_orders=400, seed=0).scores[0]
    assert mean.tolist() == pytest.approx([6.0, 4.0, 2.0, 1.0, 0.0], abs=0.2)
    # raster order (the old rule) deletes row 0 first: all 4 evidence pixels of A at once
    raster = deletion_curve(model, x, a, target=score, step=4).scores[0]
    assert raster.tolist() == pytest.approx([6.0, 2.0, 2.0, 0.0, 0.0])


def test_tie_averaged_curves_ignore_batching_and_image_order():
    model = tiny_cnn(seed=2)
    torch.manual_seed(0)
    x = torch.randn(5, 3, 8, 8)
    a = torch.randint(0, 3, (5, 8, 8)).float()  # heavy ties
    kw = dict(target=1, step=5, tie_orders=4, seed=7)
    full = deletion_curve(model, x, a, **kw).scores
    assert torch.allclose(deletion_curve(model, x, a, batch_size=2, **kw).scores, full, atol=1e-6)
    perm = torch.tensor([3, 0, 4, 1, 2])
    assert torch.allclose(deletion_curve(model, x[perm], a[perm], **kw).scores, full[perm], atol=1e-6)
    assert torch.allclose(insertion_curve(model, x, a, batch_size=3, **kw).scores,
                          insertion_curve(model, x, a, **kw).scores, atol=1e-6)
    # the seed matters on a tied map, and a tie-free map gives the plain curve whatever the seed
    other = deletion_curve(model, x, a, **{**kw, "seed": 8}).scores
    assert not torch.allclose(other, full, atol=1e-6)
    b = torch.rand(5, 8, 8)
    assert torch.allclose(deletion_curve(model, x, b, **kw).scores,
                          deletion_curve(model, x, b, target=1, step=5).scores, atol=1e-6)
