"""The smoothed attribution map (``map_sigma``, ``map_fill_sigma``): answers checked against scipy.

``invnb.inverse.gaussian_smooth`` must equal ``scipy.ndimage.gaussian_filter``
(default ``mode="reflect"``, ``truncate=4``) per image; ``map_sigma`` must
change the map only (never the inverse features), and the paper setting must
stay unsmoothed.
"""

import numpy as np
import pytest
import torch
from scipy import ndimage

from invnb import LayerwiseInverse
from invnb.inverse import attribution_map
from invnb.inverse.maps import gaussian_kernel1d, gaussian_smooth

TOL = 1e-5  # float32 against scipy's float64 on values in [0, 1]


def _scipy(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    return torch.from_numpy(np.stack([ndimage.gaussian_filter(m.double().numpy(), sigma) for m in maps])).float()


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0, 3.0, 25.0])  # 25: radius 100 > the 20 x 13 image
def test_gaussian_smooth_equals_scipy(sigma):
    maps = torch.rand(3, 20, 13, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(gaussian_smooth(maps, sigma), _scipy(maps, sigma), atol=TOL, rtol=0)


def test_a_single_pixel_spreads_as_the_kernel():
    maps = torch.zeros(1, 21, 21)
    maps[0, 10, 10] = 1.0
    out = gaussian_smooth(maps, 1.5)
    k = gaussian_kernel1d(1.5)
    r = (len(k) - 1) // 2
    torch.testing.assert_close(out[0, 10 - r:11 + r, 10 - r:11 + r], torch.outer(k, k), atol=1e-7, rtol=0)
    assert abs(out.sum().item() - 1.0) < 1e-5  # mass kept away from the borders


def test_constant_map_stays_constant_and_images_do_not_mix():
    maps = torch.rand(4, 16, 16, generator=torch.Generator().manual_seed(1))
    maps[2] = 0.7
    out = gaussian_smooth(maps, 2.0)
    torch.testing.assert_close(out[2], torch.full((16, 16), 0.7), atol=1e-6, rtol=0)
    for i in range(4):
        torch.testing.assert_close(out[i:i + 1], gaussian_smooth(maps[i:i + 1], 2.0), atol=1e-6, rtol=0)


def test_gaussian_smooth_rejects_bad_input():
    with pytest.raises(ValueError, match="sigma"):
        gaussian_smooth(torch.rand(1, 8, 8), 0.0)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_smooth(torch.rand(1, 8, 8), float("nan"))
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        gaussian_smooth(torch.rand(1, 3, 8, 8), 1.0)


def _sparse_pair(seed=2):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 16, 16, generator=g)
    return x * (torch.rand(2, 1, 16, 16, generator=g) > 0.7), x


def _normalised(a):
    return a / a.flatten(1).amax(1).clamp_min(1e-30)[:, None, None]


def test_attribution_map_blur_is_the_normalised_scipy_blur_of_the_raw_map():
    x_hat, x = _sparse_pair()
    raw = (x_hat.abs() * x.abs()).sum(1)
    want = _normalised(_scipy(raw, 2.0))
    got = attribution_map(x_hat, x, "abs_x", sigma=2.0, smoothing="blur")
    torch.testing.assert_close(got, want, atol=TOL, rtol=0)


def test_attribution_map_weight_is_the_map_times_its_scipy_blur():
    x_hat, x = _sparse_pair(3)
    raw = _normalised((x_hat.abs() * x.abs()).sum(1))  # the scale cancels in the normalisation
    want = _normalised(raw * _scipy(raw, 3.0))
    for kw in ({"smoothing": "weight"}, {}):  # "weight" is the default way
        got = attribution_map(x_hat, x, "abs_x", sigma=3.0, **kw)
        torch.testing.assert_close(got, want, atol=TOL, rtol=0)
    assert torch.equal(got == 0, raw == 0)  # zero exactly where nothing is kept


def test_weight_prefers_a_dense_region_to_an_isolated_pixel():
    # an isolated pixel of value 1 against a 6x6 block of 0.8: the raw map peaks on the pixel,
    # the weighted map on the block
    x = torch.ones(1, 1, 32, 32)
    x_hat = torch.zeros(1, 1, 32, 32)
    x_hat[0, 0, 3, 3] = 1.0
    x_hat[0, 0, 18:24, 18:24] = 0.8
    raw = attribution_map(x_hat, x, "abs")
    weighted = attribution_map(x_hat, x, "abs", sigma=3.0)
    assert raw[0, 3, 3] > 1 - 1e-6 and raw[0, 18:24, 18:24].max() < 0.81
    assert weighted[0, 3, 3] < 0.5 and weighted[0, 18:24, 18:24].max() > 1 - 1e-6


def test_attribution_map_checks_smoothing():
    x_hat, x = _sparse_pair()
    with pytest.raises(ValueError, match="smoothing"):
        attribution_map(x_hat, x, "abs", sigma=1.0, smoothing="median")


