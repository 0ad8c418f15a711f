"""Claim 2 as the book states it: does the inverse show the frequency bands an SR network gets wrong?

The paper: "conventional CNNs for single image super-resolution overlook a portion of frequency bands that
may result in performance degradation". The bundled ground-truth runs (``data/results/sr_ground_truth*/``,
:func:`invnb.sr.ground_truth.run_ground_truth`) store, per SR network and scale, each attribution's curve
by frequency on the chirp, the network's measured gain and per-band error, and their agreement
(:mod:`invnb.sr.agreement`). The fidelity run (``data/results/vdsr_fidelity/``,
:func:`invnb.sr.fidelity.run_fidelity`) says whether each inverse reproduces the network's output.
This module turns them into what chapter 03 glues into its prose: numbers, words that follow from the
numbers (:func:`follows`), the agreement and fidelity tables (Markdown, which the book renders as HTML)
and the provenance note. No number here is typed: each is read from the JSON.

The agreement number is the Spearman correlation, over the bins below the LR Nyquist frequency, between an
attribution curve and the network's gain *over bicubic's* (``spearman["gain_vs_bicubic"]``): positive when
the explanation is low where the network adds least to plain interpolation.
"""

from __future__ import annotations

import math
from typing import Mapping

__all__ = ["CLAIM2_METHODS", "FIDELITY_TARGETS", "agreement_table", "claim2_findings", "fidelity_findings",
           "fidelity_table", "follows", "provenance_note"]

#: The attributions of a ground-truth run, as the book names them.
CLAIM2_METHODS = {"paper": "inverse, paper setting", "LAM": "LAM", "default": "inverse, default"}
#: Issue 23's fidelity targets: correlation of ``y_hat`` with ``y`` at least this, norm ratio in this range.
FIDELITY_TARGETS = {"correlation": 0.95, "norm_ratio": (0.85, 1.15)}


def follows(rho: float, strong: float = 0.7, weak: float = 0.4) -> str:
    """The word for a Spearman correlation: ``"follows"``, ``"partly follows"`` or ``"does not follow"``.

    Examples
    --------
    >>> follows(0.9), follows(0.5), follows(-0.6)
    ('follows', 'partly follows', 'does not follow')
    """
    if not math.isfinite(rho):
        return "cannot be compared with"
    return "follows" if rho >= strong else "partly follows" if rho >= weak else "does not follow"


def _curve_min(agreement: dict) -> float:
    """Centre of the bin where the attribution curve is lowest (below the LR Nyquist frequency)."""
    edges, att = agreement["edges"], agreement["curves"]["attribution"]
    pairs = [(v, 0.5 * (edges[i] + edges[i + 1])) for i, v in enumerate(att) if v is not None]
    return float(min(pairs)[1])


def _ratio_at(agreement: dict, f: float, key: str = "error_vs_bicubic") -> float:
    edges, curve = agreement["edges"], agreement["curves"][key]
    for i, v in enumerate(curve):
        if edges[i] <= f < edges[i + 1]:
            return float("nan") if v is None else float(v)
    return float("nan")


def _mean_in(agreement: dict, band) -> float:
    """Mean of the attribution curve, divided by its maximum, over the bins inside a band."""
    if not band:
        return float("nan")
    edges, att = agreement["edges"], agreement["curves"]["attribution"]
    top = max((v for v in att if v is not None), default=float("nan"))
    inside = [v / top for i, v in enumerate(att) if v is not None
              and edges[i] >= band["lo"] - 1e-9 and edges[i + 1] <= band["hi"] + 1e-9]
    return sum(inside) / len(inside) if inside and top > 0 else float("nan")


def _gains(record: dict) -> list:
    from invnb.sr.response import FrequencyResponse

    resp = FrequencyResponse.from_dict(record["response"])
    return [(float(f), float(g)) for f, g in zip(resp.frequencies, resp.gain("model")) if math.isfinite(g)]


def _count_text(n: int, total: int) -> str:
    return f"at all {total} scales" if n == total else "at no scale" if n == 0 else f"at {n} of {total} scales"


