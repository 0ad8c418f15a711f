"""invnb.frequency: zigzag order, block DCT and the focused/unfocused split."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from invnb.frequency import (
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
