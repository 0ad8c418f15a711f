"""Trade-off AUC differences between the default inverse and every other method, with paired bootstrap intervals.

A command line over :func:`invnb.eval.intervals.tradeoff_gaps`: reads the per-image trade-off
items of one finished ``scripts/synthetic_benchmark.py`` run and writes, per method and mask
rule, the reference's AUC minus the method's with its interval (``--out`` JSON and a ``.md``
table beside it)::

    python scripts/tradeoff_gaps.py runs/synthetic_benchmark --out data/results/synthetic_benchmark/tradeoff_gaps.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from invnb.eval.intervals import gaps_markdown, tradeoff_gaps  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", type=Path, help="folder of a finished synthetic_benchmark.py run")
    p.add_argument("--reference", default="inverse", help="the method every other is compared with")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--level", type=float, default=0.95, help="coverage of the interval (default 0.95)")
    p.add_argument("--seed", type=int, default=0, help="seed of the resampling")
    p.add_argument("--out", type=Path, required=True, help="JSON file to write (a .md table is written beside it)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        res = tradeoff_gaps(args.run, args.reference, n_boot=args.n_boot, level=args.level, seed=args.seed)
    except ValueError as e:
        print(f"error: {e}; nothing written", file=sys.stderr)
        return 2
    res = {"command": "python " + " ".join(shlex.quote(a) for a in ["scripts/tradeoff_gaps.py", *sys.argv[1:]]),
           "run": str(args.run), **res}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1))
    args.out.with_suffix(".md").write_text(gaps_markdown(res))
    print(gaps_markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