def claim2_findings(truths: Mapping[str, dict]) -> dict:
    """Glue keys for claim 2 from ground-truth runs, one per network.

    Parameters
    ----------
    truths : mapping of str to dict
        ``{"vdsr": summary, "srcnn": summary}``: the ``summary.json`` of each ground-truth run.

    Returns
    -------
    dict
        For each network ``n`` and attribution ``m`` (``paper``, ``LAM``, ``default``):
        ``n_m_rho_lo`` / ``n_m_rho_hi`` (smallest / largest Spearman with gain over bicubic over the
        scales), ``n_m_rho`` (the range as text), ``n_m_follows`` (:func:`follows` of the smallest),
        ``n_m_low_text`` (at how many scales the curve's lowest bin is one where the network's error
        on the photographs exceeds bicubic's; the chirp's where a run has no photographs),
        ``n_m_fmin_hi`` (the highest frequency of the curve's minimum over the
        scales); for the default also ``n_default_dip_lo`` / ``n_default_dip_hi`` (the union of its
        lowest-attribution bands) and ``n_default_dip_overlap_text`` (at how many scales that band
        overlaps the network's worst-error or worst-gain band) and ``n_default_corr_lo`` (its lowest
        output correlation on the chirp). Per network: ``n_label``, ``n_max_gain`` and ``n_max_gain_f``
        (the largest grating gain below the LR Nyquist frequency, over the scales), ``n_gain_above_1_text``,
        ``n_att_at_worst_lo`` (the lowest mean attribution, over its maximum, inside the network's
        worst-error band on the photographs, over attributions and scales), ``n_LAM_vis`` (LAM's Spearman
        with the visibility of its blur path, as a range), ``n_scales``, ``n_sets`` (data sets found beside the embedded images, "none" if none), ``n_worse_hi``
        (the upper edge of the highest band below the LR Nyquist frequency where the network's error on the
        photographs exceeds bicubic's).

    Examples
    --------
    >>> agr = {"edges": [0.0, 0.1, 0.2], "spearman": {"gain_vs_bicubic": 0.9},
    ...        "curves": {"attribution": [0.2, 0.9], "error_vs_bicubic": [1.5, 0.5]},
    ...        "bands": {"attribution": None}, "overlap": {"error": False, "gain": False}}
    >>> rec = {"agreement": {m: agr for m in ("paper", "LAM", "default")}, "lr_nyquist": 0.25,
    ...        "attribution": {"default": {"fidelity": {"correlation": 0.97}}},
    ...        "findings": {"gain_above_1": [], "max_gain": {"value": 1.0, "at": 0.1}, "error": {}}}
    >>> f = claim2_findings({"vdsr": {"network": "vdsr", "scales": {"2": rec}}})
    >>> f["vdsr_paper_follows"], f["vdsr_paper_low_text"]
    ('follows', 'at all 1 scales')
    """
    from invnb.sr.networks import sr_network

    out = {}
    for net, truth in truths.items():
        scales = sorted(truth["scales"], key=int)
        recs = [truth["scales"][s] for s in scales]
        out[f"{net}_label"] = sr_network(truth["network"]).label
        out[f"{net}_scales"] = ", ".join(f"x{s}" for s in scales)
        out[f"{net}_sets"] = ", ".join(truth.get("sets_found") or []) or "none"
        for m in CLAIM2_METHODS:
            agr = [r["agreement"][m] for r in recs if m in r["agreement"]]
            if not agr:
                continue
            rhos = [float(a["spearman"]["gain_vs_bicubic"]) for a in agr]
            lo, hi = min(rhos), max(rhos)
            out[f"{net}_{m}_rho_lo"], out[f"{net}_{m}_rho_hi"] = lo, hi
            out[f"{net}_{m}_rho"] = f"{lo:.2f} to {hi:.2f}" if len(rhos) > 1 else f"{lo:.2f}"
            out[f"{net}_{m}_follows"] = follows(lo)
            fmins = [_curve_min(a) for a in agr]
            photo = [r.get("agreement_photographs", {}).get(m) or a for r, a in zip(recs, agr)]
            worse = sum(_ratio_at(p, f) > 1 for p, f in zip(photo, fmins))
            out[f"{net}_{m}_low_text"] = _count_text(worse, len(agr))
            out[f"{net}_{m}_fmin_hi"] = max(fmins)
        bands = [r["agreement"]["default"]["bands"]["attribution"] for r in recs if "default" in r["agreement"]]
        bands = [b for b in bands if b]
        if bands:
            out[f"{net}_default_dip_lo"] = min(b["lo"] for b in bands)
            out[f"{net}_default_dip_hi"] = max(b["hi"] for b in bands)
            n_over = sum(bool(r["agreement"]["default"]["overlap"].get("error"))
                         or bool(r["agreement"]["default"]["overlap"].get("gain")) for r in recs)
            out[f"{net}_default_dip_overlap_text"] = _count_text(n_over, len(recs))
        at_worst = [_mean_in(a, a["bands"].get("error")) for r in recs
                    for a in (r.get("agreement_photographs") or r["agreement"]).values() if a.get("bands")]
        at_worst = [v for v in at_worst if math.isfinite(v)]
        if at_worst:
            out[f"{net}_att_at_worst_lo"] = min(at_worst)
        vis = [float(r["attribution"]["LAM"]["spearman_with_path_visibility"]) for r in recs
               if "spearman_with_path_visibility" in r["attribution"].get("LAM", {})]
        if vis:
            out[f"{net}_LAM_vis"] = f"{min(vis):.2f} to {max(vis):.2f}" if len(vis) > 1 else f"{vis[0]:.2f}"
        corr = [r["attribution"]["default"]["fidelity"]["correlation"] for r in recs
                if "fidelity" in r["attribution"].get("default", {})]
        if corr:
            out[f"{net}_default_corr_lo"] = float(min(corr))
        above = [(s, f) for s, r in zip(scales, recs) for f in r["findings"]["gain_above_1"]
                 if f < float(r["lr_nyquist"])]
        worse_f = [f for r in recs for f in r["findings"]["error"].get("photographs", {}).get(
            "bands_worse_than_bicubic", []) if f < float(r["lr_nyquist"])]
        if worse_f:
            out[f"{net}_worse_hi"] = float(max(worse_f)) + 0.005
        below = [(g, f) for r in recs if "response" in r for f, g in _gains(r) if f < float(r["lr_nyquist"])]
        if below:
            out[f"{net}_max_gain"], out[f"{net}_max_gain_f"] = (float(v) for v in max(below))
        ranges = {}
        for sc, f in above:
            lo, hi = ranges.get(sc, (f, f))
            ranges[sc] = (min(lo, f), max(hi, f))
        out[f"{net}_gain_above_1_text"] = (
            "at no grating below the LR Nyquist frequency" if not ranges else
            ", ".join(f"at x{sc} from {lo:.2f} to {hi:.2f}" if hi > lo else f"at x{sc} at {lo:.2f}"
                      for sc, (lo, hi) in ranges.items()) + " cycles/px")
    return out


