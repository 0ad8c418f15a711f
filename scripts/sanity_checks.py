"""Model-parameter randomisation sanity check of every attribution method on an embedded model.

A command line over :func:`invnb.eval.sanity_run.run_sanity_checks`: for each method the
embedded model's layers are re-initialised (cascading from the top, and all at once) for
several seeds, and the randomised model's maps are compared with the trained model's
(Spearman, SSIM, top-10% IoU; mass in the object and pointing game of the randomised maps).
Outputs in ``--out``: ``rows.jsonl`` (resumable), ``summary.csv``/``.json``/``.md``,
``randomisation.png``.

The bundled results (``data/results/sanity_checks/``) come from one run::

    python scripts/sanity_checks.py --out runs/sanity_checks --threads 1 --publish data/results/sanity_checks

and the embedded SmallResNet's (``data/results/sanity_checks_resnet/``) from the same command with
``--model smallresnet --out runs/sanity_checks_resnet --publish data/results/sanity_checks_resnet``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from invnb.attribution import available_methods  # noqa: E402
from invnb.eval.sanity import SCORES  # noqa: E402
from invnb.eval.sanity_run import run_sanity_checks  # noqa: E402
from invnb.models import EMBEDDED_MODELS  # noqa: E402

PUBLISHED = ("summary.csv", "summary.json", "summary.md", "randomisation.png", "rows.jsonl")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=REPO / "runs" / "sanity_checks", help="output folder")
    p.add_argument("--model", choices=EMBEDDED_MODELS, default="smallvgg",
                   help="the embedded model (default smallvgg; smallresnet: the residual network)")
    p.add_argument("--checkpoint", type=str, default=None, help="embedded model state dict (default: the bundled one)")
    p.add_argument("--n-images", type=int, default=20, help="held-out images (default 20)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="re-initialisation seeds (default 0 1 2)")
    p.add_argument("--methods", nargs="+", default=available_methods(), help="methods (default: all)")
    p.add_argument("--modes", nargs="+", default=["cascade", "all"], choices=["cascade", "all"])
    p.add_argument("--cascade-seeds", type=int, nargs="*", default=None,
                   help="seeds that also run the cascade (default: all --seeds); the others run 'all' only")
    p.add_argument("--rise-masks", type=int, default=500, help="RISE masks (default 500)")
    p.add_argument("--ig-steps", type=int, default=32, help="integrated-gradients steps (default 32)")
    p.add_argument("--occlusion-window", type=int, default=8, help="occlusion patch side (default 8)")
    p.add_argument("--occlusion-stride", type=int, default=4, help="occlusion stride (default 4)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--paper-batched", action="store_true",
                   help="run inverse_paper on all images at once (only rounding differs; for GPUs)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--summary-only", action="store_true",
                   help="compute nothing: summarise the rows already in --out (e.g. of an interrupted run)")
    p.add_argument("--no-progress", action="store_true", help="print no line per finished step")
    p.add_argument("--publish", type=Path, default=None, help="also copy the summary files, the per-image rows and the figure here")
    args = p.parse_args(argv)
    unknown = sorted(set(args.methods) - set(available_methods()))
    if unknown:
        p.error(f"unknown methods {unknown}; choose from {available_methods()}")
    if args.n_images < 1 or args.rise_masks < 1 or args.ig_steps < 1:
        p.error("--n-images, --rise-masks and --ig-steps must be >= 1")
    return args


def method_kwargs(args) -> dict:
    return {
        "rise": {"n_masks": args.rise_masks, "seed": 0, "batch_size": 100},
        "integrated_gradients": {"n_steps": args.ig_steps},
        "occlusion": {"window": args.occlusion_window, "stride": args.occlusion_stride},
        "random": {"seed": 0},
        "inverse_paper": {"batch_size": None} if args.paper_batched else {},
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    kwargs = method_kwargs(args)
    report = run_sanity_checks(args.out, args.methods, n_images=args.n_images, seeds=args.seeds,
                               cascade_seeds=args.cascade_seeds, modes=args.modes,
                               method_kwargs={m: kwargs.get(m, {}) for m in args.methods},
                               checkpoint=args.checkpoint, device=args.device, compute=not args.summary_only,
                               progress=not args.no_progress, model=args.model)
    report.write(args.out)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from invnb.plot import plot_randomisation

    meta = report.meta
    fig = plot_randomisation(report.rows, scores=SCORES)
    fig.suptitle(f"Model randomisation ({meta['model']}), {meta['n_images']} held-out images, cascade seeds {meta['cascade_seeds']}, "
                 f"all-at-once seeds {meta['seeds']}")
    fig.tight_layout()
    fig.savefig(args.out / "randomisation.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    if args.publish:
        args.publish.mkdir(parents=True, exist_ok=True)
        for name in PUBLISHED:
            shutil.copy2(args.out / name, args.publish / name)
    print((args.out / "summary.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
