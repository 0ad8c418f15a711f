"""Tests of the widget explorer (invnb.book.explorer), driving its controls from Python."""

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

ipywidgets = pytest.importorskip("ipywidgets")

from invnb.book import ExplorerItem, InverseExplorer
from invnb.book.explorer import PREDICTED
from invnb.plot import colorize, to_png  # noqa: E402
from invnb.runs import ResultStore  # noqa: E402

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


@pytest.fixture(scope="module")
def small():
    """A tiny seeded conv classifier (3 classes) and 3 normalised 16x16 images."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(8 * 4 * 4, 3),
    ).eval()
    gen = torch.Generator().manual_seed(1)
    images = torch.rand(3, 3, 16, 16, generator=gen)
    x = (images - 0.5) / 0.25
    return model, x


def make(small, **kw):
    model, x = small
    kw.setdefault("mask_weights", [0.25, 1.0])
    return InverseExplorer(model, x, mean=MEAN, std=STD, class_names=["a", "b", "c"],
                           labels=torch.tensor([0, 1, 2]), size=32, inverse_kwargs={"max_iter": 50}, **kw)


def png_array(data: bytes) -> np.ndarray:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return np.asarray(Image.open(io.BytesIO(data)))


def test_colorize_is_monotone_in_brightness_and_bounded():
    rgb = colorize(np.linspace(0, 1, 50)[None, :])
    assert rgb.shape == (1, 50, 3) and rgb.min() >= 0 and rgb.max() <= 1
    brightness = rgb[0].sum(axis=1)
    assert np.all(np.diff(brightness) > 0)
    assert np.allclose(colorize(np.zeros((2, 2))), colorize(np.zeros((2, 2)))[0, 0])  # all-zero map: one colour


def test_to_png_roundtrip_and_nearest_enlargement():
    a = np.zeros((2, 3, 3))
    a[0, 0] = 1.0
    img = png_array(to_png(a, size=6))
    assert img.shape == (4, 6, 3)
    assert (img[:2, :2] == 255).all() and (img[2:, :] == 0).all()


def test_live_view_controls_update_the_panels(small):
    ex = make(small)
    ex.view()
    assert set(ex.controls) == {"image", "target", "layer", "mask_weight"}
    before = {n: p.value for n, p in ex.panels.items()}
    info_before = ex.info.value
    assert all(v[:4] == b"\x89PNG" for v in before.values())

    ex.controls["image"].value = 2  # another image: every panel changes
    after = {n: p.value for n, p in ex.panels.items()}
    assert all(after[n] != before[n] for n in before)
    assert ex.info.value != info_before and ex.info.value.startswith("image 2")
    assert ex.summary()["image"] == 2

    ex.controls["mask_weight"].value = 1.0  # another weight: the inverse changes, the image does not
    again = {n: p.value for n, p in ex.panels.items()}
    assert again["image"] == after["image"]
    assert ex.summary()["mask_weight"] == 1.0
    assert "mask_weight 1" in ex.info.value


def test_layer_change_redraws_features_without_recomputing(small, monkeypatch):
    ex = make(small)
    ex.view()
    calls = []
    original = InverseExplorer._compute
    monkeypatch.setattr(InverseExplorer, "_compute", lambda self, *a: calls.append(a) or original(self, *a))
    before = {n: p.value for n, p in ex.panels.items()}
    ex.controls["layer"].value = ex.layers[-1]
    after = {n: p.value for n, p in ex.panels.items()}
    assert calls == []  # cached: a layer change needs no new inverse
    assert after["inverse input"] == before["inverse input"] and after["attribution"] == before["attribution"]
    assert after["forward feature"] != before["forward feature"]
    # the last layer's map is smaller than the image: enlarged to the panel size
    assert png_array(after["inverse feature"]).shape[:2] == (32, 32)


def test_class_control_explains_the_chosen_class(small):
    ex = make(small)
    ex.view()
    assert ex.summary()["explained"] == ex.summary()["predicted"]
    other = (ex.summary()["predicted"] + 1) % 3
    ex.controls["target"].value = other
    s = ex.summary()
    assert s["explained"] == other and s["target"] == other
    assert "explaining <b>" + ["a", "b", "c"][other] in ex.info.value


def test_item_matches_the_engine(small):
    from invnb import LayerwiseInverse

    model, x = small
    ex = make(small)
    item = ex.item(1, PREDICTED, 0.25)
    res = LayerwiseInverse(model, mask_weight=0.25, max_iter=50).invert(x[1:2])
    np.testing.assert_allclose(item.attribution, res.attribution[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(item.inverse_input, res.input[0].numpy(), atol=1e-6)
    # forward and inverse maps are channel sums of |.|; the inverse never exceeds the forward
    # feature (the consistency box), except at the image itself where it is an attenuation too
    for k in ex.layers:
        assert np.all(item.inverse_maps[k] <= item.forward_maps[k] + 1e-5)


def test_static_view_links_controls_to_prerendered_panels(small):
    ex = make(small)
    view = ex.static_view(images=[0, 2])
    controls, layer, outer = view.children[0].children[0], view.children[1], view.children[2]
    assert isinstance(outer, ipywidgets.Stack) and len(outer.children) == 2
    assert all(isinstance(s, ipywidgets.Stack) and len(s.children) == 2 for s in outer.children)
    assert [o[1] for o in controls.options] == [0, 2]
    targets = {(id(link.source[0]), link.source[1], id(link.target[0])) for link in ex.links}
    assert all(link.target[1] == "selected_index" for link in ex.links)
    assert (id(controls), "index", id(outer)) in targets
    for weights in outer.children:
        assert any(src == id(view.children[0].children[1]) and tgt == id(weights) for src, _, tgt in targets)
    # every pre-rendered image is a PNG, and the layer stacks have one child per layer
    row = outer.children[1].children[1].children[0]
    feature_stack = row.children[4].children[1]
    assert len(feature_stack.children) == len(ex.layers)
    assert any(id(layer) == src and id(feature_stack) == tgt for src, _, tgt in targets)
    # the state serialises (this is what the notebook saves for the HTML book)
    state = ipywidgets.Widget.get_manager_state(drop_defaults=True)["state"]
    assert state[outer.model_id]["model_name"] == "StackModel"


def test_store_persists_and_resumes(small, tmp_path, monkeypatch):
    store = ResultStore(tmp_path, config={"test": 1})
    ex = make(small, store=store)
    first = ex.precompute(images=[0, 1])
    assert len(first.computed) == 4 and first.reused == []
    monkeypatch.setattr(InverseExplorer, "_compute", lambda *a: pytest.fail("recomputed a stored item"))
    ex2 = make(small, store=ResultStore(tmp_path, config={"test": 1}))
    second = ex2.precompute(images=[0, 1])
    assert second.computed == [] and len(second.reused) == 4
    a, b = ex.item(0, PREDICTED, 1.0), ex2.item(0, PREDICTED, 1.0)
    np.testing.assert_array_equal(a.attribution, b.attribution)
    assert a.scalars == b.scalars and set(a.inverse_maps) == set(b.inverse_maps)


def test_item_roundtrip_through_store_format():
    item = ExplorerItem(np.ones((3, 4, 4)), np.eye(4), {0: np.ones((4, 4)), 5: np.ones((2, 2))},
                        {0: np.zeros((4, 4)), 5: np.zeros((2, 2))}, {"explained": 1})
    out = item.to_store()
    back = ExplorerItem.from_store(out["arrays"], out["scalars"])
    assert set(back.forward_maps) == {0, 5} and set(back.inverse_maps) == {0, 5}
    np.testing.assert_array_equal(back.inverse_input, item.inverse_input)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(mean=MEAN), "both mean and std"),
        (dict(class_names=["only one"]), "1 class names"),
        (dict(mask_weights=[]), "mask_weights"),
        (dict(inverse_kwargs={"mask_weight": 1}), "through mask_weights"),
    ],
)
def test_bad_arguments_say_what_is_wrong(small, kwargs, match):
    model, x = small
    with pytest.raises(ValueError, match=match):
        InverseExplorer(model, x, **kwargs)


def test_bad_input_shape_and_targets(small):
    model, x = small
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        InverseExplorer(model, x[0])
    ex = make(small)
    with pytest.raises(ValueError, match="target must be"):
        ex.item(0, 7)
    with pytest.raises(IndexError):
        ex.item(5)


def test_views_show_the_colour_scale(small):
    import ipywidgets

    from invnb.plot import colour_scale_html
    from invnb.plot.images import MAP_CMAP

    html_text = colour_scale_html()
    assert "linear-gradient" in html_text and html_text.count("rgb(") == len(MAP_CMAP)
    ex = make(small)
    static = ex.static_view(images=[0])
    assert isinstance(static.children[-1], ipywidgets.HTML) and static.children[-1].value == html_text
    live = ex.view()
    assert live.children[-1].value == html_text
