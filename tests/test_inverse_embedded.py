"""The inverse on the shipped embedded model and a few hundred freshly generated images."""

import pytest
import torch

from invnb import LayerwiseInverse
from invnb.models import load_embedded_model
from invnb.synthetic import make_shapes, normalize

N_IMAGES = 300
SEED = 424242  # not used in training


@pytest.fixture(scope="module")
def default_result():
    torch.manual_seed(0)
    model = load_embedded_model()
    x = normalize(make_shapes(N_IMAGES, seed=SEED).images)
    inv = LayerwiseInverse(model)
    return model, inv, x, inv.invert(x)


def test_default_inverse_input_is_reidentified(default_result):
    model, _, _, res = default_result
    with torch.no_grad():
        pred = model(res.input).argmax(1)
    rate = (pred == res.classes).float().mean().item()
    assert rate >= 0.99, f"only {rate:.3f} of inverse inputs give the explained class"
    assert not res.failed.any()
