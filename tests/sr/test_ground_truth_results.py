"""The bundled SR ground-truth runs (data/results/sr_ground_truth: VDSR; sr_ground_truth_srcnn: SRCNN) are complete, for the shipped network, and
every number derived from its curves (agreements, findings) is what the package derives from them."""

import json

import numpy as np
import pytest

from invnb.datasets import sha256sum
from invnb.paths import RESULTS_DIR
from invnb.sr import FINDINGS_MARGIN, FrequencyResponse, derived_numbers, sr_network

FOLDERS = {"vdsr": RESULTS_DIR / "sr_ground_truth", "srcnn": RESULTS_DIR / "sr_ground_truth_srcnn"}


@pytest.fixture(scope="module", params=sorted(FOLDERS))
def summary(request):
    result = json.loads((FOLDERS[request.param] / "summary.json").read_text())
    assert result["network"] == request.param
    return result


def test_the_run_is_complete_and_for_the_shipped_network(summary):
    assert summary["command"].startswith("python scripts/sr_ground_truth.py")
    net = sr_network(summary["network"])
    assert summary["weights_sha256"] == sha256sum(net.checkpoint)
    assert sorted(summary["scales"], key=int) == ["2", "3", "4"]
    for name in ("response.png", "band_error.png", "agreement.png", "lam.png", "lam_maps.npz"):
        assert (FOLDERS[summary["network"]] / name).is_file(), name
    for rec in summary["scales"].values():
        assert rec["images"][0]["source"] == "chirp" and len(rec["images"]) >= 7  # chirp + the embedded images
        assert all(r["cpu_seconds"] > 0 for r in rec["images"])
        assert set(net.settings) | {"LAM"} <= set(rec["attribution"])
        lam = rec["attribution"]["LAM"]
        assert abs(lam["delta"]) < 0.01 * abs(lam["target_change"])  # the path integral is converged
        assert len(rec["lam_windows"]) == 3


def test_stored_gains_follow_from_the_stored_gratings(summary):
    for rec in summary["scales"].values():
        resp = FrequencyResponse.from_dict(rec["response"])
        np.testing.assert_allclose(resp.gain("model"), rec["response"]["gain"]["model"], rtol=1e-4)
        np.testing.assert_allclose(resp.gain("bicubic"), rec["response"]["gain"]["bicubic"], rtol=1e-4)


def test_stored_agreements_and_findings_follow_from_the_stored_curves(summary):
    for s, rec in summary["scales"].items():
        again = derived_numbers(rec, int(s))
        for key in ("agreement", "agreement_grating_error", "agreement_photographs"):
            for name, stored in rec[key].items():
                agr = again[key][name]
                for other, rho in stored["spearman"].items():
                    assert agr["spearman"][other] == pytest.approx(rho, abs=0.02, nan_ok=True), (s, key, name, other)
                band = agr["bands"]["attribution"]
                assert [band["lo"], band["hi"]] == pytest.approx([stored["bands"]["attribution"]["lo"],
                                                                  stored["bands"]["attribution"]["hi"]]), (s, name)
        f, stored = again["findings"], rec["findings"]
        assert stored["margin"] == pytest.approx(FINDINGS_MARGIN)
        for key in ("gain_above_1", "below_bicubic", "grating_error_above_bicubic"):
            assert stored[key] == pytest.approx(f[key]), (s, key)
        assert stored["half_gain"] == pytest.approx(f["half_gain"], rel=1e-4)


def test_no_grating_is_listed_where_both_errors_are_equal(summary):
    """Far above the LR Nyquist frequency both outputs have lost the grating (errors ~1): not a finding."""
    for rec in summary["scales"].values():
        resp = FrequencyResponse.from_dict(rec["response"])
        listed = np.isin(np.round(resp.frequencies, 6), np.round(rec["findings"]["grating_error_above_bicubic"], 6))
        assert (resp.error("model")[listed] - resp.error("bicubic")[listed] > FINDINGS_MARGIN).all()
