"""The embedded SmallVGG, its shipped checkpoint, and torchvision VGG loading."""

import json
import os
import pickle

import pytest
import torch
import torchvision
from torch import nn

from invnb.datasets import CLASS_NAMES, make_shapes, normalize, sha256sum
from invnb.models import (
    EMBEDDED_CHECKPOINT,
    VGG_NAMES,
    SmallVGG,
    load_embedded_model,
    load_vgg,
    vgg_weights_file,
)

# A seed for fresh test images; checked below against the seeds the
# training script recorded, so it is never one the model was trained on.
FRESH_SEED = 777_777

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _checkpoint_meta() -> dict:
    meta = EMBEDDED_CHECKPOINT.with_suffix(".json")
    assert EMBEDDED_CHECKPOINT.is_file(), f"shipped checkpoint missing: {EMBEDDED_CHECKPOINT}"
    assert meta.is_file(), f"checkpoint metadata missing: {meta}"
    return json.loads(meta.read_text())


# --- SmallVGG -----------------------------------------------------------------


def test_small_vgg_mirrors_torchvision_vgg():
    torch.manual_seed(0)
    model = SmallVGG().eval()
    assert {type(m) for m in model.features} == {nn.Conv2d, nn.ReLU, nn.MaxPool2d}
    assert all(m.kernel_size == (3, 3) for m in model.features if isinstance(m, nn.Conv2d))
    assert isinstance(model.avgpool, nn.AdaptiveAvgPool2d)
    assert [type(m) for m in model.classifier] == [
        nn.Linear, nn.ReLU, nn.Dropout, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear,
    ]
    # Same top-level layout as torchvision's VGG (built on "meta": no memory, no init).
    with torch.device("meta"):
        vgg = torchvision.models.vgg11(weights=None)
    assert [n for n, _ in model.named_children()] == [n for n, _ in vgg.named_children()]
    x = torch.randn(3, 3, 64, 64)
    feats = model.features(x)
    assert torch.equal(model.avgpool(feats), feats)  # identity at the design size
    manual = model.classifier(torch.flatten(model.avgpool(feats), 1))
    assert torch.equal(model(x), manual)
    assert model(x).shape == (3, len(CLASS_NAMES))
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params < 750_000  # <= 3 MB as float32
    assert not any(getattr(m, "inplace", False) for m in model.modules())


def test_small_vgg_other_sizes_and_cfg():
    model = SmallVGG(num_classes=3, cfg=(8, "M", 8, "M"), hidden=16, image_size=32).eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 3)
    assert model.avgpool.output_size == (8, 8)
    rebuilt = SmallVGG(**model.architecture())
    assert rebuilt.architecture() == model.architecture()


@pytest.mark.parametrize(
    "kwargs, text",
    [
        ({"cfg": ("M", "M")}, "at least one conv"),
        ({"cfg": (16, "X")}, "positive ints or 'M'"),
        ({"image_size": 60}, "not divisible"),
        ({"num_classes": 0}, "num_classes"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_small_vgg_bad_arguments(kwargs, text):
    with pytest.raises(ValueError, match=text):
        SmallVGG(**kwargs)


def test_without_batchnorm_is_equivalent():
    torch.manual_seed(0)
    model = SmallVGG(batch_norm=True)
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.2)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen))
    model.eval()
    plain = model.without_batchnorm()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    assert not plain.training
    x = torch.randn(4, 3, 64, 64, generator=gen)
    ref = model(x)
    assert torch.allclose(plain(x), ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())


# --- the shipped checkpoint ---------------------------------------------------


def test_checkpoint_is_small_and_matches_its_record():
    meta = _checkpoint_meta()
    assert EMBEDDED_CHECKPOINT.stat().st_size <= 3_000_000
    digest = sha256sum(EMBEDDED_CHECKPOINT)
    assert digest == meta["sha256"], "checkpoint and embedded_vgg.json disagree; rerun the training script"
    for key in ("seed", "command", "data", "training", "accuracy", "torch", "wall_time_s"):
        assert key in meta, key
    assert meta["command"].startswith("python scripts/train_embedded.py")
    assert meta["class_names"] == list(CLASS_NAMES)


@pytest.fixture(scope="module")
def fresh_images():
    meta = _checkpoint_meta()
    used = set(meta["data"]["train_seeds"]) | {meta["data"]["val_seed"]}
    assert FRESH_SEED not in used, "pick a FRESH_SEED the training did not use"
    return make_shapes(600, seed=FRESH_SEED)


@pytest.mark.parametrize("device", DEVICES)
def test_embedded_model_accuracy_on_fresh_images(fresh_images, device):
    model = load_embedded_model(device=device)
    assert not model.training
    assert next(model.parameters()).device.type == device
    with torch.no_grad():
        x = normalize(fresh_images.images.to(device))
        pred = torch.cat([model(x[i:i + 200]) for i in range(0, len(x), 200)]).argmax(1).cpu()
    correct = pred == fresh_images.labels
    assert correct.float().mean() >= 0.95
    d = fresh_images.has_distractor
    assert d.sum() >= 100
    assert correct[d].float().mean() >= 0.90
    # Every class is recognised, not just the majority of images.
    for k in range(len(CLASS_NAMES)):
        assert correct[fresh_images.labels == k].float().mean() >= 0.85, CLASS_NAMES[k]


