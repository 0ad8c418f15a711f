"""The embedded small ResNet: its file, its accuracy, and the default inverse on it."""

import json
import shutil

import pytest
import torch

from invnb import LayerStack, LayerwiseInverse
from invnb.datasets import make_shapes, normalize
from invnb.inverse import ResidualSum
from invnb.models import EMBEDDED_RESNET_CHECKPOINT, SmallResNet, load_embedded_resnet

SEED = 424242  # not a training seed (< 10**6), nor the development set's (777001)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model():
    return load_embedded_resnet()


def test_checkpoint_is_small_and_recorded():
    meta = json.loads(EMBEDDED_RESNET_CHECKPOINT.with_suffix(".json").read_text())
    assert EMBEDDED_RESNET_CHECKPOINT.stat().st_size < 5e6
    assert meta["command"].startswith("python scripts/train_embedded.py --model smallresnet")
    assert meta["accuracy"]["test"] >= 0.95
    assert meta["model"] == "SmallResNet"


def test_loader_checks_the_digest_and_names_missing_files(tmp_path):
    bad = tmp_path / "embedded_resnet.pt"
    state = SmallResNet().state_dict()  # other weights than the recorded ones
    torch.save(state, bad)
    shutil.copy(EMBEDDED_RESNET_CHECKPOINT.with_suffix(".json"), tmp_path / "embedded_resnet.json")
    with pytest.raises(ValueError, match="sha256"):
        load_embedded_resnet(bad)
    assert isinstance(load_embedded_resnet(bad, check_digest=False), SmallResNet)
    with pytest.raises(FileNotFoundError, match="train_embedded.py --model smallresnet"):
        load_embedded_resnet(tmp_path / "missing.pt")


def test_accuracy_on_fresh_images_and_the_stack(model):
    data = make_shapes(200, seed=SEED)
    x = normalize(data.images)
    with torch.no_grad():
        logits = model(x)
        stack = LayerStack(model)
        torch.testing.assert_close(stack(x), logits, rtol=1e-4, atol=1e-4 * logits.abs().max().item())
    assert (logits.argmax(1) == data.labels).float().mean() >= 0.95
    sums = [layer for layer in stack.layers if isinstance(layer, ResidualSum)]
    assert len(sums) == 3 and sum(len(s.shortcut) > 0 for s in sums) == 1


def test_default_inverse_keeps_the_class_and_does_not_depend_on_the_batch(model):
    x = normalize(make_shapes(3, seed=SEED + 1).images)
    inv = LayerwiseInverse(model)
    res = inv.invert(x)
    with torch.no_grad():
        assert torch.equal(model(res.input).argmax(1) == res.classes, res.kept_class)
    assert res.kept_class.all() and not res.failed.any()
    one = inv.invert(x[1:2])
    assert torch.equal(one.mask_weight, res.mask_weight[1:2])
    assert (one.attribution - res.attribution[1:2]).abs().max() <= 1e-6
    scale = res.input[1].abs().max()
    assert ((one.input - res.input[1:2]).abs().max() / scale) <= 1e-6
