"""invnb.sr.findings: the findings of planted gains and errors, with the margin that keeps noise out."""

import numpy as np
import pytest

from invnb.sr import DEFAULT_EDGES, FINDINGS_MARGIN, FrequencyResponse, findings, rounded

F = np.array([0.05, 0.15, 0.3, 0.4])


def planted(gain_model, gain_bic, err_model, err_bic, scale=2):
    one = (1, len(F), 1, 1)
    return FrequencyResponse(scale=scale, frequencies=F, orientations=np.zeros(1), phases=np.zeros(1),
                             contrasts=np.array([0.4]), model=np.reshape(gain_model, one).astype(complex),
                             bicubic=np.reshape(gain_bic, one).astype(complex), resolved=np.ones((len(F), 1), bool),
                             sizes=np.full(len(F), 64), border=8, error_model=np.reshape(err_model, one),
                             error_bicubic=np.reshape(err_bic, one), harmonics_model=np.zeros(one))


def test_frequencies_are_listed_only_beyond_the_margin():
    """Above the LR Nyquist frequency both errors are ~1: 1.003 against 1.0 is noise, 1.05 against 1.0 is not."""
    resp = planted(gain_model=[1.0, 1.02, 0.3, 0.1], gain_bic=[0.99, 0.9, 0.305, 0.2],
                   err_model=[0.05, 0.5, 1.003, 1.05], err_bic=[0.02, 0.6, 1.0, 1.0])
    f = findings(resp, {}, 2)
    assert FINDINGS_MARGIN == pytest.approx(0.01) and f["margin"] == pytest.approx(FINDINGS_MARGIN)
    assert f["grating_error_above_bicubic"] == pytest.approx([0.05, 0.4])
    assert f["gain_above_1"] == pytest.approx([0.15]) and f["below_bicubic"] == pytest.approx([0.4])
    assert f["max_gain"] == pytest.approx({"value": 1.02, "at": 0.15})
    assert findings(resp, {}, 2, margin=0.0)["grating_error_above_bicubic"] == pytest.approx([0.05, 0.3, 0.4])
    with pytest.raises(ValueError, match="margin"):
        findings(resp, {}, 2, margin=-0.1)


def test_the_worst_error_band_below_the_lr_nyquist_frequency():
    c = 0.5 * (DEFAULT_EDGES[1:] + DEFAULT_EDGES[:-1])
    bicubic = 0.1 + c  # rising with frequency
    model = 0.5 * bicubic + 0.3 * np.exp(-0.5 * ((c - 0.2) / 0.01) ** 2)  # better, except a bump at 0.2
    model[c > 0.3] = 5.0  # above the x2 LR Nyquist frequency: ignored by the bands
    resp = planted([1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0])
    worst = findings(resp, {"images": {"model": model.tolist(), "bicubic": bicubic.tolist()}}, 2)["error"]["images"]
    assert worst["error_band"]["lo"] <= 0.2 <= worst["error_band"]["hi"] <= 0.25
    assert worst["least_improvement_band"]["lo"] <= 0.2 <= worst["least_improvement_band"]["hi"]
    worse = np.array(worst["bands_worse_than_bicubic"])
    assert (worse > 0.18).all() and (worse[worse < 0.25] < 0.22).all() and (worse > 0.3).sum() == (c > 0.3).sum()
    assert worst["improvement_dB_above_nyquist"] < 0 < worst["improvement_dB_below_nyquist"]


def test_rounded_for_json():
    assert rounded({"a": (np.float32(0.1234567), np.nan), "b": [1, "x", float("inf")]}, 3) == \
        {"a": [0.123, None], "b": [1, "x", None]}
