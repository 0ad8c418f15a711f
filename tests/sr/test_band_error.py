"""invnb.sr.band_error: per-band error spectra recover errors planted in known bands."""

import numpy as np
import pytest

from invnb.sr import (
    DEFAULT_EDGES,
    BandError,
    band_error,
    chirp_band_error,
    chirp_frequencies,
    chirp_image,
    mean_relative_error,
    radial_power,
)


def _bandpass(img, lo, hi):
    n, m = img.shape
    fr = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.fftfreq(m)[None, :])
    return np.real(np.fft.ifft2(np.fft.fft2(img) * ((fr >= lo) & (fr < hi))))


@pytest.fixture(scope="module")
def hr():
    return np.random.default_rng(0).standard_normal((128, 128))


def test_a_planted_band_error_is_recovered_exactly_on_a_periodic_image(hr):
    """sr = hr - 0.5 * (hr's own 0.2-0.3 band): relative error 0.25 in those bands, 0 elsewhere."""
    err = band_error(hr - 0.5 * _bandpass(hr, 0.2, 0.3), hr, window=False)
    c, rel = err.centers, err.relative
    inside = (c > 0.2) & (c < 0.3)
    np.testing.assert_allclose(rel[inside], 0.25, rtol=1e-10)
    np.testing.assert_allclose(rel[~inside], 0.0, atol=1e-20)


def test_a_planted_band_error_is_recovered_with_the_window(hr):
    err = band_error(hr - 0.5 * _bandpass(hr, 0.2, 0.3), hr)
    c, rel = err.centers, err.relative
    np.testing.assert_allclose(rel[(c > 0.23) & (c < 0.27)], 0.25, rtol=0.01)  # away from the band's edges
    assert (rel[(c < 0.16) | (c > 0.34)] < 1e-4).all()  # the window's leakage stays within ~2 bins
    assert rel.argmax() in np.where((c > 0.2) & (c < 0.3))[0]


def test_perfect_and_empty_results(hr):
    assert np.nanmax(band_error(hr, hr).relative) == 0.0
    # a flat result (all content lost) has relative error 1 in every band
    np.testing.assert_allclose(band_error(np.full_like(hr, hr.mean()), hr, window=False).relative, 1.0, rtol=1e-10)
    np.testing.assert_allclose(band_error(np.zeros_like(hr), hr).relative, 1.0, rtol=1e-10)


def test_radial_power_counts_and_parseval():
    img = np.random.default_rng(1).standard_normal((32, 40))
    p, n = radial_power(img, edges=[0, 0.8], window=False)  # one ring holding every frequency
    assert n[0] == img.size
    assert p[0] == pytest.approx(((img - img.mean()) ** 2).sum(), rel=1e-12)
    p2, _ = radial_power(img, border=3)
    assert p2.shape == (DEFAULT_EDGES.size - 1,)


def test_chirp_band_error_puts_a_local_error_at_its_local_frequency():
    size, rate = 128, 256.0
    hr = chirp_image(size, rate)
    fy, fx = chirp_frequencies(hr.shape, rate)
    fr = np.hypot(fx, fy)
    planted = (fr >= 0.10) & (fr < 0.12)
    sr = hr + 0.1 * planted
    err = chirp_band_error(sr, hr, rate, margin=0)
    c, rel = err.centers, err.relative
    assert (rel[(c > 0.1) & (c < 0.12)] > 0).all()
    np.testing.assert_allclose(rel[(c < 0.1) | ((c > 0.12) & np.isfinite(rel))], 0.0, atol=1e-20)
    assert np.nanmax(chirp_band_error(hr, hr, rate).relative) == 0.0


def test_mean_relative_error_and_round_trip(hr):
    a = band_error(hr - 0.5 * _bandpass(hr, 0.2, 0.3), hr, window=False)
    b = band_error(hr - 1.0 * _bandpass(hr, 0.2, 0.3), hr, window=False)
    m = mean_relative_error([a, b])
    c = a.centers
    np.testing.assert_allclose(m[(c > 0.2) & (c < 0.3)], (0.25 + 1.0) / 2, rtol=1e-10)
    back = BandError.from_dict(a.to_dict())
    np.testing.assert_allclose(back.relative, a.relative)
    with pytest.raises(ValueError, match="edges"):
        mean_relative_error([a, band_error(hr, hr, edges=[0, 0.1, 0.5])])
    with pytest.raises(ValueError, match="at least one"):
        mean_relative_error([])


def test_band_error_bad_inputs(hr):
    with pytest.raises(ValueError, match="differ in shape"):
        band_error(hr[:-1], hr)
    with pytest.raises(ValueError, match="finite"):
        band_error(np.where(hr > 2, np.nan, hr), hr)
    with pytest.raises(ValueError, match="edges"):
        band_error(hr, hr, edges=[0.2, 0.1])
    with pytest.raises(ValueError, match="border"):
        band_error(hr, hr, border=64)