def agreement_table(truths: Mapping[str, dict]) -> str:
    """Spearman of each attribution with its network's gain over bicubic, per scale, as Markdown.

    One row per network and attribution, one column per scale, and the frequency of the curve's lowest
    bin; the highest correlation of each column is bold.

    Examples
    --------
    >>> agr = {"edges": [0.0, 0.1, 0.2], "spearman": {"gain_vs_bicubic": 0.9},
    ...        "curves": {"attribution": [0.2, 0.9]}}
    >>> rec = {"agreement": {"paper": agr}}
    >>> print(agreement_table({"vdsr": {"network": "vdsr", "scales": {"2": rec}}}).splitlines()[2])
    | VDSR | inverse, paper setting | **0.90** | 0.050 |
    """
    from invnb.sr.networks import sr_network

    scales = sorted({s for t in truths.values() for s in t["scales"]}, key=int)
    rows = []
    for net, truth in truths.items():
        for m, name in CLAIM2_METHODS.items():
            agr = {s: truth["scales"][s]["agreement"].get(m) for s in scales if s in truth["scales"]}
            if not any(agr.values()):
                continue
            rows.append((sr_network(truth["network"]).label, name,
                         [float(agr[s]["spearman"]["gain_vs_bicubic"]) if agr.get(s) else float("nan")
                          for s in scales],
                         [_curve_min(agr[s]) if agr.get(s) else float("nan") for s in scales]))
    best = [max((r[2][j] for r in rows if math.isfinite(r[2][j])), default=float("nan")) for j in range(len(scales))]
    lines = ["| network | attribution | " + " | ".join(f"ρ x{s}" for s in scales)
             + " | lowest at (cycles/px) |",
             "|---|---|" + "---:|" * len(scales) + "---:|"]
    for label, name, rhos, fmins in rows:
        cells = ["–" if not math.isfinite(v) else f"**{v:.2f}**" if abs(v - best[j]) < 5e-3 else f"{v:.2f}"
                 for j, v in enumerate(rhos)]
        lows = " / ".join("–" if not math.isfinite(f) else f"{f:.3f}" for f in fmins)
        lines.append(f"| {label} | {name} | " + " | ".join(cells) + f" | {lows} |")
    return "\n".join(lines)


