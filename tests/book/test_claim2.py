"""Chapter 03's claim-2 numbers come from the bundled JSON (invnb.book.claim2), and its prose types none."""

import math
import re

import nbformat
import pytest
from conftest import REPO as ROOT

from invnb.book.claim2 import (agreement_table, claim2_findings, fidelity_findings, fidelity_table, follows,
                               provenance_note)
from invnb.book.results import load_json

RESULTS = ROOT / "data" / "results"
PAGES = ["notebooks/03_vdsr.ipynb", "notebooks/03b_vdsr_frequency.ipynb"]
MEASURED = re.compile(r"(?<![\w.])[-+]?\d*\.\d{2,}(?![\w.])")


@pytest.fixture(scope="module")
def truths():
    return {"vdsr": load_json(RESULTS / "sr_ground_truth" / "summary.json"),
            "srcnn": load_json(RESULTS / "sr_ground_truth_srcnn" / "summary.json")}


def test_claim2_findings_equal_the_json(truths):
    found = claim2_findings(truths)
    for net, truth in truths.items():
        for m in ("paper", "LAM", "default"):
            rhos = [r["agreement"][m]["spearman"]["gain_vs_bicubic"] for r in truth["scales"].values()]
            assert math.isclose(found[f"{net}_{m}_rho_lo"], min(rhos))
            assert math.isclose(found[f"{net}_{m}_rho_hi"], max(rhos))
            assert found[f"{net}_{m}_follows"] == follows(min(rhos))
        nyq = {s: r["lr_nyquist"] for s, r in truth["scales"].items()}
        above = [f for s, r in truth["scales"].items() for f in r["findings"]["gain_above_1"] if f < nyq[s]]
        assert (found[f"{net}_gain_above_1_text"].startswith("at no")) == (not above)
        assert found[f"{net}_max_gain"] >= 1 - 0.1


def test_tables_hold_every_row(truths):
    table = agreement_table(truths).splitlines()
    assert len(table) == 2 + 3 * len(truths)
    rho = truths["vdsr"]["scales"]["2"]["agreement"]["paper"]["spearman"]["gain_vs_bicubic"]
    assert f"{rho:.2f}" in table[2]
    fid = load_json(RESULTS / "vdsr_fidelity" / "summary.json")
    f = fidelity_findings(fid)
    runs = [r for r in fid["runs"] if r["setting"] == "default"]
    assert math.isclose(f["fid_default_corr_lo"], min(r["fidelity"]["correlation"] for r in runs))
    assert f["fid_default_n"] == len(runs)
    assert len(fidelity_table(fid).splitlines()) == 2 + len({(r["setting"], r["scale"]) for r in fid["runs"]})


def test_provenance_note_names_every_file(truths):
    text = provenance_note({"a.json": truths["vdsr"], "b.json": {"command": "python x.py"}})
    assert truths["vdsr"]["commit"][:7] in text and "records no commit" in text
    assert text.startswith(":::{admonition}") and ":class: dropdown" in text


@pytest.mark.parametrize("page", PAGES)
def test_prose_types_no_measured_number(page):
    nb = nbformat.read(ROOT / page, as_version=4)
    prose = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert MEASURED.findall(prose) == []
