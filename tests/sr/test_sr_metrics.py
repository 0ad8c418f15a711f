"""invnb.sr.metrics on constructed inputs with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from invnb.sr import PAIRS, da_de_table, mean_da_de_table, mse, psnr, shave, ssim


@pytest.fixture
def img():
    return np.random.default_rng(0).random((32, 40))


def test_identical_images(img):
    assert mse(img, img) == 0.0
    assert psnr(img, img, data_range=1.0) == math.inf
    assert ssim(img, img, data_range=1.0) == pytest.approx(1.0)


@pytest.mark.parametrize("offset", [0.1, 0.01, 1 / 255])
def test_constant_offset_has_known_mse_and_psnr(img, offset):
    assert mse(img, img + offset) == pytest.approx(offset**2, rel=1e-12)
    assert psnr(img, img + offset, data_range=1.0) == pytest.approx(-20 * math.log10(offset), rel=1e-12)
    # one grey level at peak 255 is 48.13 dB
    if offset == 1 / 255:
        assert psnr(img * 255, img * 255 + 1, data_range=255) == pytest.approx(20 * math.log10(255), rel=1e-12)


def test_units_are_explicit(img):
    other = np.clip(img + 0.05 * np.sin(np.arange(40)), 0, 1)
    assert psnr(img * 255, other * 255, data_range=255) == pytest.approx(psnr(img, other, data_range=1))
    assert ssim(img * 255, other * 255, data_range=255) == pytest.approx(ssim(img, other, data_range=1))
    with pytest.raises(TypeError):
        psnr(img, other)  # data_range is keyword-only and required
    with pytest.raises(ValueError, match="data_range"):
        psnr(img, other, data_range=0)


def test_border_is_shaved(img):
    other = img.copy()
    other[:3, :] += 0.5  # damage only the top 3 rows
    assert mse(img, other, border=3) == 0.0
    assert psnr(img, other, data_range=1, border=3) == math.inf
    assert mse(img, other, border=2) > 0
    assert shave(img, 3).shape == (26, 34)
    with pytest.raises(ValueError, match="11x11"):
        ssim(img, other, data_range=1, border=12)


def test_ssim_decreases_with_noise(img):
    noise = np.random.default_rng(5).standard_normal(img.shape)
    values = [ssim(img, img + s * noise, data_range=1) for s in (0.01, 0.05, 0.2)]
    assert values[0] < 1 and values[0] > values[1] > values[2]


def test_accepts_tensors_and_rejects_mismatch(img):
    t = torch.from_numpy(img)[None, None].float()
    assert mse(t, img) == pytest.approx(0.0, abs=1e-14)
    with pytest.raises(ValueError, match="shape"):
        mse(img, img[:-1])
    with pytest.raises(ValueError, match="single-channel"):
        mse(np.zeros((3, 8, 8)), np.zeros((3, 8, 8)))


def test_da_de_pairs_use_the_right_operands():
    rng = np.random.default_rng(1)
    x = rng.random((24, 24)) * 0.8
    y = (rng.random((24, 24)) - 0.5) * 0.1
    gt = x + y + 0.02          # dD: (x + y, gt) off by 0.02
    x_hat = x - 0.05           # dA off by 0.05
    y_hat = y + 0.01           # dB and dC off by 0.01; dE off by 0.01 against gt
    t = da_de_table(x, y, y_hat, x_hat, gt, scale=2)
    expected_rmse = {"dA": 0.05, "dB": 0.01, "dC": 0.01, "dD": 0.02, "dE": 0.01}
    for key, rmse in expected_rmse.items():
        assert t.mse[key] == pytest.approx(rmse**2, rel=1e-9), key
        assert t.psnr[key] == pytest.approx(-20 * math.log10(rmse), rel=1e-9), key
    assert list(PAIRS) == [r[0] for r in t.rows()]
    assert "dA" in str(t)


def test_da_de_perfect_inverse():
    rng = np.random.default_rng(2)
    x, y, gt = rng.random((20, 20)), rng.random((20, 20)) * 0.1, rng.random((20, 20))
    t = da_de_table(x, y, y, x, gt, scale=3)
    assert t.psnr["dA"] == t.psnr["dB"] == t.psnr["dC"] == math.inf
    assert t.mse["dA"] == 0.0 and t.ssim["dC"] == pytest.approx(1.0)
    assert t.psnr["dD"] == pytest.approx(t.psnr["dE"])


def test_mean_table():
    rng = np.random.default_rng(3)
    a = [rng.random((16, 16)) for _ in range(5)]
    t1 = da_de_table(a[0], a[1] * 0.1, a[2] * 0.1, a[3], a[4], 2)
    t2 = da_de_table(a[4], a[3] * 0.1, a[2] * 0.1, a[1], a[0], 2)
    m = mean_da_de_table([t1, t2])
    assert m.n_images == 2
    for k in PAIRS:
        assert m.psnr[k] == pytest.approx((t1.psnr[k] + t2.psnr[k]) / 2)
    assert mean_da_de_table([m, t1]).n_images == 3
    with pytest.raises(ValueError):
        mean_da_de_table([])
