"""Answer-checking tests of invnb.inverse: the problem each layer hands to the solver (mask,
penalty weight, box) against values computed here by hand, unpooling through overlapping
windows, and behaviours the options promise (penalty_scale="forward": a layer's gain does
not matter; the spatial mask keeps what the target activates)."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import invnb.inverse.engine as inverse_mod
from invnb import LayerwiseInverse
from invnb.inverse.targets import unpool

torch.set_num_threads(1)


def _spy(monkeypatch, name="solve_fista"):
    """Record every LayerProblem given to the solver `name`, top layer first."""
    seen = []
    real = getattr(inverse_mod, name)

    def spy(problem, **kw):
        seen.append(problem)
        return real(problem, **kw)

    monkeypatch.setattr(inverse_mod, name, spy)
    return seen


def _conv_relu_conv(seed=0, gain=1.0):
    """conv(1->3) - ReLU - conv(3->1), float64; `gain` multiplies the first conv and divides
    the second, which leaves the network's function unchanged (ReLU is positively homogeneous)."""
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 1, 3, padding=1)).double().eval()
    with torch.no_grad():
        m[0].weight.mul_(gain)
        m[0].bias.mul_(gain)
        m[2].weight.div_(gain)
    return m


def _pos_image(n=2, h=8, w=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, h, w, generator=g, dtype=torch.float64) + 0.5


# --------------------------------------------------------------------------- unpooling
def test_unpool_adds_targets_of_overlapping_windows():
    """3x3 windows at stride 1 over a 5x5 map whose maximum is the centre: all nine windows
    pick the centre, which must receive the sum of their targets (not the last one)."""
    below = torch.zeros(1, 1, 5, 5)
    below[0, 0, 2, 2] = 1.0
    t = torch.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    out = unpool(nn.MaxPool2d(3, stride=1), t, below)
    expected = torch.zeros(1, 1, 5, 5)
    expected[0, 0, 2, 2] = 45.0
    torch.testing.assert_close(out, expected)


def test_unpool_with_stride_two_windows_sharing_a_border():
    """3x3 windows at stride 2 on 5x5: windows overlap on row/column 2. A maximum at (2, 2) is
    in all four windows; one at (0, 4) only in the top-right one."""
    below = torch.zeros(1, 1, 5, 5)
    below[0, 0, 2, 2] = 2.0
    below[0, 0, 0, 4] = 3.0
    t = torch.tensor([[[[1.0, 10.0], [100.0, 1000.0]]]])
    out = unpool(nn.MaxPool2d(3, stride=2), t, below)
    expected = torch.zeros(1, 1, 5, 5)
    expected[0, 0, 2, 2] = 1.0 + 100.0 + 1000.0
    expected[0, 0, 0, 4] = 10.0
    torch.testing.assert_close(out, expected)