def _meets(f: dict) -> bool:
    lo, hi = FIDELITY_TARGETS["norm_ratio"]
    return f["correlation"] >= FIDELITY_TARGETS["correlation"] and lo <= f["norm_ratio"] <= hi


def _groups(fid: dict) -> dict:
    by = {}
    for r in fid["runs"]:
        if r.get("failed"):
            continue
        by.setdefault((r["setting"], int(r["scale"])), []).append(r)
    return by


def fidelity_findings(fid: dict, prefix: str = "fid") -> dict:
    """Glue keys of a fidelity run (``vdsr_fidelity/summary.json``): does each setting reproduce VDSR's output?

    For each setting ``s``: ``<prefix>_<s>_corr_lo`` (lowest correlation of ``y_hat`` with ``y`` over every
    image and scale), ``<prefix>_<s>_corr_mean``, ``<prefix>_<s>_norm_lo`` / ``_norm_hi`` (the norm
    ratio's range), ``<prefix>_<s>_met`` / ``_n`` (how many images meet :data:`FIDELITY_TARGETS` of how
    many), ``<prefix>_<s>_fwd`` (mean cost in VDSR forward passes); and ``<prefix>_n_images``,
    ``<prefix>_corr_target``, ``<prefix>_norm_target_lo`` / ``_hi``.

    Examples
    --------
    >>> run = {"setting": "default", "scale": 2, "image": "chirp64", "forward_equivalents": 50.0,
    ...        "fidelity": {"correlation": 0.97, "norm_ratio": 1.05}}
    >>> f = fidelity_findings({"runs": [run]})
    >>> f["fid_default_met"], f["fid_default_n"], f["fid_default_corr_lo"]
    (1, 1, 0.97)
    """
    out = {f"{prefix}_corr_target": FIDELITY_TARGETS["correlation"],
           f"{prefix}_norm_target_lo": FIDELITY_TARGETS["norm_ratio"][0],
           f"{prefix}_norm_target_hi": FIDELITY_TARGETS["norm_ratio"][1],
           f"{prefix}_n_images": len({r["image"] for r in fid["runs"]})}
    settings = sorted({r["setting"] for r in fid["runs"]})
    for s in settings:
        rs = [r for r in fid["runs"] if r["setting"] == s and not r.get("failed")]
        if not rs:
            continue
        corr = [float(r["fidelity"]["correlation"]) for r in rs]
        norm = [float(r["fidelity"]["norm_ratio"]) for r in rs]
        out.update({f"{prefix}_{s}_corr_lo": min(corr), f"{prefix}_{s}_corr_mean": sum(corr) / len(corr),
                    f"{prefix}_{s}_norm_lo": min(norm), f"{prefix}_{s}_norm_hi": max(norm),
                    f"{prefix}_{s}_met": sum(_meets(r["fidelity"]) for r in rs), f"{prefix}_{s}_n": len(rs),
                    f"{prefix}_{s}_fwd": sum(float(r["forward_equivalents"]) for r in rs) / len(rs)})
    return out


