"""The synthetic benchmark's summary: table rows, standard errors, trade-off rows, mean curves.

:func:`summarise_run` turns the stored items of :func:`invnb.eval.benchmark.run_benchmark`
into a :class:`BenchmarkSummary`; ``summary.write(folder)`` writes ``results.csv``/``.json``/``.md``,
``tradeoff.csv``/``.json`` and ``curves.json`` (the figures are drawn by :mod:`invnb.plot.benchmark`).
"""

from __future__ import annotations

import json
import math
import platform
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from invnb.eval.tables import write_table
from invnb.eval.tradeoff import (
    DEFAULT_EXPONENTS,
    DEFAULT_FRACTIONS,
    TRADEOFF_MAX_AMOUNT,
    reid_at_amount,
    tradeoff_auc,
)

__all__ = ["BenchmarkSummary", "COLUMNS", "LOWER_BETTER", "TABLE_COLUMNS", "markdown", "summarise_run"]

#: Per-image columns of the table (means over images).
COLUMNS = ("deletion_auc", "insertion_auc", "pointing_game", "pointing_game_strict", "mass_in_mask",
           "own_amount", "own_reid_top1", "own_reid_top5", "soft_amount", "soft_reid_top1",
           "hard20_amount", "hard20_reid_top1")
#: Columns of the markdown table, in order.
TABLE_COLUMNS = ("deletion_auc", "insertion_auc", "pointing_game", "pointing_game_strict", "mass_in_mask",
                 "mass_on_distractor", "own_amount", "own_reid_top1", "soft_reid_top1", "hard20_reid_top1",
                 "tradeoff_auc_hard", "tradeoff_auc_soft", "tradeoff_auc_own", "reid_hard_at_object",
                 "seconds_per_image", "seconds_per_image_cpu1")
#: Columns where lower is better (the others: higher is better).
LOWER_BETTER = ("deletion_auc", "own_amount", "mass_on_distractor", "seconds_per_image", "seconds_per_image_cpu1")
TOPK = (1, 5)


def _cat(records, key):
    return np.concatenate([r.arrays[key] for r in records])


def _row(name: str, records) -> tuple[dict, dict]:
    """Table row (means) and standard errors of one map."""
    dis = _cat(records, "has_distractor").astype(bool)
    n = len(dis)
    cols = {c: _cat(records, c) for c in COLUMNS}
    cols.update({
        "pointing_game_distractor": _cat(records, "pointing_game")[dis],
        "mass_in_mask_distractor": _cat(records, "mass_in_mask")[dis],
        "mass_on_distractor": _cat(records, "mass_on_distractor")[dis],
    })
    row = {"method": name, "n_images": n, "n_distractor": int(dis.sum())}
    se = {}
    for k, v in cols.items():
        v = v.astype(float)
        row[k] = float(v.mean()) if len(v) else float("nan")
        se[k] = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan")
    for extra in ("chosen_mask_weight", "chosen_area"):
        if extra in records[0].arrays:
            row[f"mean_{extra}"] = float(_cat(records, extra).mean())
    row["seconds_per_image"] = sum(r.scalars["seconds"] for r in records) / n
    row["n_failed"] = int(_cat(records, "failed").sum())
    labels, classes = _cat(records, "labels"), _cat(records, "classes")
    row["model_accuracy"] = float((labels == classes).mean())
    return row, se


def _tradeoff_rows(name: str, records) -> list[dict]:
    rows = []
    for mode, pname, params in (("hard", "fraction", DEFAULT_FRACTIONS), ("soft", "exponent", DEFAULT_EXPONENTS)):
        if not records or f"{mode}_amount" not in records[0].arrays:
            continue
        amount = np.concatenate([r.arrays[f"{mode}_amount"] for r in records], axis=1)
        tops = {k: np.concatenate([r.arrays[f"{mode}_top{k}"] for r in records], axis=1) for k in TOPK}
        for i, p in enumerate(params):
            row = {"method": name, "mode": mode, "param_name": pname, "param": p,
                   "amount": float(amount[i].mean()), "n_images": amount.shape[1]}
            row.update({f"reid_top{k}": float(tops[k][i].mean()) for k in TOPK})
            rows.append(row)
    return rows


