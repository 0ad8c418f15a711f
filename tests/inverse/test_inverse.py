import copy

import pytest
import torch
from torch import nn

from invnb import LayerwiseInverse, UnsupportedLayerError, attribution_map


def _assert_in_boxes(inv, x, res):
    stack = inv.stack
    acts = inv.record(x)  # the activations the boxes were built from (one image at a time on a CPU)
    f0 = res.features[0]
    assert torch.all(f0.abs() <= x.abs()) and torch.all(f0 * x >= 0), "input box |x| <= |x_l|, sign of x_l"
    for k in range(1, len(stack)):
        f, a = res.features[k], acts[k]
        assert f.shape == a.shape
        assert torch.all(f >= 0) and torch.all(f <= a.clamp(min=0)), f"layer {k} ({stack.names[k]})"


@pytest.mark.parametrize("solver,penalty", [("fista", "l1"), ("fista", "l2"), ("paper", "l2")])
def test_every_layer_in_its_box(tiny_vgg, tiny_batch, solver, penalty):
    inv = LayerwiseInverse(tiny_vgg, solver=solver, penalty=penalty, max_iter=200)
    res = inv.invert(tiny_batch)
    _assert_in_boxes(inv, tiny_batch, res)
    assert res.attribution.shape == (6, 16, 16)
    assert torch.all(res.attribution >= 0) and torch.all(res.attribution <= 1)
    # max-normalised per image; an image whose inverse failed has an all-zero map
    torch.testing.assert_close(res.attribution.flatten(1).amax(1), (~res.failed).float())
    assert [s.index for s in res.stats] == sorted((s.index for s in res.stats), reverse=True)


def test_invertible_layer_gives_its_input_back():
    torch.manual_seed(0)
    layer = nn.Linear(5, 5).double()
    with torch.no_grad():
        layer.weight.copy_(torch.eye(5, dtype=torch.float64) + 0.2 * torch.randn(5, 5, dtype=torch.float64))
    model = nn.Sequential(layer)
    x = torch.randn(3, 5, dtype=torch.float64)
    res = LayerwiseInverse(model, mask_weight=0.0, tol=1e-12, max_iter=5000).invert(x, target=model(x).detach())
    torch.testing.assert_close(res.input, x, atol=1e-5, rtol=1e-5)


def test_classes_default_to_prediction_and_explicit_targets(tiny_vgg, tiny_batch):
    inv = LayerwiseInverse(tiny_vgg, max_iter=50)
    res = inv.invert(tiny_batch[:2])
    assert torch.equal(res.classes, tiny_vgg(tiny_batch[:2]).argmax(1))
    assert torch.equal(res.features[-1], torch.nn.functional.one_hot(res.classes, 5).float())
    assert torch.equal(inv.invert(tiny_batch[:2], target=3).classes, torch.tensor([3, 3]))
    assert torch.equal(inv.invert(tiny_batch[:2], target=[1, 4]).classes, torch.tensor([1, 4]))


def test_batched_equals_one_at_a_time(tiny_vgg, tiny_batch):
    # float64: in float32 the batched convolution's rounding differs in the 7th digit,
    # enough to flip a backtracking decision.
    model, x = copy.deepcopy(tiny_vgg).double(), tiny_batch[:3].double()
    batched = LayerwiseInverse(model, max_iter=60).invert(x)
    single = LayerwiseInverse(model, max_iter=60, batch_size=1).invert(x)
    for a, b in zip(batched.features, single.features):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_keep_features_false_keeps_input_and_top_only(tiny_vgg, tiny_batch):
    full = LayerwiseInverse(tiny_vgg, max_iter=30, batch_size=2).invert(tiny_batch[:4])
    lean = LayerwiseInverse(tiny_vgg, max_iter=30, batch_size=2, keep_features=False).invert(tiny_batch[:4])
    assert all(f is None for f in lean.features[1:-1])
    torch.testing.assert_close(lean.input, full.input)
    torch.testing.assert_close(lean.features[-1], full.features[-1])


