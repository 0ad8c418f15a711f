"""invnb.sr.ground_truth: the protocol on tiny networks, a known answer, and re-deriving its numbers."""

import json

import numpy as np
import pytest
import torch

from invnb.models import VDSR
from invnb.sr import (
    SR_NETWORKS,
    GroundTruthConfig,
    SRNetwork,
    chirp_window,
    derived_numbers,
    refresh_derived,
    rounded,
    run_ground_truth,
)

GRATINGS = dict(frequencies=[0.05, 0.15, 0.35], orientations=[0.0], phases=[0.0], contrasts=[0.4])


def tiny_vdsr(seed=0, zero_residual=False):
    torch.manual_seed(seed)
    model = VDSR(depth=3, channels=4).eval()
    if zero_residual:
        with torch.no_grad():
            model.output.weight.zero_()
    return model


def config(**kw):
    base = dict(scales=(2,), settings=(), chirp_size=64, images=("camera",), lam_steps=4, response=GRATINGS)
    return GroundTruthConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def run():
    torch.set_num_threads(1)
    return run_ground_truth(tiny_vdsr(), config(settings=("default",)))


def test_a_run_records_every_part_for_the_network(run):
    result, maps = run
    assert result["network"] == "vdsr" and result["lam"]["receptive_radius"] == 3
    rec = result["scales"]["2"]
    assert rec["lr_nyquist"] == pytest.approx(0.25)
    assert [r["source"] for r in rec["images"]] == ["chirp", "embedded"] and rec["images"][1]["name"] == "camera"
    assert set(rec["mean_error"]) == {"chirp", "photographs"}
    assert set(rec["attribution"]) == {"default", "LAM"} and len(rec["lam_windows"]) == 3
    assert 0 < rec["attribution"]["default"]["amount"] <= 1
    assert set(rec["agreement"]) == {"default", "LAM"} and set(rec["agreement_photographs"]) == {"default", "LAM"}
    assert {"grating_error_above_bicubic", "below_bicubic", "error"} <= set(rec["findings"])
    assert {"x2_default_attribution", "x2_lam_dense", "x2_x"} <= set(maps) and maps["x2_x"].shape == (64, 64)
    json.dumps(rounded(result))  # JSON-ready


def test_the_derived_numbers_follow_from_the_stored_curves(run):
    """What a stored (rounded, JSON) record re-derives is what the run derived."""
    result, _ = run
    stored = json.loads(json.dumps(rounded(result)))
    again = refresh_derived(stored)["scales"]["2"]
    rec = result["scales"]["2"]
    assert again["findings"]["grating_error_above_bicubic"] == rec["findings"]["grating_error_above_bicubic"]
    for name, agr in rec["agreement"].items():
        for key, rho in agr["spearman"].items():
            assert again["agreement"][name]["spearman"][key] == pytest.approx(rho, abs=1e-3, nan_ok=True)
    assert derived_numbers(rec, 2).keys() == {"agreement", "agreement_photographs", "agreement_grating_error",
                                              "findings"}


def test_a_network_that_adds_nothing_is_bicubic():
    """A residual network predicting a zero residual: gain, grating error and per-band error equal bicubic's,
    and no finding lists a frequency."""
    result, _ = run_ground_truth(tiny_vdsr(zero_residual=True), config(lam_steps=2))
    rec = result["scales"]["2"]
    resp = np.asarray(rec["response"]["gain"]["model"]), np.asarray(rec["response"]["gain"]["bicubic"])
    np.testing.assert_allclose(resp[0], resp[1], atol=1e-6)
    f = rec["findings"]
    assert f["below_bicubic"] == [] and f["grating_error_above_bicubic"] == [] and f["gain_above_1"] == []
    for group, curves in rec["mean_error"].items():
        np.testing.assert_allclose(curves["model"], curves["bicubic"], rtol=1e-4, err_msg=group)  # float32 net
    img = rec["images"][1]
    assert img["psnr_model"] == pytest.approx(img["psnr_bicubic"], abs=0.01)


def test_the_network_is_a_switch(monkeypatch):
    """A second network is one registry entry; the run uses its SR estimate (here: no residual) and label."""
    model = tiny_vdsr(seed=1)
    plain = SRNetwork("Plain", lambda **kw: model, lambda path, **kw: model, SR_NETWORKS["vdsr"].checkpoint,
                      residual=False, settings={"default": "vdsr"})
    monkeypatch.setitem(SR_NETWORKS, "plain", plain)
    result, _ = run_ground_truth(model, config(network="plain", settings=("default",), lam_steps=2))
    assert result["network"] == "plain"
    rec = result["scales"]["2"]
    assert max(rec["response"]["gain"]["model"]) < 0.5  # the residual alone: not the image
    with pytest.raises(ValueError, match="settings"):
        config(network="plain", settings=("paper",))
    with pytest.raises(ValueError, match="unknown SR network"):
        config(network="srgan")


def test_chirp_windows_sit_on_the_diagonal_at_their_frequency():
    size, rate = 128, 256.0
    for f in (0.05, 0.1, 0.15):
        h, w = chirp_window(f, rate, 16, size)
        centre = h + 8
        assert h == w and abs(np.hypot(centre, centre) / (rate * np.pi) - f) < 16 / (rate * np.pi)
    assert chirp_window(0.5, rate, 16, size) == (size - 18, size - 18)  # kept inside the image
