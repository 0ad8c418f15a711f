"""mask_weight="auto", the dilated target mask and the attribution kinds (answers, not only shapes)."""


import pytest
import torch
from torch import nn

from invnb import LayerwiseInverse, attribution_map
from invnb.eval import amount_of_activation
from invnb.inverse.targets import target_mask

WEIGHTS = (0.3, 0.7, 1.0, 1.5)




@pytest.fixture(scope="module")
def fixed(model64, x64):
    """One fixed-weight run per candidate."""
    return {w: LayerwiseInverse(model64, mask_weight=w, max_iter=80).invert(x64) for w in WEIGHTS}


@pytest.fixture(scope="module")
def auto(model64, x64):
    return LayerwiseInverse(model64, mask_weight="auto", auto_weights=WEIGHTS, max_iter=80).invert(x64)


def _keeps(model, res):
    """The model gives the class on the inverse input (zero where the inverse vanished:
    the default ``auto_empty=True`` counts that too)."""
    with torch.no_grad():
        return model(res.input).argmax(1) == res.classes


def test_larger_weight_keeps_less(fixed, x64):
    amounts = [amount_of_activation(fixed[w].input, x64).mean().item() for w in WEIGHTS]
    assert all(a > b for a, b in zip(amounts, amounts[1:])), amounts
    l1 = [fixed[w].input.abs().sum().item() for w in WEIGHTS]
    assert all(a > b for a, b in zip(l1, l1[1:])), l1


def test_auto_picks_the_largest_candidate_that_keeps_the_class(model64, fixed, auto):
    keeps = torch.stack([_keeps(model64, fixed[w]) for w in WEIGHTS], dim=1)  # (N, K)
    assert auto.mask_weight.shape == (6,) and auto.kept_class.shape == (6,)
    for i in range(6):
        ok = [w for w, k in zip(WEIGHTS, keeps[i]) if k]
        expected = max(ok) if ok else min(WEIGHTS)
        assert auto.mask_weight[i].item() == pytest.approx(expected)
        assert bool(auto.kept_class[i]) == bool(ok)
        # the image's inverse is the fixed-weight inverse at the chosen weight
        torch.testing.assert_close(auto.input[i], fixed[expected].input[i], rtol=1e-7, atol=1e-9)
    # the choice differs between images here, so it is per image
    assert len(set(auto.mask_weight.tolist())) > 1
    # what is flagged as kept is re-identified, and the rest is not
    assert torch.equal(auto.kept_class, _keeps(model64, auto))


def test_auto_does_not_depend_on_the_batch(model64, x64, auto):
    inv = LayerwiseInverse(model64, mask_weight="auto", auto_weights=WEIGHTS, max_iter=80, batch_size=1)
    single = inv.invert(x64)
    torch.testing.assert_close(single.mask_weight, auto.mask_weight)
    torch.testing.assert_close(single.input, auto.input, rtol=1e-7, atol=1e-9)
    perm = torch.tensor([5, 2, 0, 4, 1, 3])
    shuffled = LayerwiseInverse(model64, mask_weight="auto", auto_weights=WEIGHTS, max_iter=80).invert(x64[perm])
    torch.testing.assert_close(shuffled.mask_weight, auto.mask_weight[perm])
    torch.testing.assert_close(shuffled.attribution, auto.attribution[perm], rtol=1e-7, atol=1e-9)


def test_no_candidate_keeps_the_class_gives_the_smallest_and_flags_it(model64, x64):
    res = LayerwiseInverse(model64, mask_weight="auto", auto_weights=(1e4, 1e6), auto_empty=False,
                           max_iter=30).invert(x64)
    assert not res.kept_class.any()
    assert torch.all(res.mask_weight == 1e4)


def test_auto_refuses_output_targets_and_bad_options(tiny_vgg, tiny_batch):
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Conv2d(2, 1, 3, padding=1))
    x = torch.rand(1, 1, 8, 8)
    with pytest.raises(ValueError, match="class targets"):
        LayerwiseInverse(model).invert(x, target=model(x).detach())
    for bad in (dict(mask_weight="max"), dict(auto_weights=()), dict(auto_weights=(1, -1)),
                dict(mask_dilation=2), dict(mask_dilation=0), dict(attribution="grad")):
        with pytest.raises(ValueError):
            LayerwiseInverse(tiny_vgg, **bad)


def test_fixed_weight_reports_it(tiny_vgg, tiny_batch):
    res = LayerwiseInverse(tiny_vgg, mask_weight=0.7, max_iter=10).invert(tiny_batch[:2])
    assert torch.all(res.mask_weight == 0.7) and res.kept_class is None


