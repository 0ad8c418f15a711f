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
    with pytest.raises(UnsupportedLayerError, match=r"layer 2 \(2: Sigmoid\)"):
        LayerStack(model)


def test_batchnorm_without_conv_is_refused():
    with pytest.raises(UnsupportedLayerError, match="does not follow a Conv2d"):
        LayerStack(nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 4, 3)))


def test_check_matches_catches_non_sequential_forward(tiny_batch):
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            self.relu = nn.ReLU()

        def forward(self, x):
            return x + self.relu(self.conv(x))

    model = Residual().eval()
    stack = LayerStack(model)
    with pytest.raises(ValueError, match="not the plain sequence"):
        stack.check_matches(model, tiny_batch)
