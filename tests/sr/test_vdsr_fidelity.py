"""The "vdsr" setting reproduces VDSR's output (embedded VDSR, the 64-px chirp at x2), and invnb.sr.fidelity
measures it (tiny random VDSRs; the bundled run read back)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from invnb.datasets import sha256sum
from invnb.inverse import LayerwiseInverse, setting_kwargs
from invnb.inverse.settings import VDSR_MASK_WEIGHT, VDSR_MAX_ITER, VDSR_OUTPUT_FIT, VDSR_OUTPUT_FIT_EVALS
from invnb.models import EMBEDDED_VDSR_CHECKPOINT, VDSR, load_embedded_vdsr
from invnb.paths import RESULTS_DIR
from invnb.sr import invert_chirp, output_fidelity
from invnb.sr.fidelity import (
    FIDELITY_SETTINGS,
    compare_tensors,
    fidelity_images,
    fidelity_record,
    fidelity_report_text,
    layer_fidelity,
    matching_weight,
    run_fidelity,
)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model():
    return load_embedded_vdsr()


@pytest.fixture(scope="module")
def default_chirp(model):
    return invert_chirp(model, 2, size=64, inverse=LayerwiseInverse.from_setting(model, "vdsr", keep_features=False))


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return VDSR(depth=5, channels=6).eval()


def _x(n=32, seed=0):
    return torch.rand(1, 1, n, n, generator=torch.Generator().manual_seed(seed))


def test_the_vdsr_setting_reproduces_the_output(default_chirp):
    f = default_chirp.output_fidelity  # y_hat = VDSR(x_hat) against y = VDSR(x), border 2 shaved
    assert f["correlation"] >= 0.95
    assert 0.85 <= f["norm_ratio"] <= 1.15
    assert not default_chirp.failed
    # an attenuation of the input that keeps part of it
    assert (abs(default_chirp.x_hat) <= abs(default_chirp.x) + 1e-6).all() and 0.5 < default_chirp.amount < 1


def test_the_walk_alone_does_not(model):
    # the failure the output fit repairs: the same walk without it
    walk = invert_chirp(model, 2, size=64, inverse=LayerwiseInverse.from_setting(
        model, "vdsr", output_fit=None, keep_features=False))
    assert walk.output_fidelity["correlation"] < 0.9 and walk.output_fidelity["norm_ratio"] > 1.15


def test_the_registry_holds_the_faithful_setting_and_the_papers_unchanged(tiny):
    assert setting_kwargs("vdsr") == {"max_iter": VDSR_MAX_ITER, "mask_weight": VDSR_MASK_WEIGHT,
                                      "output_fit": VDSR_OUTPUT_FIT, "output_fit_evals": VDSR_OUTPUT_FIT_EVALS}
    inv = LayerwiseInverse.from_setting(tiny, "vdsr")
    assert (inv.max_iter, inv.mask_weight, inv.output_fit, inv.output_fit_evals) == (
        VDSR_MAX_ITER, VDSR_MASK_WEIGHT, VDSR_OUTPUT_FIT, VDSR_OUTPUT_FIT_EVALS)
    paper = LayerwiseInverse.from_setting(tiny, "vdsr_paper")
    assert paper.output_fit is None and (paper.penalty, paper.solver, paper.mask_weight, paper.scale_bound) == (
        "l2", "paper", 0.15, True)


def test_the_default_record_is_what_the_engine_computes(tiny):
    name, x, rate = next(fidelity_images(2, chirp_sizes=(64,)))
    assert (name, tuple(x.shape), rate) == ("chirp64", (1, 1, 64, 64), 128.0)
    rec = fidelity_record(tiny, x, 2, "default", chirp_rate=rate)
    with torch.no_grad():
        y = tiny(x)
    res = LayerwiseInverse.from_setting(tiny, "vdsr").invert(x, target=y)
    with torch.no_grad():
        y_hat = tiny(res.input)
    want = output_fidelity(y[0, 0].double().numpy(), y_hat[0, 0].double().numpy(), 2)
    for key, value in want.items():
        assert rec["fidelity"][key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    assert rec["fit_evaluations"] == int(res.stats[-1].iterations[0])
    assert rec["seconds"] == pytest.approx(rec["walk_seconds"] + rec["fit_seconds"])
    assert rec["forward_equivalents"] == pytest.approx(rec["seconds"] / rec["forward_seconds"])
    assert {"profile", "band", "lr_nyquist"} <= set(rec) and rec["lr_nyquist"] == pytest.approx(0.25)
    walk = fidelity_record(tiny, x, 2, "walk")
    assert "fit_evaluations" not in walk and "profile" not in walk
    with pytest.raises(ValueError, match="needs the mask_weight"):
        fidelity_record(tiny, x, 2, "matched")
    with pytest.raises(ValueError, match="setting must be one of"):
        fidelity_record(tiny, x, 2, "fast")
    with pytest.raises(ValueError, match=r"\(1, 1, H, W\)"):
        fidelity_record(tiny, torch.rand(2, 1, 8, 8), 2, "walk")


def test_matching_weight_finds_the_amount_of_a_known_weight(tiny):
    x = _x(seed=1)
    with torch.no_grad():
        y = tiny(x)
    from invnb.eval import amount_of_activation

    inv = LayerwiseInverse.from_setting(tiny, "vdsr", output_fit=None, mask_weight=2.0)
    amount = float(amount_of_activation(inv.invert(x, target=y).input, x)[0])
    w, got = matching_weight(tiny, x, amount, tol=0.005, steps=20)
    assert abs(got - amount) <= 0.005 and 0.01 <= w <= 30


def test_run_fidelity_and_its_report(tiny):
    seen = []
    runs = run_fidelity(tiny, [2], ["walk", "default"], chirp_sizes=(64,), callback=seen.append)
    assert runs == seen and [(r["image"], r["setting"]) for r in runs] == [("chirp64", "walk"), ("chirp64", "default")]
    result = {"command": "python scripts/vdsr_fidelity.py", "commit": "abc", "weights": "tiny", "threads": 1,
              "torch": torch.__version__, "runs": runs}
    text = fidelity_report_text(result)
    assert "chirp  x2 default  n=1" in text and "fit" in text.splitlines()[2]
    with pytest.raises(ValueError, match="'matched' needs 'paper' before it"):
        run_fidelity(tiny, [2], ["matched", "paper"])
    with pytest.raises(ValueError, match="unknown settings"):
        run_fidelity(tiny, [2], ["fast"])


def test_layer_fidelity_ends_at_the_output_fidelity_of_the_inverse_input(tiny):
    x = _x(seed=2)
    with torch.no_grad():
        y = tiny(x)
    inv = LayerwiseInverse.from_setting(tiny, "vdsr", output_fit=None)
    res = inv.invert(x, target=y)
    rows = layer_fidelity(inv, x, y, res)
    assert [r["k"] for r in rows] == sorted((k for k, layer in enumerate(inv.stack.layers)
                                             if isinstance(layer, torch.nn.Conv2d)), reverse=True)
    with torch.no_grad():
        corr, norm, rel = compare_tensors(y, tiny(res.input))
    assert rows[-1]["k"] == 0
    assert (rows[-1]["e2e_corr"], rows[-1]["e2e_norm"], rows[-1]["e2e_rel"]) == pytest.approx((corr, norm, rel))
    # the top convolution's end-to-end output is its own inverse feature's image: its local fit is the same measure
    top = rows[0]
    assert top["local_corr"] == pytest.approx(top["e2e_corr"], abs=1e-6)
    with pytest.raises(ValueError, match="keep_features=True"):
        lean = LayerwiseInverse.from_setting(tiny, "vdsr", output_fit=None, keep_features=False)
        layer_fidelity(lean, x, y, lean.invert(x, target=y))


def test_compare_tensors_known_answers():
    a = torch.arange(1.0, 7.0)
    assert compare_tensors(a, 2 * a) == pytest.approx((1.0, 2.0, 1.0))
    assert compare_tensors(a, -a)[0] == pytest.approx(-1.0)


@pytest.mark.parametrize("folder, settings", [("vdsr_fidelity", {"default", "walk", "paper"}),
                                              ("vdsr_fidelity_matched", {"paper", "matched"})])
def test_the_bundled_runs_are_complete_and_of_the_shipped_setting(folder, settings):
    result = json.loads((RESULTS_DIR / folder / "summary.json").read_text())
    assert result["weights_sha256"] == sha256sum(EMBEDDED_VDSR_CHECKPOINT)
    assert result["default_setting"] == setting_kwargs("vdsr")
    assert result["command"].startswith("python scripts/vdsr_fidelity.py")
    cells = {}
    for r in result["runs"]:
        assert r["setting"] in FIDELITY_SETTINGS and 0 < r["amount"] <= 1 and not r["failed"]
        cells.setdefault((r["image"], r["scale"]), set()).add(r["setting"])
    assert all(s == settings for s in cells.values()) and {s for _, s in cells} == {2, 3, 4}
    assert "means (photos: over images)" in fidelity_report_text(result)
    if any("profile" in r for r in result["runs"]):
        assert (RESULTS_DIR / folder / "chirp_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_curves_figure(tiny):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from invnb.plot.fidelity import plot_fidelity_curves

    result = json.loads((RESULTS_DIR / "vdsr_fidelity" / "summary.json").read_text())
    fig = plot_fidelity_curves(result)
    chirps = {r["image"] for r in result["runs"] if "profile" in r}
    assert len(fig.axes) == 3 * len(chirps)
    assert len(fig.axes[0].lines) == 3 + 1  # default, walk, paper, the Nyquist line
    with pytest.raises(ValueError, match="no chirp records"):
        plot_fidelity_curves({"runs": [r for r in result["runs"] if "profile" not in r]})
    plt.close("all")


@pytest.mark.slow
def test_at_the_paper_settings_amount(model, default_chirp):
    paper = invert_chirp(model, 2, size=64, inverse=LayerwiseInverse.from_setting(model, "vdsr_paper",
                                                                                  keep_features=False))
    assert abs(default_chirp.amount - paper.amount) <= 0.05
    assert default_chirp.output_fidelity["correlation"] >= paper.output_fidelity["correlation"] - 0.01
    assert np.isfinite(paper.output_fidelity["norm_ratio"])
