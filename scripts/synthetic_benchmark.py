"""Every attribution method side by side on held-out images of the synthetic benchmark.

A command line over :func:`invnb.eval.benchmark.run_benchmark` (the protocol, the
columns and their rules are documented there and in :mod:`invnb.eval.benchmark_report`).
Outputs in ``--out``: ``results.csv``/``.json``/``.md``, ``tradeoff.csv``/``.json``/``.png``,
``curves.json``/``.png`` and the per-item files in ``items/``. Running the same command
again resumes: finished items are loaded, not recomputed; ``--methods`` may add methods
to a finished run. ``--replot FOLDER`` redraws the figures of finished summary files.

The bundled results (``data/results/synthetic_benchmark/``, shown by the book) come
from one run of every method::

    python scripts/synthetic_benchmark.py --out runs/synthetic_benchmark --time-images 20 \\
        --threads 1 --no-progress --publish data/results/synthetic_benchmark

(the embedded SmallResNet's, ``data/results/synthetic_benchmark_resnet/``, from the same
command with ``--model smallresnet --out runs/synthetic_benchmark_resnet --publish
data/results/synthetic_benchmark_resnet``) and the intervals of the trade-off differences from the same run's items
(``python scripts/tradeoff_gaps.py runs/synthetic_benchmark --out
data/results/synthetic_benchmark/tradeoff_gaps.json``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from invnb.eval.benchmark import (  # noqa: E402
    MASK_WEIGHTS,
    BenchmarkConfig,
    benchmark_methods,
    run_benchmark,
)
from invnb.eval.causal import TIE_ORDERS  # noqa: E402
from invnb.eval.tradeoff import MAP_KINDS  # noqa: E402
from invnb.models import EMBEDDED_MODELS  # noqa: E402

PUBLISHED = ("results.md", "results.json", "results.csv", "tradeoff.csv", "tradeoff.json", "tradeoff.png",
             "curves.json", "curves.png")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=REPO / "runs" / "synthetic_benchmark", help="output folder")
    p.add_argument("--model", choices=EMBEDDED_MODELS, default="smallvgg",
                   help="the embedded model explained (default smallvgg; smallresnet: the residual network)")
    p.add_argument("--checkpoint", type=str, default=None, help="embedded model state dict (default: the bundled one)")
    p.add_argument("--n-images", type=int, default=500, help="held-out images (default 500)")
    p.add_argument("--batch-size", type=int, default=50, help="images per stored item (default 50)")
    p.add_argument("--methods", nargs="+", default=benchmark_methods(),
                   help="methods (default: all, and the reference row object_mask)")
    p.add_argument("--step", type=int, default=128, help="pixels per deletion/insertion step (default 128)")
    p.add_argument("--rise-masks", type=int, default=1000, help="RISE masks (default 1000)")
    p.add_argument("--ig-steps", type=int, default=50, help="integrated-gradients steps (default 50)")
    p.add_argument("--occlusion-window", type=int, default=8, help="occlusion patch side (default 8)")
    p.add_argument("--occlusion-stride", type=int, default=4, help="occlusion stride (default 4)")
    p.add_argument("--ep-steps", type=int, default=40, help="extremal perturbation Adam steps (default 40)")
    p.add_argument("--mask-weights", type=float, nargs="*", default=list(MASK_WEIGHTS),
                   help="mask_weight sweep of the inverse for the trade-off (default 0.25 0.5 1 2 4)")
    p.add_argument("--tradeoff-images", type=int, default=None, help="images of the trade-off sweeps (default all)")
    p.add_argument("--tie-orders", type=int, default=TIE_ORDERS,
                   help=f"random tie orders averaged in deletion/insertion (default {TIE_ORDERS}, seed 0)")
    p.add_argument("--map-kinds", nargs="*", default=list(MAP_KINDS), choices=MAP_KINDS,
                   help="map kinds made from each method's own kept input, as extra rows (default: all)")
    p.add_argument("--time-images", type=int, default=0,
                   help="also time each method on this many images on one CPU thread (0: no)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--paper-batched", action="store_true",
                   help="run inverse_paper on a whole item at once (only rounding differs; for GPUs)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--workers", type=int, default=0,
                   help="compute the items on a local Dask cluster of this many one-thread worker processes "
                        "(0: in this process; the same numbers either way; needs the dask extra)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--publish", type=Path, default=None, help="also copy the summary files and figures here")
    p.add_argument("--replot", type=Path, default=None, metavar="FOLDER",
                   help="only redraw the figures of a finished run's summary files in FOLDER")
    args = p.parse_args(argv)
    if args.replot is None:
        unknown = sorted(set(args.methods) - set(benchmark_methods()))
        if unknown:
            p.error(f"unknown methods {unknown}; choose from {benchmark_methods()}")
    return args


def draw(folder: Path) -> None:
    """``tradeoff.png`` and ``curves.png`` from the summary files in `folder`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from invnb.plot.benchmark import plot_benchmark_curves, plot_benchmark_tradeoff

    trade = json.loads((folder / "tradeoff.json").read_text())
    n_trade = min(trade["config"].get("tradeoff_images") or trade["n_images"], trade["n_images"])
    fig = plot_benchmark_tradeoff(trade["rows"], n_trade, trade["config"]["tradeoff_max_amount"])
    fig.savefig(folder / "tradeoff.png", dpi=120)
    plt.close(fig)
    curves = json.loads((folder / "curves.json").read_text())
    fig = plot_benchmark_curves(curves["methods"], curves["step"])
    fig.savefig(folder / "curves.png", dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.replot is not None:
        if not (args.replot / "tradeoff.json").is_file() or not (args.replot / "curves.json").is_file():
            print(f"error: {args.replot} has no tradeoff.json/curves.json of a finished run", file=sys.stderr)
            return 2
        draw(args.replot)
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    config = BenchmarkConfig(
        n_images=args.n_images, batch_size=args.batch_size, step=args.step, rise_masks=args.rise_masks,
        ig_steps=args.ig_steps, occlusion_window=args.occlusion_window, occlusion_stride=args.occlusion_stride,
        ep_steps=args.ep_steps, tie_orders=args.tie_orders, tradeoff_images=args.tradeoff_images,
        paper_batched=args.paper_batched, checkpoint=args.checkpoint, device=args.device, model=args.model)
    cluster = client = None
    if args.workers:
        from invnb.runs import connect, start_local_cluster

        cluster = start_local_cluster(args.workers, gpus=0 if args.device == "cpu" else None)
        client = connect(cluster.scheduler_address)
    try:
        summary = run_benchmark(config, args.out, methods=args.methods, map_kinds=args.map_kinds,
                                mask_weights=args.mask_weights, time_images=args.time_images,
                                progress=not args.no_progress,
                                executor=None if client is None else client.get_executor())
    finally:
        if cluster is not None:
            client.close()
            cluster.close()
    summary.write(args.out)
    draw(args.out)
    if args.publish:
        args.publish.mkdir(parents=True, exist_ok=True)
        for name in PUBLISHED:
            shutil.copy2(args.out / name, args.publish / name)
    print((args.out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