def test_regression_target_objective_mirrors_the_forward_pass():
    # A VDSR-like stack whose last conv has no ReLU: its output has negative values.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                          nn.ReLU(), nn.Conv2d(8, 1, 3, padding=1)).eval()
    x = torch.rand(2, 1, 12, 12)
    y = model(x).detach()
    assert (y < 0).any()

    def rel_err(relu_in_objective):
        inv = LayerwiseInverse(model, mask_weight=0.05, relu_in_objective=relu_in_objective)
        res = inv.invert(x, target=y)
        assert res.classes is None and res.attribution.shape == (2, 12, 12)
        return ((model(res.input) - y).norm() / y.norm()).item()

    assert rel_err("mirror") < rel_err("always")


def test_failed_images_are_flagged():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 16, 3))
    with torch.no_grad():
        model[0].bias.fill_(-100.0)  # every hidden activation is zero: nothing to invert into
    res = LayerwiseInverse(model, max_iter=20).invert(torch.rand(2, 1, 4, 4))
    assert res.failed.all()
    assert all(torch.equal(f, torch.zeros_like(f)) for f in res.features[:-1])


def test_no_gradients_or_hooks_left_behind(tiny_vgg, tiny_batch):
    LayerwiseInverse(tiny_vgg, max_iter=20).invert(tiny_batch[:2])
    assert all(p.grad is None for p in tiny_vgg.parameters())
    assert all(not m._forward_hooks and not m._backward_hooks for m in tiny_vgg.modules())


def test_bad_inputs_give_clear_errors(tiny_vgg, tiny_batch):
    inv = LayerwiseInverse(tiny_vgg, max_iter=5)
    with pytest.raises(ValueError, match="batch"):
        inv.invert(tiny_batch[0])
    with pytest.raises(ValueError, match="NaN"):
        inv.invert(torch.full((1, 3, 16, 16), float("nan")))
    with pytest.raises(TypeError, match="floating-point"):
        inv.invert(torch.zeros(1, 3, 16, 16, dtype=torch.long))
    with pytest.raises(ValueError, match="0..4"):
        inv.invert(tiny_batch[:2], target=7)
    with pytest.raises(ValueError, match="2 class targets for 3"):
        inv.invert(tiny_batch[:3], target=[1, 2])
    with pytest.raises(ValueError, match="output's shape"):
        inv.invert(tiny_batch[:2], target=torch.zeros(2, 4))
    with pytest.raises(ValueError, match="penalty"):
        LayerwiseInverse(tiny_vgg, penalty="l0")
    with pytest.raises(UnsupportedLayerError, match="Tanh"):
        LayerwiseInverse(nn.Sequential(nn.Linear(3, 3), nn.Tanh()))
    with pytest.raises(ValueError, match="attribution_map|shape"):
        attribution_map(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5))


def test_paper_setting():
    inv = LayerwiseInverse.paper(nn.Sequential(nn.Linear(3, 2)))
    assert (inv.mask_weight, inv.penalty, inv.solver, inv.max_iter, inv.batch_size) == (0.7, "l2", "paper", 3000, 1)
    vdsr = LayerwiseInverse.paper(nn.Sequential(nn.Linear(3, 2)), variant="vdsr")
    assert vdsr.mask_weight == 0.15 and vdsr.scale_bound and vdsr.relu_in_objective == "always"


def test_model_check_runs_again_after_the_weights_change(tiny_vgg, tiny_batch):
    # The stack holds copies of the layers: weights changed after construction
    # make it stale, and the (cached) consistency check must notice.
    inv = LayerwiseInverse(tiny_vgg, max_iter=5)
    inv.invert(tiny_batch)
    inv.invert(tiny_batch)  # cached: no error, same state
    with torch.no_grad():
        next(tiny_vgg.parameters()).mul_(1.5)
    with pytest.raises(ValueError, match="plain sequence"):
        inv.invert(tiny_batch)
