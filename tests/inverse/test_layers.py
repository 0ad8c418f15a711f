import pytest
import torch
import torchvision
from torch import nn

from invnb import LayerStack, UnsupportedLayerError, fold_batchnorm


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("name", ["vgg11", "vgg13_bn", "vgg16"])
def test_stack_reproduces_torchvision_vgg(name):
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).eval()
    if name.endswith("_bn"):  # non-trivial running statistics, so folding matters
        g = torch.Generator().manual_seed(1)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    x = torch.randn(1, 3, 32, 32)
    stack = LayerStack(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in stack.layers)
    assert "<flatten>" in stack.names
    with torch.no_grad():
        ref = model(x)
        out = stack(x)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())


def test_folded_batchnorm_matches_original(tiny_vgg_bn, tiny_batch):
    stack = LayerStack(tiny_vgg_bn)
    with torch.no_grad():
        torch.testing.assert_close(stack(tiny_batch), tiny_vgg_bn(tiny_batch), rtol=1e-5, atol=1e-5)
    conv, bn = tiny_vgg_bn.features[0], tiny_vgg_bn.features[1]
    fused = fold_batchnorm(conv, bn)
    with torch.no_grad():
        torch.testing.assert_close(fused(tiny_batch), bn(conv(tiny_batch)), rtol=1e-5, atol=1e-5)


def test_record_and_forward_from(tiny_vgg, tiny_batch):
    stack = LayerStack(tiny_vgg)
    acts = stack.record(tiny_batch)
    assert len(acts) == len(stack) + 1
    for k, layer in enumerate(stack.layers):
        torch.testing.assert_close(acts[k + 1], layer(acts[k]))
    with torch.no_grad():
        for k in range(len(stack) + 1):
            torch.testing.assert_close(stack.forward_from(k, acts[k]), acts[-1])


def test_model_left_untouched(tiny_vgg_bn, tiny_batch):
    before = _params(tiny_vgg_bn)
    inplace = [m.inplace for m in tiny_vgg_bn.modules() if isinstance(m, nn.ReLU)]
    stack = LayerStack(tiny_vgg_bn)
    assert all(not m.inplace for m in stack.layers if isinstance(m, nn.ReLU))
    assert inplace == [m.inplace for m in tiny_vgg_bn.modules() if isinstance(m, nn.ReLU)]
    for a, b in zip(before, tiny_vgg_bn.parameters()):
        assert torch.equal(a, b) and b.requires_grad


def test_unsupported_layer_is_named():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Sigmoid(), nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(UnsupportedLayerError, match=r"`2` is a Sigmoid"):
        LayerStack(model)


def test_batchnorm_without_conv_is_refused():
    with pytest.raises(UnsupportedLayerError, match="does not follow a Conv2d"):
        LayerStack(nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 4, 3)))


def test_check_matches_catches_what_tracing_cannot_see(tiny_batch):
    """A forward that branches on the input's shape cannot be traced; the output check still catches a residual."""

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            self.relu = nn.ReLU()

        def forward(self, x):
            if x.shape[1] != 3:  # data-dependent control flow: torch.fx cannot trace this
                raise ValueError("3 channels")
            return x + self.relu(self.conv(x))

    model = Residual().eval()
    stack = LayerStack(model)
    assert not stack.traced
    with pytest.raises(ValueError, match="not the plain sequence"):
        stack.check_matches(model, tiny_batch)


# --- structural refusal at construction (torch.fx) ------------------------------------------


class _Functional(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 16 * 16, 5)

    def forward(self, x):
        return self.fc(torch.flatten(torch.sigmoid(self.conv(x)), 1))


class _FunctionalRelu(_Functional):
    def forward(self, x):
        return self.fc(torch.flatten(nn.functional.relu(self.conv(x)), 1))


class _FlattenAll(_Functional):  # torch.flatten's default start_dim=0 also flattens the batch
    def forward(self, x):
        return self.fc(torch.flatten(self.conv(x)))


class _Reordered(_Functional):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 16 * 16, 3 * 16 * 16)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return self.conv(self.fc(x.flatten(1)).view(-1, 3, 16, 16))