def test_unpool_through_the_inverse_with_overlapping_pooling(monkeypatch):
    """The conv below an overlapping max pool receives the unpooled target as its problem's target
    (rescaled to the forward output's norm)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, stride=1),
                          nn.Flatten(), nn.Linear(2 * 4 * 4, 3)).double().eval()
    x = _pos_image(1, 6, 6)
    seen = _spy(monkeypatch)
    res = LayerwiseInverse(model, max_iter=30).invert(x)
    pooled_target = res.features[3]  # inverse feature at the pool's output
    with torch.no_grad():
        conv_out = model[0](x)
        relu_out = F.relu(conv_out)
        _, idx = F.max_pool2d(relu_out, 3, 1, return_indices=True)
    expected = torch.zeros(1, 2, 36, dtype=torch.float64)
    for c in range(2):
        for j, i in enumerate(idx[0, c].flatten().tolist()):
            expected[0, c, i] += pooled_target[0, c].flatten()[j]
    expected = expected.reshape(1, 2, 6, 6)
    assert int((idx[0, 0].flatten().bincount() > 1).sum()) > 0  # some windows do share a maximum
    torch.testing.assert_close(res.features[2], expected)
    expected = expected * (conv_out > 0)
    expected = expected * conv_out.norm() / expected.norm()
    torch.testing.assert_close(seen[-1].target, expected)


# --------------------------------------------------------------------------- the spatial mask
def test_mask_handed_to_the_solver_is_one_minus_the_normalised_target(monkeypatch):
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 2, 3, padding=1)).double()
    torch.manual_seed(3)
    x = _pos_image(2)
    target = torch.rand(2, 2, 8, 8, dtype=torch.float64) - 0.3
    seen = _spy(monkeypatch)
    LayerwiseInverse(model, mask_weight=0.3, max_iter=20).invert(x, target=target)
    s = target.abs().sum(dim=1, keepdim=True)
    expected = 1 - s / s.amax(dim=(2, 3), keepdim=True)
    torch.testing.assert_close(seen[0].mask, expected)
    assert float(seen[0].mask.amin()) == pytest.approx(0.0, abs=1e-12)  # where the target peaks


def test_mask_keeps_the_input_where_the_target_is(monkeypatch):
    """A 3x3 box filter with a target concentrated on one block: as mask_weight grows the inverse
    input keeps relatively more of the block than of the rest (the mask penalises the rest)."""
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False).double()
    with torch.no_grad():
        conv.weight.fill_(1.0 / 9)
    model = nn.Sequential(conv)
    x = torch.ones(1, 1, 12, 12, dtype=torch.float64)
    target = torch.full((1, 1, 12, 12), 0.3, dtype=torch.float64)
    target[..., 3:7, 3:7] = 1.0
    block = torch.zeros(12, 12, dtype=torch.bool)
    block[3:7, 3:7] = True

    def contrast(w):
        xi = LayerwiseInverse(model, mask_weight=w, penalty="l2").invert(x, target=target).input[0, 0]
        return float(xi[block].mean() / xi[~block].mean().clamp_min(1e-12))

    low, high = contrast(0.0), contrast(2.0)
    assert high > 1.5 * low, (low, high)


# --------------------------------------------------------------------------- penalty_scale, scale_bound
@pytest.mark.parametrize("penalty", ["l1", "l2"])
def test_forward_penalty_scale_uses_the_documented_weight(monkeypatch, penalty):
    """lam * ||y_l|| * R(x_l)^-1 with R = ||x||_2 (l2) or ||x||_1 / sqrt(size) (l1)."""
    model = _conv_relu_conv()
    x = _pos_image()
    y = model(x).detach()
    seen = _spy(monkeypatch)
    LayerwiseInverse(model, mask_weight=0.4, penalty=penalty, penalty_scale="forward", max_iter=20).invert(
        x, target=y)
    acts = [x, model[0](x), F.relu(model[0](x)), y]
    # seen[0]: the top conv (layer 2, input acts[2]); seen[1]: the first conv (input x)
    for problem, k in zip(seen, (2, 0)):
        below, above = acts[k].detach(), acts[k + 1].detach()
        out_norm = above.flatten(1).norm(dim=1)
        if penalty == "l2":
            r = below.flatten(1).norm(dim=1)
        else:
            r = below.flatten(1).abs().sum(dim=1) / below[0].numel() ** 0.5
        torch.testing.assert_close(torch.as_tensor(problem.lam), 0.4 * out_norm / r)


def test_forward_penalty_scale_makes_a_layer_gain_irrelevant():
    """Multiply the first conv by 8 and divide the second by 8: the same network. With
    penalty_scale="forward" the inverse input is the same; with "none" it is not."""
    x = _pos_image()
    a, b = _conv_relu_conv(gain=1.0), _conv_relu_conv(gain=8.0)
    y = a(x).detach()
    torch.testing.assert_close(b(x).detach(), y)

    def inv(model, scale):
        return LayerwiseInverse(model, mask_weight=0.5, penalty_scale=scale, tol=1e-8, max_iter=2000).invert(
            x, target=y).input

    fa, fb = inv(a, "forward"), inv(b, "forward")
    assert float((fa - fb).norm() / fa.norm()) < 1e-3
    na, nb = inv(a, "none"), inv(b, "none")
    assert float((na - nb).norm() / na.norm()) > 1e-2


@pytest.mark.parametrize("scale_bound", [False, True])
def test_scale_bound_scales_the_box_by_the_target_factor(monkeypatch, scale_bound):
    """Target = 3 x the output: the rescaling factor is 1/3, and with scale_bound the box of the
    input is |x| / 3 (the original VDSR script), without it |x|."""
    model = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1)).double()
    torch.manual_seed(2)
    x = torch.randn(1, 1, 8, 8, dtype=torch.float64)
    y = model(x).detach()
    seen = _spy(monkeypatch, "solve_paper")
    res = LayerwiseInverse.paper(model, variant="vdsr", scale_bound=scale_bound, max_iter=30).invert(
        x, target=3 * y)
    p = seen[0]
    f = 1 / 3 if scale_bound else 1.0
    torch.testing.assert_close(p.hi, f * x.clamp(min=0))
    torch.testing.assert_close(p.lo, f * x.clamp(max=0))
    torch.testing.assert_close(p.x0, f * F.avg_pool2d(x, 5, stride=1, padding=2))
    torch.testing.assert_close(p.target, y, rtol=1e-9, atol=1e-12)  # rescaled to ||y|| either way
    assert float((res.input.abs() - f * x.abs()).max()) <= 1e-12


def test_paper_setting_solves_every_layer_with_the_paper_iteration(monkeypatch):
    """LayerwiseInverse.paper hands the solver the authors' problem: L2 penalty with weight 0.7,
    ReLU in every objective, box [0, max(0, x_l)] in hidden layers."""
    model = _conv_relu_conv()
    x = _pos_image(1)
    seen = _spy(monkeypatch, "solve_paper")
    LayerwiseInverse.paper(model, max_iter=20).invert(x, target=model(x).detach())
    assert [p.penalty for p in seen] == ["l2", "l2"] and [p.lam for p in seen] == [0.7, 0.7]
    assert all(p.relu for p in seen)
    hidden = F.relu(model[0](x)).detach()
    torch.testing.assert_close(seen[0].hi, hidden)
    assert float(seen[0].lo.abs().max()) == 0.0


def test_bn_model_inverse_equals_the_inverse_of_its_folded_twin(tiny_vgg_bn, tiny_batch):
    """BatchNorm folded by hand into the conv before it gives the same inverse."""
    from conftest import TinyVGG

    bn_model = copy.deepcopy(tiny_vgg_bn).double()
    plain = TinyVGG(bn=False).double().eval()
    convs = [m for m in bn_model.features if isinstance(m, nn.Conv2d)]
    bns = [m for m in bn_model.features if isinstance(m, nn.BatchNorm2d)]
    pconvs = [m for m in plain.features if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        for c, bn, p in zip(convs, bns, pconvs):
            s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            p.weight.copy_(c.weight * s[:, None, None, None])
            p.bias.copy_((c.bias - bn.running_mean) * s + bn.bias)
        plain.classifier.load_state_dict(bn_model.classifier.state_dict())
    x = tiny_batch[:3].double()
    torch.testing.assert_close(plain(x), bn_model(x))
    a = LayerwiseInverse(bn_model, mask_weight=0.3, max_iter=60).invert(x)
    b = LayerwiseInverse(plain, mask_weight=0.3, max_iter=60).invert(x)
    torch.testing.assert_close(a.input, b.input, rtol=1e-6, atol=1e-9)
    assert float(a.input.abs().sum()) > 0


# --------------------------------------------------------------------------- more hand-checked pieces
def test_attribution_map_by_hand():
    x = torch.tensor([[[[2.0, -4.0], [1.0, 0.0]], [[1.0, 1.0], [-2.0, 0.0]]]])
    x_hat = torch.tensor([[[[1.0, -1.0], [1.0, 0.0]], [[0.0, 0.5], [-2.0, 0.0]]]])
    # ratios per channel: [[0.5, 0.25], [1, 0]] + [[0, 0.5], [1, 0]] = [[0.5, 0.75], [2, 0]]; / max 2
    expected = torch.tensor([[[0.25, 0.375], [1.0, 0.0]]])
    torch.testing.assert_close(inverse_mod.attribution_map(x_hat, x), expected, rtol=1e-5, atol=1e-6)
    assert float(inverse_mod.attribution_map(torch.zeros_like(x), x).abs().max()) == 0.0


def test_unpool_adaptive_max_pool_by_hand():
    below = torch.tensor([[[[1.0, 5.0, 2.0, 0.0], [3.0, 0.0, 0.0, 7.0], [0.0, 0.0, 4.0, 1.0],
                            [9.0, 2.0, 0.0, 6.0]]]])
    t = torch.tensor([[[[10.0, 20.0], [30.0, 40.0]]]])
    out = unpool(nn.AdaptiveMaxPool2d(2), t, below)
    expected = torch.zeros(1, 1, 4, 4)
    expected[0, 0, 0, 1], expected[0, 0, 1, 3], expected[0, 0, 3, 0], expected[0, 0, 3, 3] = 10.0, 20.0, 30.0, 40.0
    torch.testing.assert_close(out, expected)


def test_a_single_linear_classifier_is_inverted_at_its_margin(monkeypatch):
    """The logits layer may be the first layer: it gets the margin problem with no penalty, and
    its answer lowers the margin of the explained class against the others."""
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(6, 3)).double().eval()
    x = torch.rand(2, 6, dtype=torch.float64) + 0.5
    seen = _spy(monkeypatch)
    res = LayerwiseInverse(model, mask_weight=0.8).invert(x, target=[0, 2])
    assert len(seen) == 1 and torch.equal(seen[0].classes, torch.tensor([0, 2]))
    assert float(torch.as_tensor(seen[0].lam)) == 0.0 and seen[0].target is None
    z = model(res.input)
    margin = z.scatter(1, torch.tensor([[0], [2]]), float("-inf")).amax(1) - z[torch.arange(2), [0, 2]]
    z0 = model(x)
    margin0 = z0.scatter(1, torch.tensor([[0], [2]]), float("-inf")).amax(1) - z0[torch.arange(2), [0, 2]]
    assert (margin < margin0 - 1e-3).all()


def test_average_pools_identity_passes_through_and_proper_pool_is_solved(monkeypatch):
    torch.manual_seed(5)
    ident = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.AvgPool2d(1),
                          nn.Flatten(), nn.Linear(2 * 16, 3)).double().eval()
    pooled = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                           nn.Flatten(), nn.Linear(2 * 4, 3)).double().eval()
    x = _pos_image(1, 4, 4)
    seen = _spy(monkeypatch)
    res = LayerwiseInverse(ident, max_iter=20).invert(x)
    assert len(seen) == 2  # the logits and the conv; the identity pool is passed through
    torch.testing.assert_close(res.features[2], res.features[3])
    seen.clear()
    LayerwiseInverse(pooled, max_iter=20).invert(x)
    assert len(seen) == 3 and tuple(seen[1].x0.shape) == (1, 2, 4, 4)  # the pool is a layer problem


def test_mask_is_resized_to_a_strided_layers_input(monkeypatch):
    """A stride-2 conv: the mask from its 4x4 output target is resized (nearest) to its 8x8 input."""
    model = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, padding=1)).double()
    x = _pos_image(1)
    torch.manual_seed(6)
    target = torch.rand(1, 2, 4, 4, dtype=torch.float64)
    seen = _spy(monkeypatch)
    LayerwiseInverse(model, mask_weight=0.3, max_iter=20).invert(x, target=target)
    s = target.abs().sum(dim=1, keepdim=True)
    small = 1 - s / s.amax()
    expected = small.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    torch.testing.assert_close(seen[0].mask, expected)


def test_scale_bound_scales_each_sample_by_its_own_factor(monkeypatch):
    model = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1)).double()
    torch.manual_seed(2)
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    y = model(x).detach()
    seen = _spy(monkeypatch)
    LayerwiseInverse(model, mask_weight=0.3, scale_bound=True, max_iter=10).invert(x, target=y * torch.tensor([3.0, 0.5]).reshape(2, 1, 1, 1))
    f = torch.tensor([1 / 3, 2.0], dtype=torch.float64).reshape(2, 1, 1, 1)
    torch.testing.assert_close(seen[0].hi, f * x.clamp(min=0))


def test_class_targets_need_logits_at_the_top():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    with pytest.raises(ValueError, match="logits"):
        LayerwiseInverse(model, max_iter=5).invert(torch.rand(2, 4), target=1)


def test_ratio_attribution_by_hand_where_the_input_is_near_zero():
    """kind="ratio", eps = 1e-6, one channel: pixel 1 keeps all of x = 1 (ratio 1/(1 + 1e-6)),
    pixel 2 keeps 1e-6 of x = 2e-6 (ratio 1e-6/3e-6 = 1/3); max-normalised: (1, 1/3 (1 + 1e-6))."""
    from invnb.inverse import attribution_map

    x = torch.tensor([1.0, 2e-6], dtype=torch.float64).reshape(1, 1, 1, 2)
    x_hat = torch.tensor([1.0, 1e-6], dtype=torch.float64).reshape(1, 1, 1, 2)
    got = attribution_map(x_hat, x, kind="ratio")
    torch.testing.assert_close(got, torch.tensor([[[1.0, (1 + 1e-6) / 3]]], dtype=torch.float64),
                               rtol=1e-9, atol=0)


# --------------------------------------------------------------------------- documented defaults (issue 16)
def test_documented_solver_defaults_reach_the_solver(monkeypatch):
    """The docstring's defaults: fista with max_iter 300 and tol 1e-3; paper with max_iter 3000."""
    model = _conv_relu_conv()
    x = _pos_image(1)
    seen_kw = []
    real = inverse_mod.solve_fista

    def spy(problem, **kw):
        seen_kw.append(kw)
        return real(problem, **{**kw, "max_iter": 5})  # the answer is not checked here: keep it fast

    monkeypatch.setattr(inverse_mod, "solve_fista", spy)
    LayerwiseInverse(model, mask_weight=0.3).invert(x, target=model(x).detach())
    assert len(seen_kw) == 2
    assert all(kw["max_iter"] == 300 and kw["tol"] == pytest.approx(1e-3, rel=1e-12) for kw in seen_kw)
    assert LayerwiseInverse(model, solver="paper").max_iter == 3000


