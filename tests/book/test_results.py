"""The numbers the book's prose states come from the bundled JSON, never typed by hand.

The findings boxes and the rewritten pages glue every measured number
(``invnb.book.results``); these tests check that the glued values equal the
bundled files, and that those pages' prose holds no typed measurement.
"""

import math
import re

import nbformat
import pytest
from conftest import REPO as ROOT

from invnb.book.results import (BENCHMARK_TARGETS, benchmark_findings, benchmark_verdicts, chirp_findings, claim1_rows,
                                claim1_table, load_json, provenance_markdown, sanity_findings, targets_table)

RESULTS = ROOT / "data" / "results"
#: Pages whose prose states no measured number except through glue.
GLUED_PAGES = ["book/intro.md", "notebooks/02_tradeoff.ipynb", "notebooks/02b_benchmark.ipynb",
               "notebooks/02c_sanity.ipynb"]
#: A measured-looking number: a decimal with two or more digits after the point.
MEASURED = re.compile(r"(?<![\w.])[-+]?\d*\.\d{2,}(?![\w.])")


def _prose(path):
    if path.suffix == ".md":
        return path.read_text()
    nb = nbformat.read(path, as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def _strip_code_and_math(text):
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"\$\$.*?\$\$", "", text, flags=re.S)
    text = re.sub(r"\$[^$\n]+\$", "", text)
    return re.sub(r"`[^`]*`", "", text)


@pytest.mark.parametrize("page", GLUED_PAGES)
def test_prose_types_no_measured_number(page):
    found = MEASURED.findall(_strip_code_and_math(_prose(ROOT / page)))
    assert not found, f"{page}: glue these numbers from the bundled JSON instead: {found}"


@pytest.mark.parametrize("run", ["synthetic_benchmark", "synthetic_benchmark_resnet"])
def test_benchmark_findings_equal_the_json(run):
    results = load_json(RESULTS / run / "results.json")
    by = {r["method"]: r for r in results["rows"]}
    found = benchmark_findings(results)
    assert found["n_images"] == results["n_images"]
    for column in ("mass_in_mask", "pointing_game", "tradeoff_auc_soft"):
        assert found[f"inverse_{column}"] == pytest.approx(by["inverse"][column])
        assert found[f"raw_{column}"] == pytest.approx(by["inverse.abs_x"][column])
        assert found[f"paper_{column}"] == pytest.approx(by["inverse_paper"][column])
        best = found[f"best_{column}_method"]
        kept = best + (".pp" if found[f"best_{column}_processed"] == "post-processed" else "")
        assert found[f"best_{column}"] == pytest.approx(by[kept][column])
        # no baseline, raw or post-processed, beats the one reported as best
        rivals = [r[column] for name, r in by.items() if name.split(".")[0] not in
                  ("inverse", "inverse_paper", "random", "uniform", "sobel", "object_mask")
                  and (name.count(".") == 0 or name.endswith(".pp")) and math.isfinite(r[column])]
        assert found[f"best_{column}"] == pytest.approx(max(rivals))
    assert found["object_amount"] == pytest.approx(results["object"]["amount"])


def test_claim1_keeps_each_baselines_better_score():
    results = {"rows": [{"method": "inverse", "mass_in_mask": 0.9, "deletion_auc": 0.2},
                        {"method": "occlusion", "mass_in_mask": 0.7, "deletion_auc": 0.15},
                        {"method": "occlusion.pp", "mass_in_mask": 0.8, "deletion_auc": 0.18}],
               "standard_errors": {"occlusion.pp": {"mass_in_mask": 0.01}}}
    rows = claim1_rows(results, {"mass_in_mask": True, "deletion_auc": False})
    occ = rows[-1]
    assert occ["mass_in_mask"]["value"] == 0.8 and occ["mass_in_mask"]["processed"]
    assert occ["deletion_auc"]["value"] == 0.15 and not occ["deletion_auc"]["processed"]
    assert occ["mass_in_mask"]["interval"] == pytest.approx(1.96 * 0.01, rel=1e-3)
    table = claim1_table(results, {"mass_in_mask": True, "deletion_auc": False})
    assert "**0.900**" in table and "**0.150**" in table


@pytest.mark.parametrize("run", ["sanity_checks", "sanity_checks_resnet"])
def test_sanity_findings_equal_the_json(run):
    summary = load_json(RESULTS / run / "summary.json")
    found = sanity_findings(summary)
    assert found["sanity_inverse_spearman"] == pytest.approx(summary["criterion"]["inverse_spearman"])
    assert found["sanity_verdict"] == ("passes" if summary["criterion"]["passes"] else "fails")
    step = found["sanity_last_nonempty_step"]
    row = next(r for r in summary["rows"] if r["method"] == "inverse" and r["mode"] == "cascade"
               and r["step"] == step)
    assert row["spearman"] > 0 and found["sanity_inverse_spearman_nonempty"] == pytest.approx(row["spearman"])
    cascade = [r for r in summary["rows"] if r["method"] == "inverse" and r["mode"] == "cascade"]
    lowest = min(cascade, key=lambda r: (r["mass_in_mask"], r["step"]))
    assert found["sanity_lowest_mass"] == pytest.approx(lowest["mass_in_mask"])
    assert found["sanity_lowest_mass_layer"] == lowest["layer"]
    assert all(found["sanity_lowest_mass"] <= r["mass_in_mask"] for r in cascade)
    uniform = next(r for r in summary["rows"] if r["method"] == "uniform" and r["mode"] == "all")
    assert found["sanity_uniform_mass"] == pytest.approx(uniform["mass_in_mask"])


