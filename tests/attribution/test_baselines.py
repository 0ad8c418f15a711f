"""Tests of invnb.attribution: one call shape, hand-checked maps, no side effects."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from invnb.attribution import GradCam, Rise, available_methods, make_method

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                 reason="no CUDA device"))]

# Small settings so every method runs in well under a second on a tiny model.
FAST = {
    "rise": {"n_masks": 64, "grid": 3, "batch_size": 16},
    "integrated_gradients": {"n_steps": 8},
    "inverse": {"max_iter": 5},
    "inverse_paper": {"max_iter": 5},
    "extremal_perturbation": {"steps": 5},
}


def tiny_cnn(seed=0, classes=5):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(2),
        nn.Flatten(), nn.Linear(24, classes),
    ).eval()


def linear_model(c=3, h=6, w=6, classes=4, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, classes)).eval()


def _hooks(model):
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        + len(getattr(m, "_backward_pre_hooks", {}))
        for m in model.modules()
    )


@pytest.mark.parametrize("name", available_methods())
def test_every_method_shape_and_no_side_effects(name):
    model = tiny_cnn()
    before = copy.deepcopy(model.state_dict())
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    x = torch.randn(3, 3, 8, 8)
    method = make_method(name, model, **FAST.get(name, {}))
    a = method.attribute(x, target=None)
    assert a.shape == (3, 8, 8) and a.dtype == torch.float32
    assert torch.isfinite(a).all() and (a >= 0).all()
    assert not a.requires_grad
    # nothing left behind on the caller's model or input
    assert _hooks(model) == 0
    assert all(p.grad is None for p in model.parameters())
    assert x.grad is None and not x.requires_grad
    assert not model.training
    assert all(r.inplace for r in relus) and [m for m in model.modules() if isinstance(m, nn.ReLU)] == relus
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    # the common target forms agree
    cls = model(x).argmax(1)
    assert torch.allclose(make_method(name, model, **FAST.get(name, {})).attribute(x, target=cls), a, atol=1e-5)


@pytest.mark.parametrize("name", ["saliency", "input_x_gradient", "integrated_gradients", "guided_backprop",
                                  "grad_cam", "occlusion", "rise", "sobel"])
@pytest.mark.parametrize("device", DEVICES)
def test_batched_equals_unbatched(name, device):
    model = tiny_cnn().to(device)
    x = torch.randn(5, 3, 8, 8, device=device)
    kw = FAST.get(name, {})
    full = make_method(name, model, **{**kw, "batch_size": None if name != "rise" else 64}).attribute(x, 1)
    part = make_method(name, model, **{**kw, "batch_size": 2}).attribute(x, 1)
    assert full.device.type == device
    assert torch.allclose(full, part, atol=1e-5, rtol=1e-4)


def test_gradient_methods_on_a_linear_model_by_hand():
    model = linear_model()
    x = torch.randn(2, 3, 6, 6)
    target = torch.tensor([1, 3])
    w = model[1].weight.detach()[target].reshape(2, 3, 6, 6)
    sal = make_method("saliency", model).attribute(x, target)
    assert torch.allclose(sal, w.abs().sum(1), atol=1e-6)
    ixg = make_method("input_x_gradient", model).attribute(x, target)
    assert torch.allclose(ixg, (x * w).abs().sum(1), atol=1e-6)
    # the gradient is constant, so the path integral is exact: x * w
    ig = make_method("integrated_gradients", model, n_steps=4).attribute(x, target)
    assert torch.allclose(ig, (x * w).abs().sum(1), atol=1e-5)


class _GuidedRelu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, t):
        ctx.save_for_backward(t)
        return t.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        (t,) = ctx.saved_tensors
        return g * (t > 0) * (g > 0)


class _GuidedReluModule(nn.Module):
    def forward(self, t):
        return _GuidedRelu.apply(t)


def test_guided_backprop_matches_hand_rule_with_shared_inplace_relu():
    torch.manual_seed(0)
    shared = nn.ReLU(inplace=True)  # one module registered in two places
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), shared, nn.Conv2d(4, 4, 3, padding=1), shared,
        nn.Flatten(), nn.Linear(4 * 36, 3),
    ).eval()
    guided = copy.deepcopy(model)
    guided[1], guided[3] = _GuidedReluModule(), _GuidedReluModule()
    x = torch.randn(2, 3, 6, 6, requires_grad=True)
    out = guided(x)
    (grad,) = torch.autograd.grad(out[[0, 1], [2, 0]].sum(), x)
    a = make_method("guided_backprop", model).attribute(x.detach(), torch.tensor([2, 0]))
    assert torch.allclose(a, grad.abs().sum(1), atol=1e-6)
    assert model[1] is model[3] and model[1].inplace  # the caller's model is untouched


class _Reuse(nn.Module):
    """One ReLU module called twice in forward (as torchvision's residual blocks do)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(3 * 16, 2)

    def forward(self, x):
        return self.fc(self.relu(self.conv(self.relu(x))).flatten(1))


def test_guided_backprop_gives_each_use_of_a_reused_relu_the_guided_rule():
    torch.manual_seed(0)
    model = _Reuse().eval()
    x = torch.randn(2, 3, 4, 4)
    guided = copy.deepcopy(model)
    guided.relu = _GuidedReluModule()
    inp = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(guided(inp)[[0, 1], [1, 0]].sum(), inp)
    a = make_method("guided_backprop", model).attribute(x, torch.tensor([1, 0]))
    assert torch.allclose(a, grad.abs().sum(1), atol=1e-6)
    assert isinstance(model.relu, nn.ReLU)  # the caller's model is untouched


def test_guided_backprop_rejects_a_reused_relu_it_cannot_trace():
    class Untraceable(_Reuse):
        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
                x = x * 1.0
            return super().forward(x)

    with pytest.raises(ValueError, match="more than once.*cannot be traced"):
        make_method("guided_backprop", Untraceable().eval()).attribute(torch.randn(1, 3, 4, 4))


def test_grad_cam_matches_hand_computation():
    model = tiny_cnn()
    method = GradCam(model)
    assert method.layer == "4"  # the ReLU after the last Conv2d
    x = torch.randn(3, 3, 8, 8)
    cls = torch.tensor([0, 2, 4])
    feats = model[:5](x).detach().requires_grad_(True)  # rectified last conv maps A^k
    logits = model[5:](feats)
    (grad,) = torch.autograd.grad(logits[torch.arange(3), cls].sum(), feats)
    alpha = grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((alpha * feats).sum(1, keepdim=True))
    expected = F.interpolate(cam, size=(8, 8), mode="bilinear", align_corners=False)[:, 0]
    assert torch.allclose(method.attribute(x, cls), expected, atol=1e-6)
    assert GradCam(model, layer="3").layer == "3"
    with pytest.raises(ValueError, match="no module named"):
        GradCam(model, layer="nope")


class RegionLogit(nn.Module):
    """Class 0 logit: 10 x mean of the top-left 4 x 4 pixels; class 1: 0."""

    def forward(self, x):
        s = 10 * x[:, :, :4, :4].mean(dim=(1, 2, 3))
        return torch.stack([s, torch.zeros_like(s)], 1)


def test_occlusion_is_zero_far_from_the_evidence():
    x = torch.rand(2, 3, 12, 12) + 0.5
    a = make_method("occlusion", RegionLogit().eval(), window=2, stride=1).attribute(x, 0)
    assert (a[:, :4, :4] > 0).all()
    # zero up to float rounding (logits of differently batched, identical pixels)
    assert a[:, 6:, :].abs().max() < 1e-5 and a[:, :, 6:].abs().max() < 1e-5


def test_rise_finds_the_evidence_and_is_seeded():
    x = torch.rand(2, 3, 16, 16) + 0.5
    model = RegionLogit().eval()
    a = Rise(model, n_masks=300, grid=4, seed=1, batch_size=50).attribute(x, 0)
    inside = a[:, :4, :4].mean(dim=(1, 2))
    outside = a[:, 8:, 8:].mean(dim=(1, 2))
    assert (inside > outside).all()
    b = Rise(model, n_masks=300, grid=4, seed=1, batch_size=7).attribute(x, 0)
    c = Rise(model, n_masks=300, grid=4, seed=2, batch_size=50).attribute(x, 0)
    assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(a, c, atol=1e-3)
    m = Rise(model, n_masks=10, grid=4).masks(16, 16)
    assert m.shape == (10, 1, 16, 16) and m.min() >= 0 and m.max() <= 1


def test_trivial_baselines():
    x = torch.zeros(2, 3, 8, 8)
    x[..., 4:] = 1.0  # a vertical edge between columns 3 and 4
    edges = make_method("sobel", None).attribute(x)
    assert (edges[:, :, [3, 4]] > 1).all()
    # flat regions: zero up to float rounding (a constant 0.7 gives ~2e-7 on some CPUs, exactly 0 on others)
    assert edges[:, :, :2].max() < 1e-5 and edges[:, :, 6:].max() < 1e-5
    assert make_method("sobel", None).attribute(torch.full((1, 3, 5, 5), 0.7)).max() < 1e-5
    assert (make_method("uniform", None).attribute(x) == 1).all()
    r1 = make_method("random", None, seed=3).attribute(x)
    r2 = make_method("random", None, seed=3).attribute(x)
    assert torch.equal(r1, r2) and r1.std() > 0.1


def test_make_method_errors():
    with pytest.raises(ValueError, match="unknown method 'nope'.*saliency"):
        make_method("nope", tiny_cnn())
    with pytest.raises(ValueError, match="batch_size"):
        make_method("saliency", tiny_cnn(), batch_size=0)
    with pytest.raises(ValueError, match="no Conv2d"):
        make_method("grad_cam", linear_model())


class SquareEvidence(nn.Module):
    """Two logits: ``[20 * mean of x over a square - 5, 0]``: the class lives in the square."""

    def __init__(self, top=8, left=16, side=8):
        super().__init__()
        self.sl = (slice(top, top + side), slice(left, left + side))
        self.eval()

    def forward(self, x):
        s = 20 * x[:, :, self.sl[0], self.sl[1]].mean(dim=(1, 2, 3)) - 5
        return torch.stack([s, torch.zeros_like(s)], dim=1)


def test_extremal_perturbation_finds_a_planted_square_at_the_requested_area():
    from invnb.attribution import ExtremalPerturbation

    model = SquareEvidence()
    x = torch.ones(2, 3, 32, 32)
    square = torch.zeros(32, 32, dtype=torch.bool)
    square[8:16, 16:24] = True
    area = float(square.float().mean())  # 64 / 1024
    ep = ExtremalPerturbation(model, areas=(area, 0.25), steps=150, grid=8)
    res = ep.explain_masks(x, target=0)
    masks = res["masks"]
    assert masks.shape == (2, 2, 32, 32)
    # the mask of the object's own area lies on the square and has that area
    inside = (masks[:, 0] * square).flatten(1).sum(1) / masks[:, 0].flatten(1).sum(1)
    assert (inside > 0.7).all()
    assert masks[:, 0].mean(dim=(1, 2)).sub(area).abs().max() < 0.02
    assert masks[:, 1].mean(dim=(1, 2)).sub(0.25).abs().max() < 0.03
    # the map ranks the square's core first (the smooth masks blur its edges); the smallest area keeps the class
    top = res["attribution"].flatten(1).topk(int(square.sum()) // 2, dim=1).indices
    assert square.flatten()[top].float().mean() > 0.8
    assert res["preserved"][:, 0].all() and torch.allclose(res["area"], torch.full((2,), area))
    assert torch.allclose(res["kept"], x * masks[:, 0:1])
    # deterministic and independent of batching
    again = ExtremalPerturbation(model, areas=(area, 0.25), steps=150, grid=8, batch_size=1).attribute(x, 0)
    assert torch.allclose(again, res["attribution"], atol=1e-4)
    assert "extremal_perturbation" in available_methods()
    with pytest.raises(ValueError, match="areas"):
        ExtremalPerturbation(model, areas=(0.0,))