def test_logits_below_a_dropout_get_the_margin_problem(monkeypatch):
    """conv - ReLU - Flatten - Linear - Dropout (eval): the Linear is the logits layer (only
    Dropout/Flatten above it), so it alone gets the class margin; the conv gets a target."""
    torch.manual_seed(7)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 16, 3),
                          nn.Dropout(0.5)).double().eval()
    x = _pos_image(2, 4, 4)
    seen = _spy(monkeypatch)
    LayerwiseInverse(model, mask_weight=0.3, max_iter=20).invert(x, target=[1, 2])
    assert len(seen) == 2
    assert tuple(seen[0].x0.shape) == (2, 32)  # the Linear's input
    assert torch.equal(seen[0].classes, torch.tensor([1, 2])) and seen[0].target is None
    assert seen[1].classes is None and tuple(seen[1].target.shape) == (2, 2, 4, 4)


@pytest.mark.parametrize("target_scale", ["none", "forward", "active"])
def test_target_scale_rescales_the_target_to_the_documented_norm(monkeypatch, target_scale):
    """conv - ReLU with an output target 3 y: "none" hands the conv 3 y itself; "forward" rescales
    it to the norm of the conv's output z (signs mixed here); "active" to the norm of relu(z),
    what the ReLU after the conv passes on."""
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU()).double().eval()
    x = torch.randn(1, 1, 6, 6, dtype=torch.float64)
    z = model[0](x).detach()
    assert float(z.min()) < -0.05  # the two norms differ
    target = 3 * model(x).detach()
    seen = _spy(monkeypatch)
    LayerwiseInverse(model, mask_weight=0.3, max_iter=5, target_scale=target_scale).invert(x, target=target)
    expected = {"none": float(target.norm()), "forward": float(z.norm()), "active": float(z.clamp(min=0).norm())}
    assert len(seen) == 1
    assert float(seen[0].target.norm()) == pytest.approx(expected[target_scale], rel=1e-6)
    torch.testing.assert_close(seen[0].target / seen[0].target.norm(), target / target.norm())


