"""invnb.sr.lam: Local Attribution Maps - completeness of the path integral, known answers, batching, errors."""

import numpy as np
import pytest
import torch
from scipy.ndimage import correlate
from torch import nn

from invnb.sr import (
    LocalAttributionMap,
    blur,
    blur_path_visibility,
    diffusion_index,
    gaussian_kernel,
    gradient_magnitude,
    whole_image_target,
    window_target,
)


def smooth_cnn(seed=0):
    """A small float64 CNN with smooth activations (receptive radius 2), mapping (N, 1, H, W) to itself."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 1, 3, padding=1)).double()
    return net.eval()


@pytest.fixture(scope="module")
def x():
    return torch.rand(3, 1, 28, 30, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


def test_blur_is_the_truncated_gaussian_with_mirrored_borders(x):
    k = gaussian_kernel(1.2, 9)
    assert k.shape == (9, 9) and k.sum() == pytest.approx(1.0) and k[4, 4] == k.max()
    ref = correlate(x[0, 0].numpy(), k, mode="mirror")  # scipy's "mirror" is torch's "reflect"
    np.testing.assert_allclose(blur(x, 1.2, 9)[0, 0].numpy(), ref, atol=1e-14)
    torch.testing.assert_close(blur(x, 0.0, 9), x)


def test_the_attributions_sum_to_the_change_of_the_target(x):
    """Completeness of path integrated gradients: sum = T(F(x)) - T(F(baseline)), error O(1 / steps^2)."""
    net = smooth_cnn()
    errs = []
    for steps in (4, 32):
        res = LocalAttributionMap(net, steps=steps, window=8).attribute(x, target=(6, 9))
        change = res.target_input - res.target_baseline
        assert (change.abs() > 1e-3).all()
        errs.append((res.delta.abs() / change.abs()).max().item())
        assert res.attributions.sum(dim=(1, 2, 3)).double() - change == pytest.approx(res.delta.numpy(), abs=1e-9)
    assert errs[1] < 1e-3 and errs[1] < errs[0] / 10


def test_identity_and_a_linear_target_give_input_minus_baseline_in_the_window(x):
    lam = LocalAttributionMap(nn.Identity(), steps=3, window=5)

    def window_sum(out):
        return out[:, :, 4:9, 6:11].sum(dim=(1, 2, 3))

    res = lam.attribute(x, target=window_sum)
    diff = x - lam.baseline(x)
    expected = torch.zeros_like(x)
    expected[:, :, 4:9, 6:11] = diff[:, :, 4:9, 6:11]
    torch.testing.assert_close(res.attributions, expected, atol=1e-12, rtol=0)
    assert res.delta.abs().max() < 1e-12


def test_attribution_stays_inside_the_receptive_field(x):
    """The 4x4 window at (10, 10) reads output pixels 10..14 (the gradient uses the next row and column);
    with the network's receptive radius 2 they depend on input pixels 8..16, and only those are attributed
    (the blur makes the path, it is not part of the model)."""
    res = LocalAttributionMap(smooth_cnn(), steps=4, window=4).attribute(x[:1], target=(10, 10))
    a = res.attributions[0, 0].abs()
    inside = torch.zeros_like(a, dtype=torch.bool)
    inside[8:17, 8:17] = True
    assert a[~inside].max() == 0
    assert a[8, 12] > 0 and a[16, 12] > 0 and a[12, 8] > 0 and a[12, 16] > 0


def test_batch_independence_and_internal_batch_size(x):
    lam = LocalAttributionMap(smooth_cnn(), steps=6, window=8)
    whole = lam.attribute(x, target=(5, 5))
    alone = torch.cat([lam.attribute(x[i:i + 1], target=(5, 5)).attributions for i in range(3)])
    torch.testing.assert_close(whole.attributions, alone, atol=1e-12, rtol=0)
    chunked = lam.attribute(x, target=(5, 5), batch_size=4)
    torch.testing.assert_close(whole.attributions, chunked.attributions, atol=1e-12, rtol=0)
    assert whole.attributions.shape == x.shape and whole.delta.shape == (3,)


def test_the_receptive_field_crop_gives_the_same_attributions():
    """The smooth CNN's output pixel depends on inputs within 2 pixels: LAM on the crop is LAM on the whole."""
    net = smooth_cnn()
    z = torch.rand(2, 1, 48, 52, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    for h, w in ((20, 24), (0, 3), (30, 35)):
        full = LocalAttributionMap(net, steps=5, window=8).attribute(z, target=(h, w))
        crop = LocalAttributionMap(net, steps=5, window=8, receptive_radius=2).attribute(z, target=(h, w))
        torch.testing.assert_close(crop.attributions, full.attributions, atol=1e-12, rtol=0)
        torch.testing.assert_close(crop.target_input, full.target_input, atol=1e-12, rtol=0)
        torch.testing.assert_close(crop.delta, full.delta, atol=1e-12, rtol=0)
    # a radius too small for the network is not exact: the crop's zero padding reaches the window
    kw = dict(steps=5, window=8, kernel_size=3)
    short = LocalAttributionMap(net, receptive_radius=0, **kw).attribute(z, target=(20, 24))
    exact = LocalAttributionMap(net, **kw).attribute(z, target=(20, 24))
    assert (short.attributions - exact.attributions).abs().max() > 1e-6
    with pytest.raises(ValueError, match="does not fit"):
        LocalAttributionMap(net, window=8, receptive_radius=2).attribute(z, target=(40, 0))
    with pytest.raises(ValueError, match="receptive_radius"):
        LocalAttributionMap(net, receptive_radius=-1)


def test_no_gradients_are_left_on_the_model(x):
    net = smooth_cnn()
    LocalAttributionMap(net, steps=2).attribute(x[:1], target=whole_image_target(margin=2))
    assert all(p.grad is None for p in net.parameters())


def test_whole_image_target_is_the_sum_of_a_tiling_of_windows():
    net = smooth_cnn()
    z = torch.rand(1, 1, 17, 17, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    lam = LocalAttributionMap(net, steps=5, window=8)
    tiles = sum(lam.attribute(z, target=(h, w)).attributions for h in (0, 8) for w in (0, 8))
    torch.testing.assert_close(lam.attribute(z, target=whole_image_target()).attributions, tiles,
                               atol=1e-12, rtol=0)


def test_gradient_magnitude_known_values():
    ramp = torch.arange(5, dtype=torch.float64).expand(1, 1, 4, 5) * 3.0  # d/dw = 3, d/dh = 0
    g = gradient_magnitude(ramp)
    assert g.shape == (1, 1, 3, 4)
    torch.testing.assert_close(g, torch.full_like(g, 3.0), atol=1e-9, rtol=0)
    assert window_target(0, 0, 2)(ramp).item() == pytest.approx(12.0, abs=1e-8)


def test_diffusion_index_known_values():
    one = np.zeros((1, 1, 8, 8))
    one[0, 0, 3, 3] = -2.0
    assert diffusion_index(one)[0] == pytest.approx(100 / 64)
    assert diffusion_index(torch.ones(2, 3, 4, 4))[1] == pytest.approx(100.0)
    half = np.zeros((1, 10, 10))
    half[0, :5] = 1.0  # half the pixels equal, half zero: Gini 0.5
    assert diffusion_index(half)[0] == pytest.approx(50.0)
    assert np.isnan(diffusion_index(np.zeros((1, 1, 3, 3)))[0])


def test_blur_path_visibility():
    f = np.linspace(0, 0.5, 51)
    v = blur_path_visibility(f)
    assert v[0] == pytest.approx(0.0, abs=1e-12) and (np.diff(v) > 0).all() and v[-1] < 1.0 + 1e-12
    # continuous Gaussian's fraction where the sampled kernel matches it (sigma 1.2 is well sampled below 0.3)
    np.testing.assert_allclose(v[:31], 1 - np.exp(-2 * np.pi**2 * 1.44 * f[:31] ** 2), atol=1e-3)
    # separable: a diagonal wave vector keeps the product of the two axes' fractions
    assert blur_path_visibility(0.1, 0.1) == pytest.approx(1 - (1 - blur_path_visibility(0.1)) ** 2)


def test_lam_bad_inputs(x):
    net = smooth_cnn()
    lam = LocalAttributionMap(net, steps=2, window=8)
    with pytest.raises(ValueError, match="does not fit"):
        lam.attribute(x, target=(25, 0))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        lam.attribute(x[0], target=(0, 0))
    with pytest.raises(TypeError, match="floating-point"):
        lam.attribute((x * 255).long(), target=(0, 0))
    with pytest.raises(TypeError, match="target"):
        lam.attribute(x, target="centre")
    with pytest.raises(ValueError, match="one score per image"):
        lam.attribute(x, target=lambda out: out.sum())
    with pytest.raises(ValueError, match="NaN"):
        lam.attribute(x.masked_fill(x > 0.99, float("nan")), target=(0, 0))
    with pytest.raises(ValueError, match="batch_size"):
        lam.attribute(x, target=(0, 0), batch_size=0)
    for kwargs, match in ((dict(sigma=0.0), "sigma"), (dict(steps=0), "steps"), (dict(kernel_size=8), "odd"),
                          (dict(window=0), "window")):
        with pytest.raises(ValueError, match=match):
            LocalAttributionMap(net, **kwargs)
    with pytest.raises(TypeError, match="callable"):
        LocalAttributionMap("vdsr")
    with pytest.raises(ValueError, match="too small"):
        blur(torch.rand(1, 1, 3, 3), 1.2, 9)