def test_sigma_0_leaves_the_map_and_an_empty_map_stays_empty():
    x_hat, x = _sparse_pair()
    raw = (x_hat.abs() * x.abs()).sum(1)
    for mode in ("weight", "blur"):
        torch.testing.assert_close(attribution_map(x_hat, x, "abs_x", sigma=0, smoothing=mode),
                                   _normalised(raw), atol=1e-6, rtol=0)
        assert attribution_map(torch.zeros_like(x), x, "abs_x", sigma=2.0, smoothing=mode).abs().max() == 0
    assert attribution_map(torch.zeros_like(x), x, "abs_x", sigma=2.0).abs().max() == 0  # stays empty


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), True, "2"])
def test_map_sigma_is_checked(tiny_vgg, bad):
    with pytest.raises(ValueError, match="map_sigma"):
        LayerwiseInverse(tiny_vgg, map_sigma=bad)


def test_map_smoothing_is_checked(tiny_vgg):
    with pytest.raises(ValueError, match="map_smoothing"):
        LayerwiseInverse(tiny_vgg, map_smoothing="box")


def test_map_sigma_changes_the_map_only(tiny_vgg, tiny_batch):
    x = tiny_batch[:3]
    plain = dict(map_fill_sigma=0, map_clip=1)
    a = LayerwiseInverse(tiny_vgg, mask_weight=0.5, max_iter=30, map_sigma=0, **plain).invert(x)
    for mode in ("weight", "blur"):
        b = LayerwiseInverse(tiny_vgg, mask_weight=0.5, max_iter=30, map_sigma=1.5, map_smoothing=mode,
                             **plain).invert(x)
        for fa, fb in zip(a.features, b.features):
            if fa is not None:
                assert torch.equal(fa, fb)
        torch.testing.assert_close(b.attribution,
                                   attribution_map(b.input, x, "abs_x", sigma=1.5, smoothing=mode))
        assert (a.attribution - b.attribution).abs().max() > 1e-3  # the smoothing did something


def test_map_sigma_is_deterministic_and_batch_independent_on_cpu(tiny_vgg, tiny_batch):
    x = tiny_batch[:4]
    inv = LayerwiseInverse(tiny_vgg, mask_weight="auto", auto_weights=(0.5, 2.0), max_iter=30, map_sigma=2.0)
    one = inv.invert(x)
    assert torch.equal(one.attribution, inv.invert(x).attribution)  # same machine, same run: bitwise
    single = torch.cat([inv.invert(x[i:i + 1]).attribution for i in range(len(x))])
    assert (one.attribution - single).abs().max() <= 1e-6


def test_paper_setting_is_not_smoothed(tiny_vgg, tiny_batch):
    inv = LayerwiseInverse.paper(tiny_vgg, max_iter=30)
    assert inv.map_sigma == 0.0 and inv.map_fill_sigma == 0.0 and inv.map_clip == 1.0
    x = tiny_batch[:2]
    res = inv.invert(x)
    torch.testing.assert_close(res.attribution, attribution_map(res.input, x, "ratio"), atol=1e-7, rtol=0)


def _numpy_clip(maps: torch.Tensor, q: float) -> torch.Tensor:
    out = []
    for m in maps.double().numpy():
        kept = m[m > 0]
        out.append(np.minimum(m, np.quantile(kept, q)) if kept.size else m)
    return torch.from_numpy(np.stack(out)).float()


def test_default_map_is_the_clipped_weighted_abs_x_plus_its_faint_fill(tiny_vgg, tiny_batch):
    from invnb.inverse import FILL_SHARE
    from invnb.inverse.settings import (
        DEFAULT_MAP_CLIP,
        DEFAULT_MAP_FILL_SIGMA,
        DEFAULT_MAP_SIGMA,
        DEFAULT_MAP_SMOOTHING,
    )

    inv = LayerwiseInverse(tiny_vgg, mask_weight=0.5, max_iter=20)
    assert (inv.attribution, inv.map_sigma, inv.map_smoothing, inv.map_fill_sigma, inv.map_clip) == (
        "abs_x", DEFAULT_MAP_SIGMA, DEFAULT_MAP_SMOOTHING, DEFAULT_MAP_FILL_SIGMA, DEFAULT_MAP_CLIP)
    assert DEFAULT_MAP_SIGMA > 0 and DEFAULT_MAP_SMOOTHING == "weight" and DEFAULT_MAP_FILL_SIGMA > 0
    assert 0 < DEFAULT_MAP_CLIP < 1 and 0 < FILL_SHARE < 1e-3  # below the pointing game's tolerance
    x = tiny_batch[:2]
    res = inv.invert(x)
    raw = _numpy_clip(attribution_map(res.input, x, "abs_x"), DEFAULT_MAP_CLIP)
    want = _normalised(raw * _scipy(raw, DEFAULT_MAP_SIGMA)) + FILL_SHARE * _normalised(_scipy(raw, 12.0))
    torch.testing.assert_close(res.attribution, _normalised(want), atol=TOL * FILL_SHARE, rtol=1e-5)


