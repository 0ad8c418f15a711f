"""invnb.sr.frequency: zigzag order, block DCT and the focused/unfocused split."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from invnb.sr import (
    FrequencyProfile,
    attribution_ratio,
    block_dct,
    frequency_profile,
    high_band_share,
    image_patches,
    mean_frequency_profile,
    zigzag_indices,
)

# The zigzag sequence of the JPEG standard (ITU-T T.81, Figure A.6), as
# row-major indices of the 8x8 block.
JPEG_ZIGZAG = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
    12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
    35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
    58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
]  # fmt: skip


def _basis(u: int, v: int, n: int = 8) -> np.ndarray:
    """Orthonormal DCT-II basis image for vertical frequency u, horizontal v."""
    k = np.arange(n)

    def c(f):
        w = np.sqrt((1 if f == 0 else 2) / n)
        return w * np.cos(np.pi * (2 * k + 1) * f / (2 * n))

    return np.outer(c(u), c(v))


def test_zigzag_is_the_jpeg_order():
    zz = zigzag_indices(8)
    assert [tuple(p) for p in zz[:6]] == [(0, 0), (0, 1), (1, 0), (2, 0), (1, 1), (0, 2)]
    assert (zz[:, 0] * 8 + zz[:, 1]).tolist() == JPEG_ZIGZAG
    assert sorted((zz[:, 0] * 8 + zz[:, 1]).tolist()) == list(range(64))  # a permutation
    assert (np.diff(zz.sum(axis=1)) >= 0).all()  # frequency never decreases


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_zigzag_other_sizes_are_permutations(n):
    zz = zigzag_indices(n)
    assert sorted((zz[:, 0] * n + zz[:, 1]).tolist()) == list(range(n * n))


def test_dct_of_constant_patch_is_dc_only():
    coeffs = block_dct(np.full((8, 8), 0.3))
    assert coeffs[0, 0] == pytest.approx(8 * 0.3)
    coeffs[0, 0] = 0
    assert np.abs(coeffs).max() < 1e-14


@pytest.mark.parametrize("u, v", [(0, 1), (3, 2), (7, 7)])
def test_dct_of_basis_image_hits_one_band(u, v):
    coeffs = block_dct(_basis(u, v))
    expected = np.zeros((8, 8))
    expected[u, v] = 1.0
    np.testing.assert_allclose(coeffs, expected, atol=1e-12)


def test_dct_is_orthonormal():
    p = np.random.default_rng(0).random((3, 8, 8))
    assert (block_dct(p) ** 2).sum() == pytest.approx((p**2).sum())


def test_patches_drop_remainder_and_keep_layout():
    img = np.arange(20 * 27, dtype=float).reshape(20, 27)
    p = image_patches(img, 8)
    assert p.shape == (2, 3, 8, 8)
    np.testing.assert_array_equal(p[1, 2], img[8:16, 16:24])


def _split_scene():
    """Left half: high-frequency texture with high attribution; right half: smooth, low attribution."""
    img = np.full((32, 64), 0.5)
    img[:, :32] += 0.2 * np.tile(_basis(7, 6), (4, 4))
    img[:, 32:] += 0.2 * np.tile(_basis(0, 1), (4, 4))
    attribution = np.zeros_like(img)
    attribution[:, :32] = 1.0
    attribution[:, 32:] = 0.1
    return img, attribution


def test_focused_unfocused_split_on_constructed_attribution():
    img, attribution = _split_scene()
    prof = frequency_profile(img, attribution)
    assert prof.n_focused == 16 and prof.n_unfocused == 16
    band = {tuple(p): k for k, p in enumerate(zigzag_indices(8))}
    hi, lo = band[(7, 6)], band[(0, 1)]
    assert prof.focused[hi] == pytest.approx(0.2) and prof.focused[lo] == pytest.approx(0, abs=1e-12)
    assert prof.unfocused[lo] == pytest.approx(0.2) and prof.unfocused[hi] == pytest.approx(0, abs=1e-12)
    np.testing.assert_allclose(prof.all, (prof.focused + prof.unfocused) / 2)
    s = prof.summary()
    assert s["focused"] == pytest.approx(1.0) and s["unfocused"] == pytest.approx(0.0, abs=1e-12)
    # swapping the attribution swaps the curves
    swapped = frequency_profile(img, 1.1 - attribution)
    np.testing.assert_allclose(swapped.focused, prof.unfocused)


def test_threshold_is_mean_of_patch_means_and_ties_are_focused():
    img = np.random.default_rng(1).random((16, 16))
    att = np.zeros((16, 16))
    att[:8, :8] = 4.0  # one patch of four above the mean (1.0)
    prof = frequency_profile(img, att)
    assert (prof.n_focused, prof.n_unfocused) == (1, 3)
    flat = frequency_profile(img, np.ones((16, 16)))
    assert (flat.n_focused, flat.n_unfocused) == (4, 0) and np.isnan(flat.unfocused).all()


def test_mean_profile_skips_empty_groups():
    img = np.random.default_rng(2).random((16, 16))
    a = frequency_profile(img, np.ones((16, 16)))
    att = np.zeros((16, 16))
    att[:8] = 1
    b = frequency_profile(img, att)
    m = mean_frequency_profile([a, b])
    np.testing.assert_allclose(m.unfocused, b.unfocused)
    np.testing.assert_allclose(m.focused, (a.focused + b.focused) / 2)
    assert m.n_images == 2 and m.n_focused == a.n_focused + b.n_focused


def test_attribution_ratio_and_tensor_input():
    x = torch.full((1, 1, 8, 8), 0.5)
    x_hat = x * 0.25
    np.testing.assert_allclose(attribution_ratio(x_hat, x), 0.25 * 0.5 / (0.5 + 1e-6))
    with pytest.raises(ValueError, match="shape"):
        attribution_ratio(np.zeros((8, 8)), np.zeros((8, 9)))


def test_high_band_share():
    curve = np.zeros(64)
    curve[0] = 100  # DC does not count
    curve[1] = 3
    curve[40] = 1
    assert high_band_share(curve, cut=28) == pytest.approx(0.25)
    assert np.isnan(high_band_share(np.zeros(64)))
    with pytest.raises(ValueError):
        high_band_share(curve, cut=0)


def test_profile_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="shape"):
        frequency_profile(np.zeros((16, 16)), np.zeros((16, 8)))
    with pytest.raises(ValueError, match="smaller than one"):
        frequency_profile(np.zeros((4, 4)), np.zeros((4, 4)))
    assert isinstance(frequency_profile(np.zeros((8, 8)), np.ones((8, 8))), FrequencyProfile)


# ---------------------------------------------------------------------------
# Per-band retention and zigzag band lookup: known answers
# ---------------------------------------------------------------------------
from invnb.sr import band_retention, mean_band_retention, zigzag_band  # noqa: E402


def test_zigzag_band_of_known_coefficients():
    assert zigzag_band(0, 0) == 0 and zigzag_band(0, 1) == 1 and zigzag_band(1, 0) == 2
    assert zigzag_band(2, 0) == 3 and zigzag_band(1, 1) == 4 and zigzag_band(7, 7) == 63
    for k, (u, v) in enumerate(zigzag_indices(8)):
        assert zigzag_band(int(u), int(v)) == k
    with pytest.raises(ValueError, match="outside"):
        zigzag_band(8, 0)


@pytest.mark.parametrize("mode", ["magnitude", "projection"])
def test_retention_of_pure_cosine_patches(mode):
    """Patches of two DCT cosines; the inverse keeps one: retention 1 there, 0 in the other, NaN elsewhere."""
    rng = np.random.default_rng(0)
    kept, dropped = (1, 2), (5, 3)
    tiles_x, tiles_h = [], []
    for _ in range(12):
        a, b = rng.uniform(0.5, 2.0, 2) * rng.choice([-1, 1], 2)
        tiles_x.append(a * _basis(*kept) + b * _basis(*dropped))
        tiles_h.append(a * _basis(*kept))
    x = np.block([tiles_x[i * 4:(i + 1) * 4] for i in range(3)])  # (24, 32) image of 3x4 patches
    x_hat = np.block([tiles_h[i * 4:(i + 1) * 4] for i in range(3)])
    ret = band_retention(x_hat, x, mode=mode)
    kb, db = zigzag_band(*kept), zigzag_band(*dropped)
    assert ret[kb] == pytest.approx(1.0, abs=1e-9)
    assert ret[db] == pytest.approx(0.0, abs=1e-9)
    others = np.delete(np.arange(64), [kb, db])
    assert np.isnan(ret[others]).all()
    # averaging two copies changes nothing; a half-strength inverse halves the kept band
    np.testing.assert_allclose(mean_band_retention([(x_hat, x), (x_hat, x)], mode=mode), ret, equal_nan=True)
    assert band_retention(0.5 * x_hat, x, mode=mode)[kb] == pytest.approx(0.5, abs=1e-9)


def test_projection_retention_ignores_added_out_of_phase_content():
    x = np.tile(_basis(0, 3), (2, 2))
    x_hat = np.tile(_basis(0, 3) * 0.0 + 0.7 * _basis(3, 0), (2, 2))
    assert np.isnan(band_retention(x_hat, x)[zigzag_band(3, 0)])  # x has nothing in (3, 0)
    assert band_retention(x_hat, x, mode="projection")[zigzag_band(0, 3)] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="mode"):
        band_retention(x_hat, x, mode="phase")
    with pytest.raises(ValueError, match="differ in shape"):
        band_retention(x_hat[:8], x)


# ---------------------------------------------------------------------------
# The chirp: local frequency, binning, lowest band (known answers)
# ---------------------------------------------------------------------------
from invnb.sr import (
    bin_by_frequency,
    chirp_frequencies,
    chirp_hr,
    chirp_image,
    chirp_profiles,
    lowest_band,
    lr_nyquist,
)


def test_chirp_is_the_papers_image_and_keeps_its_frequency_range():
    np.testing.assert_array_equal(chirp_hr(512), chirp_hr(512, 1024))  # default rate 2 * size
    fy, fx = chirp_frequencies((64, 64), 128.0)
    assert fx[0, -1] == pytest.approx(512 / (1024 * np.pi)) and fy[-1, 0] == pytest.approx(fx[0, -1])
    with pytest.raises(ValueError, match="rate"):
        chirp_image(64, rate=-1)


def test_chirp_local_frequency_matches_zero_crossings():
    """Measured on the image: sign changes of sin(x^2/c) between x=a and x=b number
    the integral of 2 f over [a, b], i.e. (b^2 - a^2) / (c pi) for f = x / (c pi)."""
    size, rate = 512, 1024.0
    img = chirp_image(size, rate)
    row = img[size // 2 - 1] - img.mean()  # y = 256: sin(256^2/1024) = sin(64) is far from zero
    changes = np.diff(np.sign(row)) != 0  # change between pixel j and j+1, i.e. x = j + 1 .. j + 2
    _, fx = chirp_frequencies((1, size), rate)
    x = np.arange(1, size + 1)
    for a, b in [(100, 250), (250, 400), (400, 512)]:
        counted = changes[(x[:-1] >= a) & (x[:-1] < b)].sum()
        expected = 2 * np.trapezoid(fx[0][(x >= a) & (x <= b)], dx=1.0) if hasattr(np, "trapezoid") else \
            2 * np.trapz(fx[0][(x >= a) & (x <= b)], dx=1.0)
        assert expected == pytest.approx((b * b - a * a) / (rate * np.pi), rel=0.02)
        assert abs(counted - expected) <= 1.5, (a, b, counted, expected)
    assert lr_nyquist(2) == pytest.approx(0.25) and lr_nyquist(4) == pytest.approx(0.125)


def test_bin_by_frequency_recovers_a_step():
    freq = np.tile(np.linspace(0, 0.2, 100, endpoint=False), (10, 1))
    values = np.where(freq < 0.1, 1.0, 3.0)
    bins = bin_by_frequency(values, freq, [0.0, 0.05, 0.1, 0.15, 0.2])
    np.testing.assert_allclose(bins.mean, [1.0, 1.0, 3.0, 3.0])
    assert bins.count.sum() == 1000
    with pytest.raises(ValueError, match="increasing"):
        bin_by_frequency(values, freq, [0.1, 0.0])


@pytest.mark.parametrize("band", [(0.08, 0.10), (0.12, 0.14)])
def test_lowest_band_found_where_it_was_put(band):
    """An attribution that drops one radial-frequency region of the chirp: that band is found, with its depth."""
    rate, size = 512.0, 256
    fy, fx = chirp_frequencies((size, size), rate)
    fr = np.hypot(fx, fy)
    att = np.where((fr >= band[0]) & (fr < band[1]), 0.2, 1.0)
    prof = chirp_profiles(att, rate, margin=4)
    b = lowest_band(prof["radial"])
    assert b.lo == pytest.approx(band[0], abs=0.006) and b.hi == pytest.approx(band[1], abs=0.006)
    assert b.depth == pytest.approx(0.8, abs=0.05)
    assert b.above == pytest.approx(1.0, abs=0.05)  # it recovers above the band


def test_lowest_band_along_one_axis_and_at_the_top():
    rate, size = 512.0, 256
    fy, fx = chirp_frequencies((size, size), rate)
    att = np.where(fx > 0.12, 0.5, 1.0)  # high x-frequencies dropped: a fall-off, no recovery
    prof = chirp_profiles(att, rate, margin=4)
    bx = lowest_band(prof["x"])
    assert bx.lo == pytest.approx(0.12, abs=0.006) and bx.depth == pytest.approx(0.5, abs=0.02)
    assert np.isnan(bx.above)
    # along y the drop is spread evenly: no band is deeper than the rest
    assert lowest_band(prof["y"]).depth == pytest.approx(0.0, abs=0.02)


def test_coarsen_merges_bins_pixel_weighted():
    from invnb.sr import FrequencyBins

    b = FrequencyBins(edges=np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5]), mean=np.array([1.0, 3.0, np.nan, 2.0, 9.0]),
                      count=np.array([1, 3, 0, 2, 5]))
    c = b.coarsen(2)
    np.testing.assert_allclose(c.edges, [0.0, 0.2, 0.4])
    np.testing.assert_allclose(c.mean, [(1 + 9) / 4, 2.0])
    np.testing.assert_array_equal(c.count, [4, 2])
    with pytest.raises(ValueError, match="k must"):
        b.coarsen(0)
