"""How sure is a trade-off ranking? Paired bootstrap intervals of AUC differences.

Reads the per-image trade-off items of finished runs of
``scripts/synthetic_benchmark.py`` (``items/tradeoff-<method>-b<k>.npz``:
amount and top-1 re-identification of every hard and soft kept input of
every image) and, for each method against a reference (the default inverse),
reports the difference of their ``tradeoff_auc`` (reference minus method)
with a paired bootstrap interval over images
(:func:`invnb.tradeoff.tradeoff_auc_difference`: the same resampled images
for both curves). An interval that contains 0 means the 500 images do not
tell the two curves apart.

Each method comes from the first run that has its items (as ``--merge`` of
the benchmark); the runs must share the benchmark's configuration.
Runs whose items were not kept (e.g. a GPU run of which only the summary
files came back) cannot contribute. Command used for the file bundled with
the book::

    python scripts/tradeoff_gaps.py runs/bench500/inv3 runs/bench500/cpu_occ_ep runs/bench500/objmask \\
        --out data/results/synthetic_benchmark/tradeoff_gaps.json
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from invnb.runs import ResultStore  # noqa: E402
from invnb.tradeoff import tradeoff_auc_difference  # noqa: E402

#: ``tradeoff-<method>-b<k>`` (a map's hard/soft sweep; the inverse's fixed-weight sweep is ``-w<weight>-``).
_KEY = re.compile(r"^tradeoff-(?P<method>.+?)-b(?P<batch>\d{3})$")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", type=Path, nargs="+", help="folders of finished synthetic_benchmark.py runs")
    p.add_argument("--reference", default="inverse", help="the method every other is compared with")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--level", type=float, default=0.95, help="coverage of the interval (default 0.95)")
    p.add_argument("--seed", type=int, default=0, help="seed of the resampling")
    p.add_argument("--out", type=Path, required=True, help="JSON file to write (a .md table is written beside it)")
    return p.parse_args(argv)


def sweeps(folder: Path) -> dict[str, dict[str, np.ndarray]]:
    """Per method of one run: ``{"hard_amount": (P, N), "hard_top1": (P, N), "soft_...": ...}`` over its batches."""
    items = folder / "items"
    store = ResultStore(items)
    keys: dict[str, list[tuple[int, str]]] = {}
    for path in sorted(items.glob("tradeoff-*.npz")):
        m = _KEY.match(path.stem)
        if m and not re.search(r"-w[0-9.]+$", m["method"]):
            keys.setdefault(m["method"], []).append((int(m["batch"]), path.stem))
    out = {}
    for method, found in keys.items():  # in batch order: the paths were sorted, batches zero-padded
        recs = [store.load(k) for _, k in found]
        out[method] = {name: np.concatenate([r.arrays[name] for r in recs], axis=1).astype(float)
                       for name in recs[0].arrays if name.endswith(("_amount", "_top1"))}
        out[method]["batches"] = np.array([b for b, _ in found])
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    configs = []
    for folder in args.runs:
        res = folder / "results.json"
        if not res.is_file() or not (folder / "items").is_dir():
            print(f"error: {folder} is not a finished run with its items (results.json and items/)", file=sys.stderr)
            return 2
        configs.append(json.loads(res.read_text())["config"])
    if any(c != configs[0] for c in configs[1:]):
        print("error: the runs have different configurations (images or protocol); nothing written", file=sys.stderr)
        return 2
    methods: dict[str, tuple[int, dict]] = {}
    for i, folder in enumerate(args.runs):
        for name, arrays in sweeps(folder).items():
            methods.setdefault(name, (i, arrays))
    if args.reference not in methods:
        print(f"error: no run has trade-off items of {args.reference!r}", file=sys.stderr)
        return 2
    ref_source, ref = methods[args.reference]
    rows = []
    for name, (source, arrays) in methods.items():
        if name == args.reference:
            continue
        if not np.array_equal(arrays["batches"], ref["batches"]):
            print(f"error: {name!r} covers batches {arrays['batches'].tolist()}, the reference "
                  f"{ref['batches'].tolist()}", file=sys.stderr)
            return 2
        for mode in ("hard", "soft"):
            if f"{mode}_amount" not in arrays or f"{mode}_amount" not in ref:
                continue
            d = tradeoff_auc_difference(ref[f"{mode}_amount"], ref[f"{mode}_top1"], arrays[f"{mode}_amount"],
                                        arrays[f"{mode}_top1"], n_boot=args.n_boot, level=args.level, seed=args.seed)
            rows.append({"method": name, "mode": mode, "auc_reference": d["auc_a"], "auc_method": d["auc_b"],
                         "difference": d["difference"], "low": d["low"], "high": d["high"], "se": d["se"],
                         "n_images": d["n_images"], "source": source})
    command = "python " + " ".join(shlex.quote(a) for a in [str(Path(sys.argv[0])), *sys.argv[1:]])
    out = {"command": command, "reference": args.reference, "reference_source": ref_source,
           "runs": [str(f) for f in args.runs], "n_boot": args.n_boot, "level": args.level, "seed": args.seed,
           "config": configs[0], "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    args.out.with_suffix(".md").write_text(markdown(out))
    print(markdown(out))
    return 0


def markdown(res: dict) -> str:
    """The table of a result of :func:`main` (``res`` as written to the JSON file)."""
    pct = round(100 * res["level"])
    lines = [f"| method | masks | AUC {res['reference']} | AUC method | difference | {pct}% interval |",
             "|---|---|---|---|---|---|"]
    for r in res["rows"]:
        lines.append(f"| {r['method']} | {r['mode']} | {r['auc_reference']:.3f} | {r['auc_method']:.3f} | "
                     f"{r['difference']:+.3f} | [{r['low']:+.3f}, {r['high']:+.3f}] |")
    n = res["rows"][0]["n_images"] if res["rows"] else 0
    return (f"Trade-off AUC of {res['reference']} minus each method's, on the same {n} images, with a paired "
            f"bootstrap interval ({res['n_boot']} resamples of the images, seed {res['seed']}); an interval "
            f"containing 0: the images do not tell the two apart.\n\n" + "\n".join(lines)
            + f"\n\nCommand: `{res['command']}`\n")


if __name__ == "__main__":
    raise SystemExit(main())