def test_auto_mask_weight_map_is_smoothed_too(tiny_vgg, tiny_batch):
    """The "auto" path (the default) builds its map apart from the fixed-weight one: it must be
    the same weighted map, ``a * G_sigma(a)`` with the scipy blur, max-normalised."""
    x = tiny_batch[:2]
    inv = LayerwiseInverse(tiny_vgg, mask_weight="auto", auto_weights=(0.5, 2.0), max_iter=20, map_sigma=2.0,
                           map_fill_sigma=0, map_clip=1)
    res = inv.invert(x)
    raw = attribution_map(res.input, x, "abs_x")
    assert raw.flatten(1).amax(dim=1).max() > 0  # an image kept something: the check is not vacuous
    want = raw * _scipy(raw, 2.0)
    torch.testing.assert_close(res.attribution, _normalised(want), atol=TOL, rtol=0)
    assert (res.attribution - raw).abs().max() > 1e-3  # and the smoothing did something


def test_fill_ranks_the_unkept_pixels_by_nearness_and_moves_the_map_by_at_most_its_share():
    """A 4x4 kept block in a 40x40 image: without the fill every other pixel ties at 0; with it they
    rank by distance from the block, each below every kept pixel, and no value moves by more
    than ``FILL_SHARE`` of the maximum (the added key is ``FILL_SHARE * G_fill(a) / max``)."""
    from invnb.inverse import FILL_SHARE

    x = torch.ones(1, 1, 40, 40)
    x_hat = torch.zeros(1, 1, 40, 40)
    x_hat[0, 0, 10:14, 10:14] = 1.0
    plain = attribution_map(x_hat, x, "abs", sigma=3.0)
    filled = attribution_map(x_hat, x, "abs", sigma=3.0, fill_sigma=8.0)
    assert (plain[0, 20:, 20:] == 0).all()
    row = filled[0, 12, 14:]  # moving right, away from the block
    assert (row > 0).all() and (row[1:] < row[:-1]).all()
    assert row.max() <= FILL_SHARE * (1 + 1e-5)
    kept = plain[0] > 0
    assert filled[0][kept].min() > filled[0][~kept].max()
    assert (filled - plain).abs().max() <= FILL_SHARE * (1 + 1e-5)
    want = _normalised(plain + FILL_SHARE * _normalised(_scipy(attribution_map(x_hat, x, "abs"), 8.0)))
    torch.testing.assert_close(filled, want, atol=1e-9, rtol=1e-5)
    assert attribution_map(torch.zeros_like(x), x, "abs", sigma=3.0, fill_sigma=8.0).abs().max() == 0


@pytest.mark.parametrize("bad", [-1.0, float("nan"), True])
def test_map_fill_sigma_is_checked(tiny_vgg, bad):
    with pytest.raises(ValueError, match="map_fill_sigma"):
        LayerwiseInverse(tiny_vgg, map_fill_sigma=bad)
    with pytest.raises(ValueError, match="map_fill_sigma"):
        attribution_map(*_sparse_pair(), "abs", fill_sigma=bad)


@pytest.mark.parametrize("q", [0.5, 0.9, 1.0])
def test_clip_is_numpy_quantile_of_the_kept_values_per_image(q):
    from invnb.inverse.maps import clip_at_quantile

    x_hat, x = _sparse_pair(4)
    x_hat[1] = 0  # an empty map stays empty
    raw = (x_hat.abs() * x.abs()).sum(1)
    torch.testing.assert_close(clip_at_quantile(raw, q), _numpy_clip(raw, q), atol=1e-6, rtol=1e-6)
    got = attribution_map(x_hat, x, "abs_x", clip=q)
    torch.testing.assert_close(got, _normalised(_numpy_clip(raw, q)), atol=1e-6, rtol=1e-6)
    assert got[1].abs().max() == 0


def test_clip_moves_the_maximum_from_a_bright_pixel_to_the_dense_region():
    # a 6x6 block of 0.5 with one bright pixel of 1.0 touching it: a * G(a) peaks on the bright
    # pixel; clipped at the 90th percentile of the kept values (0.5), it peaks inside the block
    x = torch.ones(1, 1, 32, 32)
    x_hat = torch.zeros(1, 1, 32, 32)
    x_hat[0, 0, 10:16, 10:16] = 0.5
    x_hat[0, 0, 10, 16] = 1.0
    plain = attribution_map(x_hat, x, "abs", sigma=3.0)
    clipped = attribution_map(x_hat, x, "abs", sigma=3.0, clip=0.9)
    assert plain[0].argmax() == 10 * 32 + 16
    r, c = divmod(int(clipped[0].argmax()), 32)
    assert 11 <= r <= 14 and 11 <= c <= 14


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.5, float("nan"), True])
def test_map_clip_is_checked(tiny_vgg, bad):
    with pytest.raises(ValueError, match="map_clip"):
        LayerwiseInverse(tiny_vgg, map_clip=bad)
    with pytest.raises(ValueError, match="map_clip"):
        attribution_map(*_sparse_pair(), "abs", clip=bad)