def test_embedded_model_is_deterministic():
    a, b = load_embedded_model(), load_embedded_model()
    x = normalize(make_shapes(8, seed=FRESH_SEED + 1).images)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


def test_load_embedded_model_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_embedded.py"):
        load_embedded_model(tmp_path / "nope.pt")


def test_load_embedded_model_rejects_garbage_and_pickles(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="state dict"):
        load_embedded_model(bad)
    # An arbitrary pickled object is refused (weights_only=True), not executed.
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as f:
        pickle.dump({"features.0.weight": _Callable()}, f, protocol=2)
    with pytest.raises(ValueError, match="weights_only"):
        load_embedded_model(evil)


class _Callable:
    def __call__(self):  # pragma: no cover - never executed
        raise AssertionError


# --- torchvision VGG ----------------------------------------------------------


def test_load_vgg_without_cached_weights_says_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    expected = tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth"
    assert vgg_weights_file("vgg16") == expected
    with pytest.raises(FileNotFoundError) as err:
        load_vgg("vgg16")
    msg = str(err.value)
    assert str(expected) in msg
    assert "https://download.pytorch.org/models/vgg16-397923af.pth" in msg
    assert "download=True" in msg
    assert not expected.exists()  # nothing was downloaded


def _fake_state(name, num_classes=1000, offset=0.0):
    """A state dict for a torchvision VGG whose every entry is distinct.

    Shapes come from a meta-device model; values are a cheap ramp plus a
    per-key offset (random numbers for 1.3e8 parameters take seconds).
    """
    with torch.device("meta"):
        shapes = getattr(torchvision.models, name)(weights=None, num_classes=num_classes).state_dict()
    return {
        k: (torch.arange(v.numel(), dtype=torch.float32) % 997).reshape(v.shape) * 1e-4 + i + offset
        for i, (k, v) in enumerate(shapes.items())
    }


@pytest.fixture(scope="module")
def vgg11_state():
    return _fake_state("vgg11")


def _same_params(model, state):
    own = model.state_dict()
    return own.keys() == state.keys() and all(torch.equal(own[k], state[k]) for k in state)


def test_load_vgg_from_hub_cache(tmp_path, monkeypatch, vgg11_state):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    file = vgg_weights_file("vgg11")
    file.parent.mkdir(parents=True)
    torch.save(vgg11_state, file)
    model = load_vgg("vgg11", weights="IMAGENET1K_V1")
    assert not model.training
    assert _same_params(model, vgg11_state)


def test_load_vgg_from_local_state_dict(tmp_path):
    state = _fake_state("vgg11", num_classes=10, offset=0.5)
    path = tmp_path / "my_vgg11.pth"
    torch.save(state, path)
    model = load_vgg("vgg11", weights=str(path))
    assert not model.training
    assert model.classifier[6].out_features == 10
    assert _same_params(model, state)


def test_load_vgg_state_dict_of_other_architecture(tmp_path):
    # Has the VGG head, misses every other entry: a clear error, not a crash.
    path = tmp_path / "partial.pth"
    torch.save({"classifier.6.weight": torch.zeros(10, 4096), "classifier.6.bias": torch.zeros(10)}, path)
    with pytest.raises(ValueError, match="(?s)does not fit VGG.*Missing key"):
        load_vgg("vgg13", weights=path)


def test_load_vgg_random_weights():
    torch.manual_seed(0)
    model = load_vgg("vgg11_bn", weights=None)
    assert isinstance(model, torchvision.models.VGG) and not model.training
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, 1000) and torch.isfinite(out).all()


def test_load_vgg_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="unknown model name 'resnet50'.*vgg16"):
        load_vgg("resnet50", weights=None)
    with pytest.raises(FileNotFoundError, match="IMAGENET1K_V1"):
        load_vgg("vgg16", weights="IMAGENET2K_V9")
    with pytest.raises(FileNotFoundError, match="neither"):
        load_vgg("vgg16", weights=tmp_path / "missing.pth")
    with pytest.raises(TypeError, match="weights"):
        load_vgg("vgg16", weights=3)
    not_vgg = tmp_path / "small.pt"
    torch.save(SmallVGG().state_dict(), not_vgg)
    with pytest.raises(ValueError, match="classifier.6.weight"):
        load_vgg("vgg11", weights=not_vgg)
    assert set(VGG_NAMES) == {f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")}
    with pytest.raises(ValueError, match="unknown weights"):
        vgg_weights_file("vgg16", "NOPE")


def test_no_download_attempted(tmp_path, monkeypatch):
    # Any network use would go through torch.hub; make it fail loudly.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def boom(*args, **kwargs):
        raise AssertionError("load_vgg tried to download")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", boom)
    monkeypatch.setattr(torch.hub, "download_url_to_file", boom)
    for name in ("vgg11", "vgg19_bn"):
        with pytest.raises(FileNotFoundError):
            load_vgg(name)
    assert not os.listdir(tmp_path)