def test_targets_table_marks_each_target_met_or_missed():
    good = {"inverse_own_reid": 0.995, "inverse_own_amount": 0.25, "inverse_mass_in_mask": 0.75,
            "inverse_pointing_game": 0.95, "sanity_verdict": "passes"}
    bad = {"inverse_own_reid": 0.98, "inverse_own_amount": 0.26, "inverse_mass_in_mask": 0.74,
           "inverse_pointing_game": 0.94, "sanity_verdict": "fails"}
    lines = targets_table({"good": good, "bad": bad, "none": {}}).splitlines()
    assert lines[0] == "| target | good | bad | none |"
    body = lines[2:]
    assert len(body) == len(BENCHMARK_TARGETS)
    for line in body:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[1].endswith(", met") and cells[2].endswith(", missed") and cells[3] == "–", line


def test_chirp_findings_equal_the_json():
    chirp = load_json(RESULTS / "vdsr_chirp" / "summary.json")
    cf = chirp_findings(chirp)
    x2 = next(c for c in chirp["chirp"] if c["scale"] == 2 and c["setting"] == "default")
    assert cf["chirp_default_min"] == pytest.approx(x2["band"]["radial"]["value"])


def test_provenance_note_names_every_run():
    summary = load_json(RESULTS / "sanity_checks" / "summary.json")
    note = provenance_markdown(summary)
    assert "dropdown" in note
    for run in summary.get("merged_from", [summary]):
        assert run["git_commit"][:7] in note


def _findings(inverse, best, ci=0.01):
    return {"inverse_mass_in_mask": inverse, "inverse_mass_in_mask_ci": ci, "best_mass_in_mask": best,
            "best_mass_in_mask_ci": ci, "best_mass_in_mask_method": "occlusion"}


def test_verdicts_follow_the_intervals():
    assert benchmark_verdicts(_findings(0.80, 0.70))["mass_verdict"].startswith("The inverse leads")
    assert benchmark_verdicts(_findings(0.70, 0.80))["mass_verdict"].startswith("occlusion leads")
    assert "within each other's intervals" in benchmark_verdicts(_findings(0.80, 0.79))["mass_verdict"]
    gaps = {"rows": [
        {"method": "occlusion", "mode": "hard", "low": -0.01, "high": 0.02},
        {"method": "occlusion.pp", "mode": "hard", "low": 0.01, "high": 0.03},
        {"method": "inverse.abs", "mode": "soft", "low": -0.3, "high": -0.2},   # the inverse's own kind: no baseline
        {"method": "rise", "mode": "soft", "low": 0.02, "high": 0.05}]}
    v = benchmark_verdicts(_findings(0.8, 0.7), gaps)
    assert v["tradeoff_hard_verdict"].startswith("tied with occlusion (")
    assert v["tradeoff_soft_verdict"].startswith("above every baseline")
    assert v["tradeoff_claim"] == "holds"
    gaps["rows"].append({"method": "extremal_perturbation.pp", "mode": "soft", "low": -0.1, "high": -0.05})
    v = benchmark_verdicts(_findings(0.8, 0.7), gaps)
    assert v["tradeoff_soft_verdict"].startswith("below the curve of extremal_perturbation (")
    assert v["tradeoff_claim"] == "does not hold"


def test_kind_verdict_compares_the_inverse_with_a_baselines_kept_input_map():
    f = {**_findings(0.88, 0.78), "best_kind_mass_in_mask": 0.92, "best_kind_mass_in_mask_ci": 0.01,
         "best_kind_mass_in_mask_method": "extremal_perturbation.abs_x"}
    assert benchmark_verdicts(f)["kind_mass_verdict"].startswith("extremal_perturbation.abs_x puts more")
    f["best_kind_mass_in_mask"] = 0.85
    assert benchmark_verdicts(f)["kind_mass_verdict"].startswith("The default inverse puts more")


def test_best_kind_is_read_from_the_bundled_rows():
    results = load_json(RESULTS / "synthetic_benchmark" / "results.json")
    f = benchmark_findings(results)
    by = {r["method"]: r["mass_in_mask"] for r in results["rows"]}
    kinds = {m: v for m, v in by.items() if "." in m and m.split(".")[0] not in ("inverse", "inverse_paper", "random",
             "uniform", "sobel") and m.rsplit(".", 1)[1] in ("ratio", "abs", "abs_x")}
    assert kinds, "the bundled run scores the kept inputs of extremal perturbation"
    assert f["best_kind_mass_in_mask_method"] == max(kinds, key=kinds.get)
    assert math.isclose(f["best_kind_mass_in_mask"], max(kinds.values()), rel_tol=1e-12)