def fidelity_table(fid: dict, settings=("default", "walk", "paper")) -> str:
    """One row per setting and scale: correlation, norm ratio, amount, cost, targets met (Markdown).

    Cost is the mean wall time in VDSR forward passes on the same input; "met" counts the images that meet
    :data:`FIDELITY_TARGETS`. The highest mean correlation per scale is bold.

    Examples
    --------
    >>> run = {"setting": "default", "scale": 2, "image": "chirp64", "forward_equivalents": 50.0,
    ...        "amount": 0.8, "fidelity": {"correlation": 0.97, "norm_ratio": 1.05}}
    >>> print(fidelity_table({"runs": [run]}).splitlines()[2])
    | default | x2 | **0.970** (0.970) | 1.05–1.05 | 0.80 | 50 | 1 of 1 |
    """
    by = _groups(fid)
    present = [s for s in settings if any(k[0] == s for k in by)]
    lines = ["| setting | scale | correlation mean (min) | norm ratio range | amount | cost (passes) | met |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for s in present:
        for scale in sorted(k[1] for k in by if k[0] == s):
            rs = by[(s, scale)]
            corr = [r["fidelity"]["correlation"] for r in rs]
            norm = [r["fidelity"]["norm_ratio"] for r in rs]
            mean_c = sum(corr) / len(corr)
            best = max(sum(r["fidelity"]["correlation"] for r in by[(t, scale)]) / len(by[(t, scale)])
                       for t in present if (t, scale) in by)
            c_text = f"{mean_c:.3f}"
            if abs(mean_c - best) < 5e-4:
                c_text = f"**{c_text}**"
            lines.append(
                f"| {s} | x{scale} | {c_text} ({min(corr):.3f}) | "
                f"{min(norm):.2f}–{max(norm):.2f} | {sum(r['amount'] for r in rs) / len(rs):.2f} | "
                f"{sum(r['forward_equivalents'] for r in rs) / len(rs):.0f} | "
                f"{sum(_meets(r['fidelity']) for r in rs)} of {len(rs)} |")
    return "\n".join(lines)


def provenance_note(sources: Mapping[str, dict], title: str = "How these numbers were made") -> str:
    """A collapsed MyST note naming, for each bundled file, its command, commit, device and CPU time.

    Parameters
    ----------
    sources : mapping of str to dict
        ``{shown path: summary}``; a summary has ``command`` and ``commit`` (or ``git_commit``), and may
        have ``device``, ``torch``, ``threads``, ``weights``, ``refreshed_by``, ``cpu_seconds_total``, ``note``.

    Examples
    --------
    >>> text = provenance_note({"data/results/x/summary.json": {"command": "python x.py", "commit": "abc1234def"}})
    >>> text.startswith(":::{admonition}") and "abc1234" in text
    True
    """
    lines = [f":::{{admonition}} {title}", ":class: dropdown note", "",
             "Every number on this page is read from these bundled files; none is typed.", ""]
    for path, s in sources.items():
        commit = s.get("commit", s.get("git_commit"))
        if commit is None:
            parts = ["the file records no commit"]
        else:
            dirty = " (uncommitted edits)" if str(commit).endswith("+dirty") else ""
            parts = [f"commit `{str(commit)[:7]}`{dirty}"]
        for key, text in (("device", "device {}"), ("torch", "torch {}"), ("threads", "{} thread(s)"),
                          ("weights", "weights `{}`")):
            if s.get(key) is not None:
                parts.append(text.format(s[key]))
        if s.get("cpu_seconds_total") is not None:
            parts.append(f"{float(s['cpu_seconds_total']) / 60:.0f} CPU minutes")
        lines.append(f"- `{path}`: `{s.get('command', '?')}`; " + ", ".join(parts) + ".")
        if s.get("refreshed_by"):
            lines.append(f"  Derived numbers recomputed by `{s['refreshed_by']}`.")
        if s.get("note"):
            lines.append(f"  {s['note']}")
    lines += ["", ":::"]
    return "\n".join(lines)