def _add_tradeoff_summary(row: dict, trade: list[dict], object_amount: float) -> None:
    """The trade-off numbers of one table row (AUCs, re-identification at the object's amount)."""
    for mode in ("hard", "soft", "own"):
        pts = [r for r in trade if r["method"] == row["method"] and r["mode"] == mode]
        if mode == "own":
            pts = [r for r in trade if r["method"] == f"{row['method']} (sweep)"]
        if pts:
            am, re = [r["amount"] for r in pts], [r["reid_top1"] for r in pts]
            row[f"tradeoff_auc_{mode}"] = tradeoff_auc(am, re, TRADEOFF_MAX_AMOUNT)
            row[f"reid_{mode}_at_object"] = reid_at_amount(am, re, object_amount)
        else:
            row[f"tradeoff_auc_{mode}"] = row[f"reid_{mode}_at_object"] = float("nan")


def _curves(name: str, records, step: int) -> dict:
    hw = int(np.prod(records[0].arrays["attributions"].shape[1:]))
    out = {}
    for mode in ("deletion", "insertion"):
        scores = _cat(records, f"{mode}_scores")
        fractions = np.minimum(np.arange(scores.shape[1]) * step, hw) / hw
        out[mode] = {"fractions": fractions.tolist(), "mean": scores.mean(0).tolist(),
                     "auc": float(_cat(records, f"{mode}_auc").mean()), "n_images": int(scores.shape[0])}
    return out