def test_float32_model_solves_only_its_margin_layer_in_float64(monkeypatch):
    """In float32 the margin layer (no penalty, several minimisers) is solved in float64; every
    other layer in the model's own precision, and the features come back in float32."""
    torch.manual_seed(8)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 16, 3)).eval()
    x = _pos_image(2, 4, 4).float()
    seen = _spy(monkeypatch)
    res = LayerwiseInverse(model, mask_weight=0.3, max_iter=10).invert(x, target=[0, 1])
    assert [p.classes is not None for p in seen] == [True, False]
    assert seen[0].lo.dtype == seen[0].hi.dtype == seen[0].x0.dtype == torch.float64
    assert seen[1].lo.dtype == seen[1].x0.dtype == seen[1].target.dtype == torch.float32
    assert all(f.dtype == torch.float32 for f in res.features if f is not None)


def test_strided_one_by_one_average_pool_is_solved_not_passed_through(monkeypatch):
    """AvgPool2d(1, stride=2) keeps every other pixel: not an identity, so it is a layer problem
    whose input is the full 4x4 map (an identity pool is only kernel 1, stride 1, no padding)."""
    torch.manual_seed(9)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.AvgPool2d(1, stride=2),
                          nn.Flatten(), nn.Linear(2 * 4, 3)).double().eval()
    x = _pos_image(1, 4, 4)
    seen = _spy(monkeypatch)
    res = LayerwiseInverse(model, mask_weight=0.3, max_iter=10).invert(x)
    assert len(seen) == 3 and tuple(seen[1].x0.shape) == (1, 2, 4, 4)
    assert tuple(res.input.shape) == (1, 1, 4, 4)


def test_batched_inverse_returns_the_attribution_of_its_input():
    """With batch_size 1 over two images the result is concatenated; its attribution map is still
    attribution_map(input, x) of each image, with the inverse's map settings."""
    model = _conv_relu_conv()
    x = _pos_image(2)
    inv = LayerwiseInverse(model, mask_weight=0.3, max_iter=10, batch_size=1)
    res = inv.invert(x, target=model(x).detach())
    assert res.attribution is not None and tuple(res.attribution.shape) == (2, 8, 8)
    expected = inverse_mod.attribution_map(res.input, x, inv.attribution, sigma=inv.map_sigma,
                                           smoothing=inv.map_smoothing, fill_sigma=inv.map_fill_sigma,
                                           clip=inv.map_clip)
    torch.testing.assert_close(res.attribution, expected)
