"""The inverse as a captum Attribution and a Quantus explain_func: the libraries' own tools run on it unchanged."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

from invnb._utils.classes import predicted_classes
from invnb.attribution import InverseAttribution, quantus_explain_func
from invnb.eval import mass_in_mask
from invnb.inverse import LayerwiseInverse

# The tiny random model gives the default ("auto") an empty inverse (its class needs nothing of
# the image, see the sanity checks): a fixed weight keeps the maps non-trivial here.
KW = {"mask_weight": 0.3}


@pytest.fixture(scope="module")
def setup(tiny_vgg, tiny_batch):
    x = tiny_batch[:3]
    classes = predicted_classes(tiny_vgg, x)
    ref = LayerwiseInverse(tiny_vgg, **KW).attribute(x, target=classes)  # (3, 16, 16)
    assert float(ref.amax()) > 0
    return tiny_vgg, x, classes, ref


def test_captum_attribution_is_a_captum_attribution_shaped_like_inputs(setup):
    from captum.attr import Attribution

    model, x, classes, ref = setup
    inv = InverseAttribution(model, **KW)
    assert isinstance(inv, Attribution) and inv.forward_func is model
    attr = inv.attribute(x, target=classes)
    assert attr.shape == x.shape
    # the map itself on every channel, equal to the package's inverse
    torch.testing.assert_close(attr[:, 0], ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(attr[:, 2], attr[:, 0], atol=0, rtol=0)
    # tuple in, tuple out (captum's convention)
    out = inv.attribute((x,), target=classes)
    assert isinstance(out, tuple) and len(out) == 1 and out[0].shape == x.shape
    # the inverse input, signed, shaped like x and inside the consistency box |x_hat| <= |x|
    xh = InverseAttribution(model, output="inverse_input", **KW).attribute(x, target=classes)
    assert xh.shape == x.shape and bool((xh.abs() <= x.abs() + 1e-5).all())


def test_captum_bad_arguments(setup):
    model, x, _, _ = setup
    with pytest.raises(ValueError, match="output"):
        InverseAttribution(model, output="grad", **KW)
    with pytest.raises(ValueError, match="additional_forward_args"):
        InverseAttribution(model, **KW).attribute(x, additional_forward_args=(1,))
    with pytest.raises(ValueError, match="one input tensor"):
        InverseAttribution(model, **KW).attribute((x, x))


def test_captum_infidelity_and_sensitivity_run_unchanged(setup):
    from captum.metrics import infidelity, sensitivity_max

    model, x, classes, _ = setup
    inv = InverseAttribution(model, **KW)
    attr = inv.attribute(x, target=classes)

    def perturb(inputs):
        noise = torch.randn(inputs.shape, generator=torch.Generator().manual_seed(0)) * 0.1
        return noise, inputs - noise

    inf = infidelity(model, perturb, x, attr, target=classes, n_perturb_samples=4)
    assert inf.shape == (3,) and bool(torch.isfinite(inf).all()) and bool((inf >= 0).all())
    # sensitivity: a deterministic explanation barely moves under a 1e-7 perturbation, but does under 0.5
    tiny = sensitivity_max(inv.attribute, x, target=classes, perturb_radius=1e-7, n_perturb_samples=2)
    big = sensitivity_max(inv.attribute, x, target=classes, perturb_radius=0.5, n_perturb_samples=2)
    assert tiny.shape == (3,) and bool(torch.isfinite(big).all())
    assert float(tiny.max()) < 0.05 < float(big.max())


def test_captum_visualisation_runs_unchanged(setup):
    from captum.attr import visualization as viz

    model, x, classes, _ = setup
    attr = InverseAttribution(model, **KW).attribute(x[:1], target=classes[:1])
    img = x[0].permute(1, 2, 0).numpy()
    img = (img - img.min()) / (img.max() - img.min())
    fig, ax = viz.visualize_image_attr(attr[0].permute(1, 2, 0).numpy(), img, method="blended_heat_map",
                                       sign="absolute_value", use_pyplot=False)
    assert fig is not None and ax is not None


def test_quantus_explain_func_shape_and_values(setup):
    model, x, classes, ref = setup
    a = quantus_explain_func(model, x.numpy(), classes.numpy(), **KW)
    assert a.shape == (3, 1, 16, 16) and a.dtype == np.float32
    np.testing.assert_allclose(a[:, 0], ref.numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="channel first"):
        quantus_explain_func(model, x[0].numpy(), classes.numpy(), **KW)


def test_quantus_metric_runs_on_the_explain_func(setup):
    quantus = pytest.importorskip("quantus")
    model, x, classes, ref = setup
    s = torch.zeros(3, 1, 16, 16)
    s[:, :, 4:12, 3:10] = 1  # a box "object" (7 x 8 px)
    metric = quantus.RelevanceMassAccuracy(disable_warnings=True, display_progressbar=False)
    scores = metric(model=model, x_batch=x.numpy(), y_batch=classes.numpy(), a_batch=None, s_batch=s.numpy(),
                    explain_func=quantus_explain_func, explain_func_kwargs=dict(KW), device="cpu")
    # Quantus normalises by the max and takes |.| by default: the share of mass is unchanged
    expected = mass_in_mask(ref, s[:, 0].bool()).numpy()
    np.testing.assert_allclose(np.asarray(scores, dtype=float), expected, atol=1e-5)
