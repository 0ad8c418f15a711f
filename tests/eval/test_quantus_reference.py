"""Quantus 0.6.0 as an independent reference for the localisation metrics invnb implements itself.

invnb.eval      Quantus                      agreement tested
-----------------  ---------------------------  -----------------------------------------------------
mass_in_mask       RelevanceMassAccuracy        equal to 1e-6 (float32 sums) on every map
pointing_game      PointingGame                 hit iff our score > 0; equal where the maximum is unique
                                                (on ties ours is the share of maxima inside, Quantus's 1
                                                if any is inside)

Maps: saliency, integrated gradients, occlusion and the default inverse of the
embedded model on 4 held-out synthetic images, plus constructed maps with ties.
Quantus is called with ``normalise=False, abs=False`` (the maps are non-negative
already; its max-normalisation would only rescale them). invnb's other metrics
(deletion/insertion AUC with its substrates, re-identification, amount of
activation) have no like-for-like Quantus metric and are not compared.
"""

import numpy as np
import pytest
import torch

from invnb.attribution import make_method
from invnb.datasets import make_shapes, normalize
from invnb.eval import mass_in_mask, pointing_game
from invnb.models import load_embedded_model

quantus = pytest.importorskip("quantus")

METHODS = {
    "saliency": {},
    "integrated_gradients": {"n_steps": 16},
    "occlusion": {"window": 8, "stride": 4},
    "inverse": {},
}


@pytest.fixture(scope="module")
def maps():
    model = load_embedded_model()
    data = make_shapes(4, seed=2_000_000)
    x = normalize(data.images)
    y = model(x).argmax(1)
    out = {name: make_method(name, model, **kw).attribute(x) for name, kw in METHODS.items()}
    return model, x, y, data.masks, out


def _quantus(metric_cls, model, x, y, a, s):
    metric = metric_cls(normalise=False, abs=False, disable_warnings=True, display_progressbar=False)
    return np.asarray(metric(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a[:, None].numpy(),
                             s_batch=s[:, None].float().numpy(), device="cpu"), dtype=float)


@pytest.mark.parametrize("name", list(METHODS))
def test_mass_in_mask_equals_relevance_mass_accuracy(maps, name):
    model, x, y, s, out = maps
    a = out[name]
    assert float(a.sum()) > 0
    theirs = _quantus(quantus.RelevanceMassAccuracy, model, x, y, a, s)
    np.testing.assert_allclose(mass_in_mask(a, s).numpy(), theirs, atol=1e-6)


@pytest.mark.parametrize("name", list(METHODS))
def test_pointing_game_agrees_with_quantus(maps, name):
    model, x, y, s, out = maps
    a = out[name]
    ours = pointing_game(a, s).numpy()
    theirs = _quantus(quantus.PointingGame, model, x, y, a, s)
    np.testing.assert_array_equal(ours > 0, theirs > 0.5)
    unique = (a == a.flatten(1).amax(1)[:, None, None]).flatten(1).sum(1).numpy() == 1
    np.testing.assert_allclose(ours[unique], theirs[unique])


def test_pointing_game_ties_differ_as_documented(maps):
    model, x, y, s, _ = maps
    # a map with two equal maxima, one inside and one outside the object
    a = torch.zeros(4, 64, 64)
    for i in range(4):
        inside = s[i].nonzero()[0]
        outside = (~s[i]).nonzero()[0]
        a[i, inside[0], inside[1]] = 1
        a[i, outside[0], outside[1]] = 1
    np.testing.assert_allclose(pointing_game(a, s).numpy(), 0.5)
    np.testing.assert_allclose(_quantus(quantus.PointingGame, model, x, y, a, s), 1.0)
    # a uniform map (Quantus refuses constant maps): ours scores the object's area fraction
    u = torch.full((4, 64, 64), 0.5)
    np.testing.assert_allclose(pointing_game(u, s).numpy(), s.flatten(1).float().mean(1).numpy(), atol=1e-6)
