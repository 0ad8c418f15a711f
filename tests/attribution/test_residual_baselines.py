"""Every baseline on residual networks: Grad-CAM's default layer, Guided Backprop through reused ReLUs."""

import pytest
import torch
import torchvision
from torch import nn

from invnb.attribution import GradCam, available_methods, make_method
from invnb.datasets import make_shapes, normalize
from invnb.models import load_embedded_resnet

FAST = {
    "rise": {"n_masks": 32, "batch_size": 16},
    "integrated_gradients": {"n_steps": 4},
    "inverse": {"max_iter": 5, "auto_weights": (1.0,)},
    "inverse_paper": {"max_iter": 5},
    "extremal_perturbation": {"steps": 3},
    "occlusion": {"window": 16, "stride": 16},
}


@pytest.fixture(scope="module")
def resnet():
    return load_embedded_resnet()


@pytest.mark.parametrize("make, layer", [
    (lambda: torchvision.models.resnet18(weights=None), "layer4.1"),
    (lambda: torchvision.models.resnet50(weights=None), "layer4.2"),
    (load_embedded_resnet, "layer2.1"),
    (lambda: torchvision.models.vgg11(weights=None), "features.19"),
], ids=["resnet18", "resnet50", "smallresnet", "vgg11"])
def test_grad_cam_explains_the_last_residual_block_output(make, layer):
    assert GradCam(make()).layer == layer


def test_grad_cam_of_a_residual_network_weights_the_block_output_by_its_gradient(resnet):
    """Known answer: relu(sum_k mean(dy/dA_k) A_k) with A the output of the last block (layer2.1)."""
    x = normalize(make_shapes(2, seed=5).images)
    classes = torch.tensor([0, 3])
    feats = {}
    handle = resnet.layer2[1].register_forward_hook(lambda m, i, o: feats.__setitem__("a", o))
    try:
        out = resnet(x)
        a = feats["a"]
        (g,) = torch.autograd.grad(out[[0, 1], classes].sum(), a)
    finally:
        handle.remove()
    cam = (g.mean(dim=(2, 3), keepdim=True) * a).sum(1, keepdim=True).clamp(min=0).detach()
    want = nn.functional.interpolate(cam, size=(64, 64), mode="bilinear", align_corners=False).sum(1)
    got = GradCam(resnet).attribute(x, classes)
    torch.testing.assert_close(got, want, atol=1e-5 * float(want.abs().max()), rtol=1e-5)


def test_every_method_runs_on_the_embedded_resnet(resnet):
    torch.set_num_threads(1)
    x = normalize(make_shapes(2, seed=7).images)
    for name in available_methods():
        exp = make_method(name, resnet, **FAST.get(name, {})).explain(x)
        assert exp.attribution.shape == (2, 64, 64), name
        assert torch.isfinite(exp.attribution).all(), name