def test_dilated_mask_on_an_unpooled_target():
    # a 2x2-pooled object (value 1 on a 4x4 block of the pooled map) put back at the
    # switches: the target is 1 at one position of each 2x2 window on an 8x8 object
    pooled = torch.zeros(1, 1, 8, 8)
    pooled[..., 2:6, 2:6] = 1.0
    idx = torch.zeros(1, 1, 8, 8, dtype=torch.long)
    for i in range(8):
        for j in range(8):
            idx[..., i, j] = (2 * i + 1) * 16 + 2 * j  # the lower-left of each window
    t = torch.zeros(1, 1, 256).scatter_(2, idx.flatten(2), pooled.flatten(2)).reshape(1, 1, 16, 16)
    obj = torch.zeros(16, 16, dtype=torch.bool)
    obj[4:12, 4:12] = True
    plain = target_mask(t, (16, 16))[0, 0]
    dilated = target_mask(t, (16, 16), dilation=3)[0, 0]
    # plain: 0 at the 16 switches, 1 on the other 48 object pixels
    assert (plain[obj] == 0).sum() == 16 and (plain[obj] == 1).sum() == 48
    # dilated: 0 on the whole object; 1 away from it (beyond the filter's reach)
    assert torch.all(dilated[obj] == 0)
    far = torch.ones(16, 16, dtype=torch.bool)
    far[3:13, 3:13] = False
    assert torch.all(dilated[far] == 1)


def test_dilation_applies_only_below_an_unpooling():
    # No max pool (a VDSR-like stack): mask_dilation changes nothing.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 1, 3, padding=1)).eval()
    x = torch.rand(2, 1, 10, 10)
    y = model(x).detach()
    a = LayerwiseInverse(model, mask_weight=0.3, mask_dilation=1).invert(x, target=y)
    b = LayerwiseInverse(model, mask_weight=0.3, mask_dilation=5).invert(x, target=y)
    for fa, fb in zip(a.features, b.features):
        assert torch.equal(fa, fb)


def test_dilation_changes_the_inverse_below_a_max_pool(tiny_vgg, tiny_batch):
    a = LayerwiseInverse(tiny_vgg, mask_weight=1.0, mask_dilation=1, max_iter=40).invert(tiny_batch[:3])
    b = LayerwiseInverse(tiny_vgg, mask_weight=1.0, mask_dilation=3, max_iter=40).invert(tiny_batch[:3])
    assert (a.input - b.input).abs().max() > 1e-4


def test_attribution_kinds_on_known_values():
    x = torch.tensor([[[[1.0, -2.0], [0.5, 4.0]]]])
    x_hat = torch.tensor([[[[0.5, -2.0], [0.0, 1.0]]]])
    ratio = torch.tensor([0.5, 1.0, 0.0, 0.25]) / 1.0
    absx = torch.tensor([0.5, 2.0, 0.0, 1.0]) / 2.0
    prod = torch.tensor([0.5, 4.0, 0.0, 4.0]) / 4.0
    for kind, want in (("ratio", ratio), ("abs", absx), ("abs_x", prod)):
        got = attribution_map(x_hat, x, kind).flatten()
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    # channels add up before normalising
    x2, xh2 = torch.cat([x, x], dim=1), torch.cat([x_hat, torch.zeros_like(x_hat)], dim=1)
    torch.testing.assert_close(attribution_map(xh2, x2, "abs").flatten(), absx)
    with pytest.raises(ValueError, match="kind"):
        attribution_map(x_hat, x, "grad")


def test_result_uses_the_chosen_attribution(tiny_vgg, tiny_batch):
    res = LayerwiseInverse(tiny_vgg, mask_weight=0.5, attribution="abs", map_sigma=0,
                           map_fill_sigma=0, map_clip=1, max_iter=20).invert(tiny_batch[:2])
    torch.testing.assert_close(res.attribution, attribution_map(res.input, tiny_batch[:2], "abs"))


def test_paper_setting_keeps_the_original_mask_and_map():
    inv = LayerwiseInverse.paper(nn.Sequential(nn.Linear(3, 2)))
    assert inv.mask_dilation == 1 and inv.attribution == "ratio" and inv.mask_weight == 0.7


def test_auto_empty_counts_a_vanished_inverse_only_if_the_class_needs_nothing(model64, x64):
    # at these weights every inverse vanishes: its input is zero, and it keeps the class
    # exactly where the model gives that class on a zero input
    res = LayerwiseInverse(model64, mask_weight="auto", auto_weights=(1e4, 1e6), auto_empty=True,
                           max_iter=30).invert(x64)
    assert res.failed.all()
    with torch.no_grad():
        blank = model64(torch.zeros_like(x64)).argmax(1) == res.classes
    assert blank.any() and not blank.all()  # both cases occur on this batch
    assert torch.equal(res.kept_class, blank)
    torch.testing.assert_close(res.mask_weight, torch.where(blank, 1e6, 1e4).double())
