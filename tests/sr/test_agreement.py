"""invnb.sr.agreement: agreement numbers of planted attribution, gain and error curves."""

import numpy as np
import pytest

from invnb.sr import (
    Band,
    band_error,
    chirp_image,
    chirp_profiles,
    extreme_band,
    frequency_agreement,
    frequency_response,
    lowest_band,
    overlap,
)

F = np.arange(0.005, 0.25, 0.01)  # centres of 0.01-wide bins below the x2 LR Nyquist frequency


def dip(f, at, width=0.02, depth=0.5):
    return 1 - depth * np.exp(-0.5 * ((f - at) / width) ** 2)


def test_extreme_band_is_lowest_band_for_a_minimum():
    rng = np.random.default_rng(0)
    prof = chirp_profiles(chirp_image(128) * rng.random((128, 128)), 256.0)["radial"]
    lb = lowest_band(prof)
    ok = prof.count >= max(1, int(0.2 * np.median(prof.count[prof.count > 0])))
    eb = extreme_band(prof.edges, prof.mean, "min", weights=prof.count, ok=ok)
    assert (eb.lo, eb.hi) == pytest.approx((lb.lo, lb.hi))
    assert eb.f_extreme == pytest.approx(lb.f_min) and eb.reference == pytest.approx(lb.reference)


def test_extreme_band_finds_a_planted_peak():
    edges = np.arange(0.0, 0.25 + 1e-9, 0.01)
    b = extreme_band(edges, 2 - dip(F, 0.155, width=0.01), "max")
    assert b.lo <= 0.155 <= b.hi and b.hi - b.lo <= 0.05 and b.value == pytest.approx(1.5, abs=1e-9)
    with pytest.raises(ValueError, match="kind"):
        extreme_band(edges, F, "median")
    with pytest.raises(ValueError, match="ref_max"):
        extreme_band(edges, F, ref_max=0.001)


def test_overlap():
    assert overlap(Band(0.1, 0.2, 0.15, 0, 1), Band(0.15, 0.25, 0.2, 0, 1)) == pytest.approx(0.05 / 0.15)
    assert overlap(Band(0.1, 0.2, 0.15, 0, 1), Band(0.2, 0.25, 0.22, 0, 1)) == 0.0


def test_agreement_when_the_explanation_points_at_the_networks_weak_band():
    att, gain, err = dip(F, 0.12), dip(F, 0.12, depth=0.3), 2 - dip(F, 0.12)
    agr = frequency_agreement((F, att), (F, gain), (F, err), scale=2)
    assert agr.spearman["gain"] == pytest.approx(1.0, abs=1e-3) and agr.spearman["error"] == pytest.approx(-1.0, abs=1e-3)
    assert agr.overlaps_band("gain") and agr.overlaps_band("error")
    assert agr.overlaps["gain"] > 0.5
    assert agr.bands["attribution"].lo <= 0.12 <= agr.bands["attribution"].hi
    d = agr.to_dict()
    assert d["overlap"] == {"gain": True, "error": True} and len(d["curves"]["gain"]) == F.size


def test_disagreement_when_the_weak_bands_differ():
    att, gain, err = dip(F, 0.08, width=0.01), dip(F, 0.2, width=0.01), 2 - dip(F, 0.2, width=0.01)
    agr = frequency_agreement((F, att), (F, gain), (F, err), scale=2)
    assert not agr.overlaps_band("gain") and not agr.overlaps_band("error")
    assert agr.spearman["gain"] < 0.5


def test_a_flat_gain_has_no_worst_band():
    """A gain within 2 % of 1 everywhere loses nothing: no band, no overlap; its range says so."""
    gain = 1 + 0.005 * np.sin(40 * F)
    agr = frequency_agreement((F, dip(F, 0.12)), (F, gain), (F, 2 - dip(F, 0.12)), scale=2)
    assert agr.bands["gain"] is None and not agr.overlaps_band("gain") and agr.overlaps_band("error")
    assert agr.ranges["gain"][1] - agr.ranges["gain"][0] < 0.011
    assert "gain [" in str(agr) and "band none" in str(agr)
    assert agr.to_dict()["bands"]["gain"] is None
    assert extreme_band(np.arange(0, 0.25 + 1e-9, 0.01), gain, min_depth=0.02) is None


def test_only_bins_below_the_lr_nyquist_frequency_count():
    f = np.arange(0.005, 0.5, 0.01)
    agr = frequency_agreement((f, 1 - f), (f, 1 - f), (f, f), scale=4)
    assert agr.centers.max() < 0.125 and agr.edges[-1] <= 0.125 + 1e-12
    assert agr.f_max == pytest.approx(0.125)


def test_curves_relative_to_bicubic_and_package_types():
    hr = np.random.default_rng(2).standard_normal((64, 64))
    rel_bic = band_error(np.zeros_like(hr), hr)  # relative error 1 everywhere
    rel = band_error(0.5 * hr, hr)  # 0.25 everywhere
    resp = frequency_response(lambda x: x, 2, frequencies=[0.01, 0.05, 0.1, 0.15, 0.2, 0.24], orientations=(0,),
                              phases=(0,), contrasts=(0.4,), border=16)
    prof = chirp_profiles(chirp_image(128), 256.0)["radial"]
    agr = frequency_agreement(prof, resp, rel, scale=2, gain_bicubic=(resp.frequencies, resp.gain("bicubic")),
                              error_bicubic=rel_bic)
    np.testing.assert_allclose(agr.curves["error_vs_bicubic"][np.isfinite(agr.curves["error_vs_bicubic"])], 0.25,
                               rtol=1e-10)
    np.testing.assert_allclose(agr.curves["gain_vs_bicubic"][np.isfinite(agr.curves["gain_vs_bicubic"])], 1.0)
    assert set(agr.spearman) == {"gain", "gain_vs_bicubic", "error", "error_vs_bicubic"}
    assert str(agr).startswith("x2 below 0.250")


def test_agreement_bad_inputs():
    with pytest.raises(ValueError, match="scale"):
        frequency_agreement((F, F), (F, F), (F, F), scale=0)
    with pytest.raises(ValueError, match="two usable"):
        frequency_agreement((F, F), (F, F), (F, F), scale=2, f_max=0.01)
    with pytest.raises(ValueError, match="increasing"):
        frequency_agreement((F[::-1], F), (F, F), (F, F), scale=2)
    with pytest.raises(ValueError, match="one length"):
        frequency_agreement((F, F[:-1]), (F, F), (F, F), scale=2)
