"""Shared, seeded fixtures: tiny models that need no download."""

import copy
import os
from pathlib import Path

import pytest
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """Third-party test data (VDSR weights, Set5, ...): $INVNB_TEST_DATA or ../shared/data."""
    return Path(os.environ.get("INVNB_TEST_DATA", REPO.parent / "shared" / "data"))


def require_test_data(*parts: str) -> Path:
    """The third-party data folder, if it has ``parts`` (e.g. ``"vdsr", "vdsr.pth"``).

    Fails in CI and skips (with the reason) elsewhere when it is absent.
    """
    d = shared_data_dir()
    if not d.joinpath(*parts).exists():
        msg = f"third-party test data {'/'.join(parts) or 'folder'} not found under {d}; set INVNB_TEST_DATA to the folder"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return d


@pytest.fixture(autouse=True)
def _no_tf32():
    """Full float32 precision on CUDA during every test (:func:`invnb._utils.precision.full_precision`).

    cuDNN runs float32 convolutions in TF32 by default (10-bit mantissa, about
    1e-3 relative), which alone breaks batched-vs-unbatched and CPU-vs-CUDA
    comparisons at the tests' tolerances. No effect on a CPU.
    """
    from invnb._utils.precision import full_precision

    with full_precision():
        yield


@pytest.fixture(scope="session")
def test_data_dir() -> Path:
    """The third-party data folder (see `require_test_data`)."""
    return require_test_data()


class TinyVGG(nn.Module):
    """A VGG-shaped network small enough for exhaustive tests (16x16 inputs)."""

    def __init__(self, num_classes: int = 5, bn: bool = False):
        super().__init__()
        def block(cin, cout):
            layers = [nn.Conv2d(cin, cout, 3, padding=1)]
            if bn:
                layers.append(nn.BatchNorm2d(cout))
            return layers + [nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*block(3, 6), nn.MaxPool2d(2), *block(6, 8), *block(8, 8),
                                      nn.MaxPool2d(2))
        self.avgpool = nn.AdaptiveAvgPool2d((4, 4))
        self.classifier = nn.Sequential(nn.Linear(128, 32), nn.ReLU(inplace=True), nn.Dropout(),
                                        nn.Linear(32, 32), nn.ReLU(inplace=True), nn.Dropout(),
                                        nn.Linear(32, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def _randomise_bn(model, gen):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.1)


@pytest.fixture(scope="session")
def tiny_vgg():
    torch.manual_seed(0)
    return TinyVGG().eval()


@pytest.fixture(scope="session")
def tiny_vgg_bn():
    torch.manual_seed(1)
    model = TinyVGG(bn=True).eval()
    _randomise_bn(model, torch.Generator().manual_seed(2))
    return model


@pytest.fixture(scope="session")
def tiny_batch():
    return torch.randn(6, 3, 16, 16, generator=torch.Generator().manual_seed(3))


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread while a module runs (restored after): for modules of many small autograd ops,
    which two threads on a shared, loaded 2-core machine slowed 20-fold."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture(scope="session")
def model64(tiny_vgg):
    """`tiny_vgg` in float64, so that a batch and its sub-batches round alike."""
    return copy.deepcopy(tiny_vgg).double()


@pytest.fixture(scope="session")
def x64(tiny_batch):
    return tiny_batch.double()


def tiny_cnn(seed=0, classes=5, pool=nn.AdaptiveAvgPool2d):
    """A seeded two-conv classifier on 3-channel images, in eval mode; `pool` ends the features at 2x2."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(), pool(2),
        nn.Flatten(), nn.Linear(24, classes),
    ).eval()
