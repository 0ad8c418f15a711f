"""The bundled results as the book shows them: findings, the fair claim-1 table, provenance notes.

Every number the book's prose states about a long run is read here from the
bundled JSON (``data/results/``) and glued into the page (``myst_nb.glue``),
so a new run changes the pages without a word typed by hand.
``tests/book/test_results.py`` checks that the values equal the JSON.

The fair comparison of claim 1: the default inverse's map is post-processed
(clipped, weighted by its Gaussian mean, faintly filled:
:func:`invnb.inverse.postprocess_map`). The benchmark also scores every
baseline's map with the same post-processing (rows ``<method>.pp``), and each
baseline keeps the better of its raw and post-processed score in every column,
so the comparison is about the explanation, not the smoothing. The inverse's
map without post-processing is ``inverse.abs_x`` (:math:`\\sum_c |\\hat x|\\,|x|`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

__all__ = [
    "BASELINE_EXCLUDED", "CLAIM1_COLUMNS", "benchmark_findings", "benchmark_verdicts", "chirp_findings", "claim1_rows", "claim1_table",
    "BENCHMARK_TARGETS", "gaps_table", "glue_values", "live_provenance_markdown", "load_json", "provenance_markdown",
    "sanity_findings", "targets_table",
]

#: Columns of the claim-1 table, each with True when higher is better.
CLAIM1_COLUMNS = {
    "mass_in_mask": True, "pointing_game": True, "tradeoff_auc_hard": True, "tradeoff_auc_soft": True,
    "deletion_auc": False, "insertion_auc": True,
}
#: Rows that are no baseline: the inverses, the trivial maps and the reference row.
BASELINE_EXCLUDED = ("inverse", "inverse_paper", "random", "uniform", "sobel", "object_mask")
#: The inverse's map without post-processing (the map the paper draws, on the default's inverse input).
RAW_INVERSE = "inverse.abs_x"
#: Maps made with the inverse's map formulas from a method's own kept input (rows ``<method>.<kind>``).
KEPT_INPUT_KINDS = ("ratio", "abs", "abs_x")
#: The targets an embedded model's default inverse is held to, as (label, finding key, test on the value).
BENCHMARK_TARGETS = (
    ("own kept input re-identified, top-1 >= 0.99", "inverse_own_reid", lambda v: v >= 0.99),
    ("... at amount <= 0.25", "inverse_own_amount", lambda v: v <= 0.25),
    ("mass in the object >= 0.75", "inverse_mass_in_mask", lambda v: v >= 0.75),
    ("pointing game >= 0.95", "inverse_pointing_game", lambda v: v >= 0.95),
    ("model randomisation check passes", "sanity_verdict", lambda v: v == "passes"),
)
#: Half-width of a 95% normal interval in standard errors.
Z95 = 1.959964


def load_json(path: str | Path) -> dict:
    """Read a bundled JSON file (NaN allowed, as the benchmark writes it)."""
    return json.loads(Path(path).read_text())


def _num(v) -> float:
    return float("nan") if v is None else float(v)


def _baselines(results: dict) -> list[str]:
    names = [r["method"] for r in results["rows"]]
    return [n for n in names if "." not in n and n not in BASELINE_EXCLUDED]


def _interval(results: dict, name: str, column: str) -> float:
    se = results.get("standard_errors", {}).get(name, {}).get(column)
    return Z95 * se if se is not None and math.isfinite(se) else float("nan")


def claim1_rows(results: dict, columns=None) -> list[dict]:
    """The fair claim-1 comparison as rows: each baseline at the better of raw and post-processed.

    Parameters
    ----------
    results : dict
        The benchmark's ``results.json`` (:func:`invnb.eval.benchmark_report`).
    columns : dict of str to bool, optional
        Column -> higher is better; default :data:`CLAIM1_COLUMNS`.

    Returns
    -------
    list of dict
        One dict per row: ``name`` (shown), ``kind`` (``"inverse"``, ``"inverse, raw map"``,
        ``"paper setting"``, ``"baseline"``), and per column ``value``, ``interval`` (95% half-width,
        NaN where no standard error is stored) and ``processed`` (True when a baseline's kept score
        is its ``.pp`` row's).

    Examples
    --------
    >>> res = {"rows": [{"method": "inverse", "mass_in_mask": 0.9}, {"method": "inverse.abs_x", "mass_in_mask": 0.8},
    ...                 {"method": "occlusion", "mass_in_mask": 0.7}, {"method": "occlusion.pp", "mass_in_mask": 0.75}]}
    >>> [(r["name"], r["mass_in_mask"]["value"]) for r in claim1_rows(res, {"mass_in_mask": True})]
    [('inverse', 0.9), ('inverse, map not post-processed', 0.8), ('occlusion', 0.75)]
    """
    columns = CLAIM1_COLUMNS if columns is None else columns
    by = {r["method"]: r for r in results["rows"]}

    def cell(name: str, column: str, processed: bool = False) -> dict:
        return {"value": _num(by[name].get(column)), "interval": _interval(results, name, column),
                "processed": processed}

    out = []
    for name, shown, kind in (("inverse", "inverse", "inverse"),
                              (RAW_INVERSE, "inverse, map not post-processed", "inverse, raw map"),
                              ("inverse_paper", "inverse, paper setting", "paper setting")):
        if name in by:
            out.append({"name": shown, "kind": kind, **{c: cell(name, c) for c in columns}})
    for name in _baselines(results):
        row = {"name": name, "kind": "baseline"}
        for c, higher in columns.items():
            raw = cell(name, c)
            if f"{name}.pp" in by:
                pp = cell(f"{name}.pp", c, processed=True)
                if math.isfinite(pp["value"]) and (not math.isfinite(raw["value"])
                                                   or (pp["value"] > raw["value"]) == higher
                                                   and pp["value"] != raw["value"]):
                    raw = pp
            row[c] = raw
        out.append(row)
    return out


def claim1_table(results: dict, columns=None) -> str:
    """The fair claim-1 table as Markdown: value ± 95% interval; * the post-processed score was kept.

    The best value of each column among the baselines and the default inverse is in bold. A chapter
    shows it with ``IPython.display.Markdown``, which the book renders as an HTML table.

    Examples
    --------
    >>> res = {"rows": [{"method": "inverse", "mass_in_mask": 0.9}, {"method": "occlusion", "mass_in_mask": 0.7}]}
    >>> print(claim1_table(res, {"mass_in_mask": True}).splitlines()[2])
    | inverse | **0.900** |
    """
    columns = CLAIM1_COLUMNS if columns is None else columns
    rows = claim1_rows(results, columns)
    best = {}
    for c, higher in columns.items():
        vals = [r[c]["value"] for r in rows if r["kind"] in ("inverse", "baseline")
                and math.isfinite(r[c]["value"])]
        best[c] = (max if higher else min)(vals) if vals else float("nan")
    lines = ["| map | " + " | ".join(f"{c} {'↑' if h else '↓'}" for c, h in columns.items()) + " |",
             "|---|" + "---:|" * len(columns)]
    for r in rows:
        cells = []
        for c in columns:
            v = r[c]
            if not math.isfinite(v["value"]):
                cells.append("–")
                continue
            text = f"{v['value']:.3f}"
            if math.isfinite(v["interval"]):
                text += f" ± {v['interval']:.3f}"
            if r["kind"] in ("inverse", "baseline") and abs(v["value"] - best[c]) < 5e-4:
                text = f"**{text}**"
            cells.append(text + (" \\*" if v["processed"] else ""))
        lines.append(f"| {r['name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def benchmark_findings(results: dict) -> dict:
    """The benchmark's headline numbers, as glue keys -> values (floats and names).

    For each claim-1 column ``c``: ``inverse_<c>``, ``inverse_<c>_ci`` (95% half-width),
    ``raw_<c>`` (the inverse's map not post-processed), ``paper_<c>``, ``best_<c>`` and
    ``best_<c>_ci`` and ``best_<c>_method`` (the best baseline at the better of raw and
    post-processed), ``best_<c>_processed`` ("post-processed" or "raw"). ``best_kind_mass_in_mask``
    (with ``_ci`` and ``_method``): the best mass among the maps made with the inverse's formulas
    from a baseline's own kept input (``extremal_perturbation.abs_x``, ...). Also ``n_images``,
    the own kept inputs (``inverse_own_amount``, ``inverse_own_reid``, ``paper_own_amount``,
    ``paper_own_reid``), the object's (``object_amount``, ``object_reid``) and ``has_pp``.
    """
    rows = claim1_rows(results)
    by_kind = {r["kind"]: r for r in rows if r["kind"] != "baseline"}
    out = {"n_images": int(results["n_images"]),
           "has_pp": any(r["method"].endswith(".pp") for r in results["rows"])}
    for c, higher in CLAIM1_COLUMNS.items():
        for key, kind in (("inverse", "inverse"), ("raw", "inverse, raw map"), ("paper", "paper setting")):
            if kind in by_kind:
                out[f"{key}_{c}"] = by_kind[kind][c]["value"]
                out[f"{key}_{c}_ci"] = by_kind[kind][c]["interval"]
        base = [r for r in rows if r["kind"] == "baseline" and math.isfinite(r[c]["value"])]
        if base:
            b = (max if higher else min)(base, key=lambda r: r[c]["value"])
            out[f"best_{c}"] = b[c]["value"]
            out[f"best_{c}_ci"] = b[c]["interval"]
            out[f"best_{c}_method"] = b["name"]
            out[f"best_{c}_processed"] = "post-processed" if b[c]["processed"] else "raw"
    by = {r["method"]: r for r in results["rows"]}
    for key, name in (("inverse", "inverse"), ("paper", "inverse_paper")):
        if name in by:
            out[f"{key}_own_amount"] = _num(by[name].get("own_amount"))
            out[f"{key}_own_reid"] = _num(by[name].get("own_reid_top1"))
    kinds = [r for r in results["rows"] if r["method"].split(".")[0] in _baselines(results)
             and r["method"].rsplit(".", 1)[-1] in KEPT_INPUT_KINDS and math.isfinite(_num(r.get("mass_in_mask")))]
    if kinds:
        k = max(kinds, key=lambda r: _num(r["mass_in_mask"]))
        out["best_kind_mass_in_mask_method"] = k["method"]
        out["best_kind_mass_in_mask"] = _num(k["mass_in_mask"])
        out["best_kind_mass_in_mask_ci"] = _interval(results, k["method"], "mass_in_mask")
    obj = results.get("object") or {}
    out["object_amount"] = _num(obj.get("amount"))
    out["object_reid"] = _num(obj.get("reid_top1"))
    return out


def benchmark_verdicts(findings: dict, gaps: dict | None = None) -> dict:
    """The benchmark's verdict sentences, decided from the numbers (never typed by hand).

    Parameters
    ----------
    findings : dict
        :func:`benchmark_findings` of the run.
    gaps : dict, optional
        ``tradeoff_gaps.json`` of the same run: the inverse's trade-off AUC minus each
        baseline's, with paired bootstrap intervals (``low``, ``high``) per mode.

    Returns
    -------
    dict
        ``mass_verdict`` and ``pointing_verdict`` (does the inverse's interval lie above the
        best baseline's, overlap it, or lie below), and with `gaps` ``tradeoff_hard_verdict``,
        ``kind_mass_verdict`` (the inverse against the best map made from a baseline's own kept
        input), ``tradeoff_soft_verdict`` and ``tradeoff_claim`` ("holds" only when no baseline's
        curve is above the inverse's in either mode). A baseline counts once, in any of its
        variants (raw, post-processed, its own kept input); the inverse's kinds and the
        object mask are no baselines.

    Examples
    --------
    >>> f = {"inverse_mass_in_mask": 0.88, "inverse_mass_in_mask_ci": 0.01, "best_mass_in_mask": 0.78,
    ...      "best_mass_in_mask_ci": 0.02, "best_mass_in_mask_method": "occlusion"}
    >>> benchmark_verdicts(f)["mass_verdict"]
    'The inverse leads in mass beyond both intervals.'
    """
    out = {}
    for column, what in (("mass_in_mask", "mass"), ("pointing_game", "the pointing game")):
        if f"best_{column}" not in findings or f"inverse_{column}" not in findings:
            continue
        inv, best = findings[f"inverse_{column}"], findings[f"best_{column}"]
        inv_ci = _finite(findings.get(f"inverse_{column}_ci"))
        best_ci = _finite(findings.get(f"best_{column}_ci"))
        name = findings[f"best_{column}_method"]
        if inv - inv_ci > best + best_ci:
            text = f"The inverse leads in {what} beyond both intervals."
        elif inv + inv_ci < best - best_ci:
            text = f"{name} leads in {what} beyond both intervals."
        else:
            text = f"The inverse and {name} are within each other's intervals in {what}."
        out[f"{column.split('_')[0]}_verdict"] = text
    if "best_kind_mass_in_mask" in findings and "inverse_mass_in_mask" in findings:
        inv, kind = findings["inverse_mass_in_mask"], findings["best_kind_mass_in_mask"]
        inv_ci, kind_ci = _finite(findings.get("inverse_mass_in_mask_ci")), \
            _finite(findings.get("best_kind_mass_in_mask_ci"))
        name = findings["best_kind_mass_in_mask_method"]
        if kind - kind_ci > inv + inv_ci:
            out["kind_mass_verdict"] = f"{name} puts more of its map in the object than the default inverse."
        elif kind + kind_ci < inv - inv_ci:
            out["kind_mass_verdict"] = f"The default inverse puts more of its map in the object than {name}."
        else:
            out["kind_mass_verdict"] = f"{name} and the default inverse are within each other's intervals."
    if gaps:
        holds = True
        for mode in ("hard", "soft"):
            rows = [r for r in gaps["rows"] if r["mode"] == mode
                    and r["method"].split(".")[0] not in BASELINE_EXCLUDED]
            behind = list(dict.fromkeys(r["method"].split(".")[0] for r in rows if r["high"] < 0))
            tied = [m for m in dict.fromkeys(r["method"].split(".")[0] for r in rows if r["low"] <= 0 <= r["high"])
                    if m not in behind]
            if behind:
                holds = False
                text = f"below the curve of {', '.join(behind)} (paired interval under 0)"
            elif tied:
                text = f"tied with {', '.join(tied)} (paired interval contains 0) and above the others"
            else:
                text = "above every baseline's curve (every paired interval above 0)"
            out[f"tradeoff_{mode}_verdict"] = text
        out["tradeoff_claim"] = "holds" if holds else "does not hold"
    return out


def _finite(value) -> float:
    value = _num(value)
    return value if math.isfinite(value) else 0.0


def sanity_findings(summary: dict) -> dict:
    """The randomisation check's headline numbers (``sanity_checks/summary.json``) as glue keys.

    ``sanity_inverse_spearman``, ``sanity_occlusion_spearman``, ``sanity_margin``,
    ``sanity_mass_trained``, ``sanity_mass_random``, ``sanity_verdict`` ("passes"/"fails"),
    ``sanity_last_nonempty_step`` (the last cascade step at which the inverse's map still has a
    ranking, Spearman > 0), ``sanity_inverse_spearman_nonempty`` and
    ``sanity_occlusion_spearman_nonempty`` (both at that step); ``sanity_lowest_mass`` and
    ``sanity_lowest_mass_layer`` (the inverse's lowest mass in the object over the cascade, and the
    layer whose re-initialisation first gives it); ``sanity_uniform_mass`` (a uniform map's mass, the
    floor), when the summary has a uniform row.
    """
    c = summary["criterion"]
    out = {"sanity_inverse_spearman": float(c["inverse_spearman"]),
           "sanity_occlusion_spearman": float(c["occlusion_spearman"]),
           "sanity_margin": float(c["margin"]), "sanity_mass_trained": float(c["mass_trained"]),
           "sanity_mass_random": float(c["mass_random"]),
           "sanity_verdict": "passes" if c["passes"] else "fails",
           "sanity_n_images": int(summary["n_images"])}
    cascade = {(r["method"], r["step"]): r["spearman"] for r in summary["rows"] if r["mode"] == "cascade"}
    steps = sorted(s for (m, s), v in cascade.items() if m == "inverse" and v > 0)
    if steps:
        k = steps[-1]
        out["sanity_last_nonempty_step"] = int(k)
        out["sanity_inverse_spearman_nonempty"] = float(cascade[("inverse", k)])
        out["sanity_occlusion_spearman_nonempty"] = float(cascade.get(("occlusion", k), float("nan")))
    masses = [(r["mass_in_mask"], r["step"], r["layer"]) for r in summary["rows"]
              if r["method"] == "inverse" and r["mode"] == "cascade"]
    if masses:  # on a tie, the earliest step
        lowest, _, layer = min(masses)
        out["sanity_lowest_mass"], out["sanity_lowest_mass_layer"] = float(lowest), str(layer)
    uniform = [r["mass_in_mask"] for r in summary["rows"] if r["method"] == "uniform" and r["mode"] == "all"]
    if uniform:
        out["sanity_uniform_mass"] = float(uniform[0])
    return out


def provenance_markdown(result: dict, title: str = "How these numbers were made") -> str:
    """A collapsed MyST note (``{dropdown}``-style admonition) with the command, commit and device.

    Parameters
    ----------
    result : dict
        A bundled summary with ``command`` and either ``git_commit``/``device`` or ``merged_from``
        (a list of runs, each with ``command``, ``git_commit``, ``device`` and ``methods``).

    Examples
    --------
    >>> text = provenance_markdown({"command": "python x.py", "git_commit": "abc1234def", "device": "cpu"})
    >>> "abc1234" in text and text.startswith(":::{admonition}")
    True
    """
    lines = [f":::{{admonition}} {title}", ":class: dropdown note", "",
             f"Command: `{result['command']}`", ""]
    runs = result.get("merged_from") or [result]
    if len(runs) > 1:
        lines += [f"Merged from {len(runs)} runs on the same images and protocol:", ""]
    for run in runs:
        what = f" ({', '.join(run['methods'])})" if run.get("methods") and len(runs) > 1 else ""
        commit = str(run.get("git_commit", "?"))
        dirty = " with uncommitted edits" if commit.endswith("+dirty") else ""
        lines.append(f"- `{run.get('command', result['command'])}`{what}: commit `{commit[:7]}`{dirty}, "
                     f"device {run.get('device', '?')}, torch {run.get('torch', result.get('torch', '?'))}.")
    lines += ["", ":::"]
    return "\n".join(lines)


def live_provenance_markdown(facts: dict, title: str = "How these numbers were made") -> str:
    """A collapsed MyST note for a page whose cells compute its numbers when the book is built.

    It names the code and machine that computed them (invnb's commit, or its code
    fingerprint outside git; torch; the threads) and then the page's inputs, one per line.

    Parameters
    ----------
    facts : dict
        The page's inputs, name -> value (model, checkpoint hash, seed, settings, device).

    Examples
    --------
    >>> text = live_provenance_markdown({"seed": 0, "device": "cpu"})
    >>> text.startswith(":::{admonition}") and "- seed: `0`" in text
    True
    """
    import torch

    from invnb.runs import code_fingerprint, git_commit

    commit = git_commit()
    code = f"commit `{commit[:7]}`" + (" with uncommitted edits" if commit.endswith("+dirty") else "") \
        if commit else f"code fingerprint `{code_fingerprint()}`"
    lines = [f":::{{admonition}} {title}", ":class: dropdown note", "",
             "The cells of this page computed every number and figure on it when the page was built:",
             f"invnb {code}, torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s).",
             "Run the page again (`make book`, or papermill with other parameters) to recompute them.", "",
             "Inputs:", ""]
    lines += [f"- {name}: `{value}`" for name, value in facts.items()]
    lines += ["", ":::"]
    return "\n".join(lines)


class _Text(str):
    """Text that displays bare, as Markdown and as plain text (no quotes), on this page and across pages."""

    def __repr__(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        return str(self)


def glue_values(values: dict, digits: int = 3) -> dict:
    """Glue findings into the page (``myst_nb.glue``); returns what was glued, key -> text.

    Numbers are glued as numbers (``{glue:text}`key:.3f```); names as Markdown
    (``{glue:md}`key```); every ``<key>`` with a ``<key>_ci`` also as ``<key>_pm``, the
    Markdown ``"0.881 ± 0.010"`` (the 95% interval; the value alone where there is none).
    NaN values are glued as the Markdown ``"–"``.
    """
    from myst_nb import glue

    Markdown = _Text
    shown = {}
    for key, v in values.items():
        if isinstance(v, bool) or isinstance(v, str):
            text = str(v)
            glue(key, Markdown(text), display=False)
        elif isinstance(v, (int, float)) and math.isfinite(v):
            text = f"{v:.{digits}f}" if isinstance(v, float) else str(v)
            glue(key, v, display=False)
        else:
            text = "–"
            glue(key, Markdown(text), display=False)
        shown[key] = text
        ci = values.get(f"{key}_ci")
        if ci is not None and not key.endswith("_ci") and isinstance(v, float) and math.isfinite(v):
            pm = f"{v:.{digits}f} ± {ci:.{digits}f}" if math.isfinite(ci) else f"{v:.{digits}f}"
            glue(f"{key}_pm", Markdown(pm), display=False)
            shown[f"{key}_pm"] = pm
    return shown


def gaps_table(gaps: dict) -> str:
    """The trade-off differences (``tradeoff_gaps.json``) as Markdown: the inverse minus each method.

    An interval that contains 0 is marked "tied"; the inverse's other map kinds are left out.

    Examples
    --------
    >>> g = {"rows": [{"method": "occlusion", "mode": "hard", "auc_reference": 0.6, "auc_method": 0.62,
    ...                "difference": -0.02, "low": -0.04, "high": 0.01}]}
    >>> gaps_table(g).splitlines()[2]
    '| occlusion | hard | 0.600 | 0.620 | -0.020 [-0.040, +0.010] | tied |'
    """
    lines = ["| method | masks | inverse | method | inverse − method (95% interval) | reading |",
             "|---|---|---:|---:|---:|---|"]
    for g in gaps["rows"]:
        if g["method"].startswith("inverse."):
            continue
        reading = "tied" if g["low"] <= 0 <= g["high"] else ("inverse ahead" if g["low"] > 0 else "method ahead")
        lines.append(f"| {g['method']} | {g['mode']} | {g['auc_reference']:.3f} | {g['auc_method']:.3f} | "
                     f"{g['difference']:+.3f} [{g['low']:+.3f}, {g['high']:+.3f}] | {reading} |")
    return "\n".join(lines)


def chirp_findings(summary: dict, scale: int = 2) -> dict:
    """The chirp's headline numbers (``vdsr_chirp/summary.json``) at one scale, as glue keys.

    For ``s`` in ``default`` and ``paper``: ``chirp_<s>_low`` (attribution below 0.05 cycles/px),
    ``chirp_<s>_min`` and ``chirp_<s>_fmin`` (the lowest band's value and frequency),
    ``chirp_<s>_corr`` (correlation of the inverse's output with VDSR's); and ``chirp_nyquist``
    (the low-resolution Nyquist frequency) and ``chirp_scale``.
    """
    out = {"chirp_scale": int(scale)}
    for c in summary["chirp"]:
        if c["scale"] != scale or c["setting"] not in ("default", "paper"):
            continue
        b, s = c["band"]["radial"], c["setting"]
        out.update({f"chirp_{s}_low": float(b["reference"]), f"chirp_{s}_min": float(b["value"]),
                    f"chirp_{s}_fmin": float(b["f_min"]),
                    f"chirp_{s}_corr": float(c["fidelity"]["correlation"])})
        out["chirp_nyquist"] = float(c["lr_nyquist"])
    return out


def targets_table(models: dict[str, dict]) -> str:
    """The :data:`BENCHMARK_TARGETS` as Markdown: one row per target, per model its value and whether it is met.

    Parameters
    ----------
    models : dict
        Model name -> its findings, :func:`benchmark_findings` merged with :func:`sanity_findings`.

    Examples
    --------
    >>> f = {"inverse_own_reid": 1.0, "inverse_own_amount": 0.3, "inverse_mass_in_mask": 0.8,
    ...      "inverse_pointing_game": 0.97, "sanity_verdict": "fails"}
    >>> targets_table({"m": f}).splitlines()[3]
    '| ... at amount <= 0.25 | 0.300, missed |'
    """
    lines = ["| target | " + " | ".join(models) + " |", "|---|" + "---:|" * len(models)]
    for label, key, met in BENCHMARK_TARGETS:
        cells = []
        for found in models.values():
            v = found.get(key)
            if v is None or (isinstance(v, float) and not math.isfinite(v)):
                cells.append("–")
                continue
            shown = v if isinstance(v, str) else f"{v:.3f}"
            cells.append(f"{shown}, {'met' if met(v) else 'missed'}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
