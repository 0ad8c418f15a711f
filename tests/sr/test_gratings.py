"""invnb.sr.gratings: gratings, aliases, the sinusoid fit and the frequency finder, against closed-form answers."""

import numpy as np
import pytest

from invnb.sr import (
    alias_frequencies,
    fit_sinusoid,
    fold_frequency,
    grating,
    grating_frequency,
    make_sr_sample,
    sinusoid_distance,
    sr_input,
    wave_vector,
)


@pytest.mark.parametrize("f, theta", [(0.137, 33.0), (0.04, 0.0), (0.31, 90.0), (0.22, 120.0), (0.45, 10.0)])
def test_a_gratings_measured_frequency_is_its_generating_frequency(f, theta):
    g = grating(96, f, orientation=theta, phase=17.0, contrast=0.5)
    fx, fy = grating_frequency(g)
    kx, ky = wave_vector(f, theta)
    if ky < 0 or (ky == 0 and kx < 0):
        kx, ky = -kx, -ky
    assert fx == pytest.approx(kx, abs=1e-8) and fy == pytest.approx(ky, abs=1e-8)
    assert np.hypot(fx, fy) == pytest.approx(f, abs=1e-8)


def test_grating_values_and_bad_inputs():
    g = grating((40, 50), 0.1, orientation=0, phase=0, contrast=0.4, mean=0.3)
    assert g.shape == (40, 50)
    assert g[0, 0] == pytest.approx(0.5) and g.min() == pytest.approx(0.1) and g.max() == pytest.approx(0.5)
    np.testing.assert_allclose(g[:, 10], g[0, 10])  # vertical stripes: constant down a column
    with pytest.raises(ValueError, match="frequency"):
        grating(32, 0.6)
    with pytest.raises(ValueError, match="contrast"):
        grating(32, 0.1, contrast=-1)


def test_fit_sinusoid_recovers_amplitude_and_phase_and_needs_its_nuisances():
    k, q = wave_vector(0.2, 0.0), wave_vector(0.3, 0.0)  # q: the x2 alias of k (0.5 - 0.2)
    i, j = np.mgrid[0:64, 0:64]
    img = 0.5 + 0.2 * np.cos(2 * np.pi * 0.2 * j + 0.7) + 0.3 * np.cos(2 * np.pi * 0.3 * j - 1.1)
    c = fit_sinusoid(img, k, border=4, nuisance=[q])
    assert abs(c) == pytest.approx(0.2, abs=1e-12) and np.angle(c) == pytest.approx(0.7, abs=1e-12)
    # without the nuisance the Hann-weighted fit is still close, without the window not at all:
    assert abs(abs(fit_sinusoid(img, k, border=4)) - 0.2) < 0.02
    assert abs(abs(fit_sinusoid(img, k, border=4, window=False)) - 0.2) > 1e-4
    stack = np.stack([img, 2 * img])
    np.testing.assert_allclose(fit_sinusoid(stack, k, 4, [q]), [c, 2 * c], atol=1e-12)
    with pytest.raises(ValueError, match="border"):
        fit_sinusoid(img, k, border=31)


def test_alias_frequencies_of_a_scale():
    k = wave_vector(0.2, 0.0)
    al = alias_frequencies(k, 2, harmonics=())
    # k + (1/2, 0) = 0.7 -> -0.3, k + (0, 1/2) = (0.2, 0.5), k + (1/2, 1/2) = (-0.3, 0.5)
    assert len(al) == 3
    assert any(np.allclose(np.abs(a), [0.3, 0.0]) for a in al)
    assert all(np.hypot(*a) > 0 for a in al)
    assert alias_frequencies(k, 1, harmonics=()) == []


def test_sr_input_is_the_sr_samples_pipeline():
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (37, 41), dtype=np.uint8)
    for scale in (2, 3, 4):
        s = make_sr_sample(grey, scale)
        np.testing.assert_allclose(sr_input(s.im_gt_y / 255.0, scale), s.im_b_y / 255.0, atol=1e-12)


def test_folding_and_the_distance_between_sinusoids():
    np.testing.assert_allclose(fold_frequency([0.7, -0.6, 0.5, 1.0]), [-0.3, 0.4, -0.5, 0.0], atol=1e-12)
    assert sinusoid_distance((0.2, 0.1), (-0.2, -0.1)) == pytest.approx(0.0, abs=1e-12)  # one real sinusoid
    assert sinusoid_distance((0.2, 0.0), (1.2, 0.0)) == pytest.approx(0.0, abs=1e-12)  # one on the pixel grid
    assert sinusoid_distance((0.2, 0.0), (0.25, 0.0)) == pytest.approx(0.05)
