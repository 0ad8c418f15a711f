"""torchvision's ResNets: random weights, a saved state dict, the torch hub cache; never a download."""

import pytest
import torch
import torchvision
from torch import nn

from invnb.book.chapter_items import classifier
from invnb.inverse import LayerStack
from invnb.models import (RESNET_NAMES, load_embedded, load_imagenet_classifier, load_resnet, load_vgg, resnet_weights_file,
                          without_identity_shortcuts)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache of its own (nothing may be downloaded)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url",
                        lambda *a, **k: pytest.fail("a test must never download"))
    return tmp_path / "hub"


def test_random_weights_and_names():
    model = load_resnet("resnet50", weights=None)
    assert isinstance(model, torchvision.models.ResNet) and not model.training
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1000)
    assert "resnet50" in RESNET_NAMES
    assert isinstance(load_imagenet_classifier("resnet18", weights=None), torchvision.models.ResNet)
    assert isinstance(load_imagenet_classifier("vgg11", weights=None), torchvision.models.VGG)
    with pytest.raises(ValueError, match="unknown model name 'resnet19'.*resnet50"):
        load_resnet("resnet19", weights=None)
    with pytest.raises(ValueError, match="unknown model name 'alexnet'.*vgg16.*resnet50"):
        load_imagenet_classifier("alexnet", weights=None)
    with pytest.raises(ValueError, match="unknown model name 'resnet50'.*vgg16"):
        load_vgg("resnet50", weights=None)  # load_vgg stays VGG's


def test_a_saved_state_dict_loads_and_its_classes_follow_fc(tmp_path):
    torch.manual_seed(0)
    src = torchvision.models.resnet18(num_classes=10).eval()
    path = tmp_path / "mine.pth"
    torch.save(src.state_dict(), path)
    model = load_resnet("resnet18", weights=path)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), src(x))
    assert model.fc.out_features == 10
    vgg = tmp_path / "vgg.pth"
    torch.save(torchvision.models.vgg11(weights=None).state_dict(), vgg)
    with pytest.raises(ValueError, match="'fc.weight'"):
        load_resnet("resnet18", weights=vgg)


def test_resnet50_imagenet_weights_come_from_the_hub_cache_like_vgg16s(hub):
    file = resnet_weights_file("resnet50")
    assert file.parent == hub / "checkpoints" and file.name == "resnet50-0676ba61.pth"
    with pytest.raises(FileNotFoundError, match=r"(?s)resnet50-0676ba61\.pth.*download\.pytorch\.org.*load_resnet"):
        load_resnet("resnet50")
    torch.manual_seed(1)
    src = torchvision.models.resnet50(weights=None).eval()
    file.parent.mkdir(parents=True)
    torch.save(src.state_dict(), file)  # stands in for the ImageNet weights a user has
    model = classifier("resnet50", None, "IMAGENET1K_V1", "cpu")  # chapter 01's model_name=resnet50
    assert isinstance(model, torchvision.models.ResNet) and not model.training
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), src(x))
    stack = LayerStack(model)
    assert [stack.names[k - 1] for k in stack.block_outputs()] == [
        "conv1+relu+maxpool", "layer1.2.relu", "layer2.3.relu", "layer3.5.relu", "layer4.2.relu"]


def test_block_outputs_of_a_plain_chain_follow_its_max_pools():
    stack = LayerStack(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3),
                                     nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4, 2)))
    assert stack.block_outputs() == [3, 6]


def test_without_identity_shortcuts_drops_only_the_identity_paths():
    model = load_embedded("smallresnet").eval()
    plain = without_identity_shortcuts(model)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, model.widths[0], 16, 16, generator=g)
    block = model.layer1[0]
    with torch.no_grad():
        branch = block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x)))))
        assert torch.allclose(block(x), torch.relu(branch + x), atol=1e-6)  # the model is unchanged
        assert torch.allclose(plain.layer1[0](x), torch.relu(branch), atol=1e-6)  # the copy drops x
        assert torch.allclose(plain.layer2[0](x), model.layer2[0](x), atol=1e-6)  # the projection block stays
        image = torch.rand(1, 3, 64, 64, generator=g)
        assert not torch.allclose(plain(image), model(image), atol=1e-4)


def test_without_identity_shortcuts_of_a_bottleneck_resnet_and_of_a_chain():
    model = torchvision.models.resnet50().eval()
    plain = without_identity_shortcuts(model)
    block, copy = model.layer1[1], plain.layer1[1]
    x = torch.rand(1, 256, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = block.relu(block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x))))))
        assert torch.allclose(copy(x), block.relu(block.bn3(block.conv3(out))), atol=1e-5)
    with pytest.raises(ValueError, match="no torchvision BasicBlock or Bottleneck"):
        without_identity_shortcuts(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()))