@dataclass
class BenchmarkSummary:
    """What the benchmark measured: one table row per map, the trade-off rows, the mean curves.

    Attributes
    ----------
    rows : list of dict
        One row per method (and map kind): means of every column of :data:`COLUMNS`, the
        trade-off AUCs, timings.
    errors : dict
        ``{row: {column: standard error of the mean}}``.
    trade : list of dict
        The trade-off points (``method``, ``mode`` in hard/soft/own/inverse/object, ``param``,
        ``amount``, ``reid_top1``, ``reid_top5``).
    curves : dict
        ``{row: {"deletion" | "insertion": {"fractions", "mean", "auc", "n_images"}}}``.
    meta : dict
        Command, configuration, device, commit, code fingerprint, torch version.
    """

    rows: list
    errors: dict
    trade: list
    curves: dict
    meta: dict = field(default_factory=dict)

    def write(self, folder: str | Path) -> Path:
        """Write the summary files into `folder` (created); returns it."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        write_table(self.rows, out / "results.csv")
        (out / "results.json").write_text(json.dumps({**self.meta, "rows": self.rows, "standard_errors": self.errors},
                                                     indent=1))
        (out / "results.md").write_text(markdown(self.rows, self.meta.get("command", ""), self.meta["config"],
                                                 self.meta.get("object")))
        write_table(self.trade, out / "tradeoff.csv")
        (out / "tradeoff.json").write_text(json.dumps({**self.meta, "rows": self.trade}, indent=1))
        (out / "curves.json").write_text(json.dumps({"step": self.meta["config"]["step"], "methods": self.curves},
                                                    indent=1))
        return out


def summarise_run(config, runs: dict, trades: dict, sweep: dict, times: dict) -> BenchmarkSummary:
    """Summarise a finished benchmark run.

    Parameters
    ----------
    config : invnb.eval.benchmark.BenchmarkConfig
    runs : dict
        ``{row: [Record per batch]}`` of the map items.
    trades : dict
        ``{row: [Record per batch]}`` of their trade-off sweeps.
    sweep : dict
        ``{mask_weight: [Record per batch]}`` of the default inverse's own kept inputs.
    times : dict
        ``{method: {"seconds_per_image": ..., "cpu_seconds_per_image": ...}}`` (one CPU thread).

    Returns
    -------
    BenchmarkSummary
    """
    from invnb.runs.provenance import code_fingerprint, git_commit

    rows, errors, trade, curves = [], {}, [], {}
    for name, records in runs.items():
        row, se = _row(name, records)
        base = name.partition(".")[0]
        if base in times:
            row["seconds_per_image_cpu1"] = times[base]["seconds_per_image"]
            row["cpu_seconds_per_image_cpu1"] = times[base].get("cpu_seconds_per_image", float("nan"))
        rows.append(row)
        errors[name] = se
        curves[name] = _curves(name, records, config.step)
        trade += _tradeoff_rows(name, trades.get(name, []))
        if not np.isnan(row["own_amount"]) and "." not in name:  # the method's own kept input: one point
            weights = _cat(records, "chosen_mask_weight") if "chosen_mask_weight" in records[0].arrays else None
            fixed = weights is not None and np.allclose(weights, weights[0])  # one weight for all: a fixed setting
            trade.append({"method": name, "mode": "own", "param_name": "" if weights is None else "mask_weight",
                          "param": round(float(weights[0]), 6) if fixed else float("nan"),
                          "amount": row["own_amount"], "n_images": row["n_images"],
                          **{f"reid_top{k}": row[f"own_reid_top{k}"] for k in TOPK}})
    for w, records in sweep.items():
        amount = _cat(records, "amount")
        row = {"method": "inverse (sweep)", "mode": "inverse", "param_name": "mask_weight", "param": w,
               "amount": float(amount.mean()), "n_images": len(amount),
               "n_failed": int(sum(r.arrays["failed"].sum() for r in records))}
        row.update({f"reid_top{k}": float(_cat(records, f"top{k}").mean()) for k in TOPK})
        trade.append(row)
    first = next(iter(runs.values()))
    object_row = {"method": "object (x * mask)", "mode": "object", "param_name": "", "param": float("nan"),
                  "amount": float(_cat(first, "object_amount").mean()),
                  "reid_top1": float(_cat(first, "object_reid_top1").mean()), "n_images": len(_cat(first, "classes"))}
    trade.append(object_row)
    for row in rows:
        _add_tradeoff_summary(row, trade, object_row["amount"])
    command = "python " + " ".join(shlex.quote(a) for a in [str(Path(sys.argv[0])), *sys.argv[1:]])
    meta = {"command": command, "config": config.protocol(), "n_images": config.n_images, "device": config.device,
            "code_fingerprint": code_fingerprint(), "git_commit": git_commit(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "platform": platform.platform(), "object": object_row,
            "methods": {m: config.method_kwargs(m) for m in runs if "." not in m and m != "object_mask"}}
    return BenchmarkSummary(rows, errors, trade, curves, meta)


def _fmt(v, col: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.3g}" if col.startswith("seconds") else f"{v:.3f}"


def markdown(rows: list[dict], command: str, config: dict, object_row: dict | None = None) -> str:
    """The results table as markdown, with the run's command and configuration under it."""
    cols = [c for c in TABLE_COLUMNS if any(c in r for r in rows)]
    head = "| method | " + " | ".join(f"{c} {'↓' if c in LOWER_BETTER else '↑'}" for c in cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 1)]
    for r in rows:
        lines.append(f"| {r['method']} | " + " | ".join(_fmt(r.get(c), c) for c in cols) + " |")
    n = rows[0]["n_images"] if rows else 0
    nd = rows[0]["n_distractor"] if rows else 0
    obj = "" if object_row is None else (
        f" The object itself (x times its mask) has amount {object_row['amount']:.3f} and re-identification "
        f"{object_row['reid_top1']:.3f}.")
    model = f"{config['model']}, " if "model" in config else ""
    return (
        f"Synthetic benchmark: {n} held-out images ({nd} with a distractor), embedded model {model}"
        f"accuracy {rows[0]['model_accuracy']:.3f} on them.{obj}\n\n" + "\n".join(lines)
        + f"\n\nCommand: `{command}`\n\nConfig: `{json.dumps(config, sort_keys=True)}`\n"
    )
