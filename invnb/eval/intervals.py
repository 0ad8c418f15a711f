"""Paired bootstrap intervals of differences between two methods' trade-off AUCs, on one benchmark run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from invnb.eval.tradeoff import TRADEOFF_MAX_AMOUNT, tradeoff_auc

__all__ = ["gaps_markdown", "tradeoff_auc_difference", "tradeoff_gaps"]


def tradeoff_auc_difference(amounts_a, reids_a, amounts_b, reids_b, max_amount: float = TRADEOFF_MAX_AMOUNT,
                            n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> dict:
    """Difference of two methods' trade-off AUCs on the same images, with a paired bootstrap interval.

    Parameters
    ----------
    amounts_a, reids_a : array-like
        ``(P, N)``: per image (columns), the amount and the re-identification
        (0/1) of method a's kept input at each of its ``P`` settings.
    amounts_b, reids_b : array-like
        ``(Q, N)``: the same for method b, on the same ``N`` images in the same order.
    max_amount : float
        As :func:`tradeoff_auc`.
    n_boot : int
        Bootstrap resamples: ``N`` images drawn with replacement, the same
        draw for both methods (paired), each method's curve the mean over them.
    level : float
        Coverage of the percentile interval, in (0, 1).
    seed : int
        Seed of the resampling (``numpy.random.default_rng``).

    Returns
    -------
    dict
        ``auc_a``, ``auc_b`` (:func:`tradeoff_auc` of the mean curves over all
        images), ``difference`` (``auc_a - auc_b``), ``low``/``high`` (the
        percentile interval of the resampled differences), ``se`` (their
        standard deviation), ``n_images``, ``n_boot``, ``level``.
    """
    arrays = [np.asarray(v, dtype=float) for v in (amounts_a, reids_a, amounts_b, reids_b)]
    if any(a.ndim != 2 for a in arrays) or arrays[0].shape != arrays[1].shape or arrays[2].shape != arrays[3].shape \
            or arrays[0].shape[1] != arrays[2].shape[1]:
        raise ValueError("need (P, N) amounts and re-identifications for a and (Q, N) for b, on the same N images; "
                         f"got {[a.shape for a in arrays]}")
    if n_boot < 1 or not 0 < level < 1:
        raise ValueError(f"n_boot must be >= 1 and level in (0, 1), got {n_boot} and {level}")
    n = arrays[0].shape[1]

    def auc(am, re):
        return tradeoff_auc(am.tolist(), re.tolist(), max_amount)

    auc_a, auc_b = auc(arrays[0].mean(1), arrays[1].mean(1)), auc(arrays[2].mean(1), arrays[3].mean(1))
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    # how often each image is drawn in each resample: the resampled means are one product,
    # without gathering (P, n_boot, N) copies of the arrays
    counts = np.stack([np.bincount(row, minlength=n) for row in idx]).astype(float)  # (n_boot, N)
    means = [a @ counts.T / n for a in arrays]  # (P or Q, n_boot)
    diffs = np.array([auc(means[0][:, i], means[1][:, i]) - auc(means[2][:, i], means[3][:, i])
                      for i in range(n_boot)])
    low, high = np.quantile(diffs, [(1 - level) / 2, (1 + level) / 2])
    return {"auc_a": auc_a, "auc_b": auc_b, "difference": auc_a - auc_b, "low": float(low), "high": float(high),
            "se": float(diffs.std(ddof=1)) if n_boot > 1 else float("nan"), "n_images": n, "n_boot": n_boot,
            "level": level}


#: ``tradeoff-<row>-b<k>`` (a map's hard/soft sweep; the inverse's fixed-weight sweep is ``-w<weight>-``).
_SWEEP_KEY = re.compile(r"^tradeoff-(?P<method>.+?)-b(?P<batch>\d{3})$")


def _sweeps(run: Path) -> dict[str, dict[str, np.ndarray]]:
    """Per row of one run: ``{"hard_amount": (P, N), "hard_top1": (P, N), "soft_...": ...}`` over its batches."""
    from invnb.runs.store import ResultStore

    items = run / "items"
    store = ResultStore(items)
    keys: dict[str, list[tuple[int, str]]] = {}
    for path in sorted(items.glob("tradeoff-*.npz")):
        m = _SWEEP_KEY.match(path.stem)
        if m and not re.search(r"-w[0-9.]+$", m["method"]):
            keys.setdefault(m["method"], []).append((int(m["batch"]), path.stem))
    out = {}
    for method, found in keys.items():  # in batch order: the paths are sorted, batches zero-padded
        recs = [store.load(k) for _, k in found]
        out[method] = {name: np.concatenate([r.arrays[name] for r in recs], axis=1).astype(float)
                       for name in recs[0].arrays if name.endswith(("_amount", "_top1"))}
        out[method]["batches"] = np.array([b for b, _ in found])
    return out


def tradeoff_gaps(run: str | Path, reference: str = "inverse", n_boot: int = 2000, level: float = 0.95,
                  seed: int = 0) -> dict:
    """Trade-off AUC of `reference` minus every other row's, with paired bootstrap intervals, for one run.

    Parameters
    ----------
    run : path
        A finished :func:`invnb.eval.benchmark.run_benchmark` folder (``results.json`` and ``items/``).
    reference : str
        The row every other is compared with.
    n_boot, level, seed
        As :func:`tradeoff_auc_difference`.

    Returns
    -------
    dict
        ``reference``, ``n_boot``, ``level``, ``seed``, ``config`` (the run's protocol) and ``rows``: per row and
        mask rule (``mode`` hard/soft) ``auc_reference``, ``auc_method``, ``difference``, ``low``, ``high``,
        ``se``, ``n_images``.

    Raises
    ------
    ValueError
        If `run` is no finished run with its items, or it has no trade-off items of `reference`.
    """
    run = Path(run)
    res = run / "results.json"
    if not res.is_file() or not (run / "items").is_dir():
        raise ValueError(f"{run} is not a finished benchmark run with its items (results.json and items/)")
    config = json.loads(res.read_text())["config"]
    methods = _sweeps(run)
    if reference not in methods:
        raise ValueError(f"{run} has no trade-off items of {reference!r}; rows with items: {sorted(methods)}")
    ref = methods[reference]
    rows = []
    for name, arrays in methods.items():
        if name == reference:
            continue
        if not np.array_equal(arrays["batches"], ref["batches"]):
            raise ValueError(f"{name!r} covers batches {arrays['batches'].tolist()}, the reference "
                             f"{ref['batches'].tolist()}")
        for mode in ("hard", "soft"):
            if f"{mode}_amount" not in arrays or f"{mode}_amount" not in ref:
                continue
            d = tradeoff_auc_difference(ref[f"{mode}_amount"], ref[f"{mode}_top1"], arrays[f"{mode}_amount"],
                                        arrays[f"{mode}_top1"], n_boot=n_boot, level=level, seed=seed)
            rows.append({"method": name, "mode": mode, "auc_reference": d["auc_a"], "auc_method": d["auc_b"],
                         "difference": d["difference"], "low": d["low"], "high": d["high"], "se": d["se"],
                         "n_images": d["n_images"]})
    return {"reference": reference, "n_boot": n_boot, "level": level, "seed": seed, "config": config, "rows": rows}


def gaps_markdown(res: dict) -> str:
    """The table of a :func:`tradeoff_gaps` result, with its command when it has one."""
    pct = round(100 * res["level"])
    lines = [f"| method | masks | AUC {res['reference']} | AUC method | difference | {pct}% interval |",
             "|---|---|---|---|---|---|"]
    for r in res["rows"]:
        lines.append(f"| {r['method']} | {r['mode']} | {r['auc_reference']:.3f} | {r['auc_method']:.3f} | "
                     f"{r['difference']:+.3f} | [{r['low']:+.3f}, {r['high']:+.3f}] |")
    n = res["rows"][0]["n_images"] if res["rows"] else 0
    command = f"\n\nCommand: `{res['command']}`" if res.get("command") else ""
    return (f"Trade-off AUC of {res['reference']} minus each method's, on the same {n} images, with a paired "
            f"bootstrap interval ({res['n_boot']} resamples of the images, seed {res['seed']}); an interval "
            f"containing 0: the images do not tell the two apart.\n\n" + "\n".join(lines) + command + "\n")