@pytest.mark.parametrize(
    "make, cause",
    [
        (lambda: torchvision.models.squeezenet1_0(weights=None), r"output of `features\.3\.squeeze_activation` is used by `features\.3\.expand1x1` and `features\.3\.expand3x3` \(the chain branches\)"),
        (_Functional, r"functional op torch\.sigmoid in forward \(applied to the output of `conv`\)"),
        (_FunctionalRelu, r"functional op F\.relu in forward"),
        (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.Tanh()), r"`1` is a Tanh"),
        (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.Upsample(scale_factor=2)), r"`1` is a Upsample"),
        (_Reordered, r"`conv` is not applied to the previous layer's output|registration order"),
        (_FlattenAll, r"torch\.flatten flattens dims 0\.\.-1: the layer stack only flattens a feature map from dim 1"),
    ],
    ids=["squeezenet", "sigmoid", "F.relu", "tanh-layer", "upsample-layer", "reordered", "flatten-batch"],
)
def test_unsupported_models_are_refused_at_construction_naming_the_cause(make, cause):
    from invnb import LayerwiseInverse

    with pytest.raises(UnsupportedLayerError, match=cause) as err:
        LayerStack(make())
    assert "supported: a plain chain" in str(err.value)
    with pytest.raises(UnsupportedLayerError, match=cause):
        LayerwiseInverse(make())


def test_supported_models_still_construct():
    from invnb.models import VDSR, load_embedded_model

    assert LayerStack(torchvision.models.vgg16(weights=None)).traced
    assert LayerStack(load_embedded_model()).traced
    vdsr = LayerStack(VDSR(depth=5))  # its forward checks the input shape: checked one level down
    assert not vdsr.traced and len(vdsr) == 9

    class ViewFlatten(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 3, padding=1)
            self.fc = nn.Linear(2 * 4 * 4, 3)

        def forward(self, x):
            x = self.conv(x)
            return self.fc(x.view(x.size(0), -1))

    LayerStack(ViewFlatten())


def test_a_stack_that_cannot_run_says_it_is_not_a_plain_chain():
    """check_matches turns torch's shape error into the plain-sequence message."""

    class Untraceable(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 8, 1)
            self.b = nn.Conv2d(3, 8, 1)

        def forward(self, x):
            if x.ndim != 4:
                raise ValueError
            return self.a(x) + self.b(x)

    model = Untraceable()
    with pytest.raises(ValueError, match="not the plain sequence.*fail"):
        LayerStack(model).check_matches(model, torch.rand(1, 3, 4, 4))


# --- inputs checked before running ----------------------------------------------------------


@pytest.mark.parametrize(
    "x, error, cause",
    [
        (torch.rand(2, 1, 16, 16), ValueError, r"takes 3-channel images .*has 1 channels"),
        (torch.rand(3, 16, 16), ValueError, r"\(N, C, H, W\).*unsqueeze"),
        (torch.rand(1, 3, 1, 1), ValueError, r"too small .*at least 4x4"),
        (torch.rand(2, 3, 2, 2), ValueError, r"too small .*at least 4x4"),
        (torch.rand(2, 3, 16, 16, dtype=torch.float64), TypeError, r"float64 but the model's weights are torch\.float32"),
        (torch.rand(2, 3, 16, 16).half(), TypeError, r"float16 but the model's weights are torch\.float32"),
        (torch.zeros(2, 3, 16, 16, dtype=torch.long), TypeError, "floating tensor"),
        (torch.zeros(0, 3, 16, 16), ValueError, "empty"),
    ],
    ids=["channels", "no-batch-dim", "1x1", "2x2", "float64", "half", "int", "empty"],
)
def test_check_input_refuses_bad_inputs_clearly(tiny_vgg, x, error, cause):
    with pytest.raises(error, match=cause):
        LayerStack(tiny_vgg).check_input(x)


def test_check_input_accepts_good_inputs(tiny_vgg, tiny_batch):
    stack = LayerStack(tiny_vgg)
    stack.check_input(tiny_batch)
    stack.check_input(torch.rand(1, 3, 4, 4))  # the adaptive pool takes any size >= 4x4
