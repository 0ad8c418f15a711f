"""Every attribution method side by side on held-out images of the synthetic benchmark.

Runs each method of :func:`invnb.baselines.available_methods` on held-out
images of :mod:`invnb.synthetic` (seeds from 2,000,000 on; the embedded model
was trained and validated on seeds below 1,000,000 and tested on 1,000,000),
explaining the class the embedded model predicts, and measures:

===========================  ==================================================================  =========
column                       what                                                                better
===========================  ==================================================================  =========
deletion_auc                 RISE deletion AUC (zero substrate), ``--step`` pixels per step       lower
insertion_auc                RISE insertion AUC (blur substrate 11x11, sigma 5)                  higher
amount                       amount of activation of the method's kept input (*)                 lower
reid_top1                    top-1 re-identification from that kept input (*)                    higher
reid_top1_top20              top-1 re-identification keeping the map's top 20% pixels             higher
pointing_game                map maximum inside the (main) object mask                           higher
mass_in_mask                 share of the map's mass inside the object mask                      higher
pointing_game_distractor     pointing game on the images with a distractor object                higher
mass_in_mask_distractor      mass inside the target object, images with a distractor             higher
mass_on_distractor           mass on the distractor object, images with a distractor             lower
seconds_per_image            wall time of the attribution alone (threads: see results.json)      lower
===========================  ==================================================================  =========

(*) kept input: for ``inverse`` and ``inverse_paper`` the inverse input
``features[0]`` itself; for every other map ``a`` the soft mask
``x * a / max(a)`` (:func:`invnb.tradeoff.keep_soft`). Failed inverses
count as not re-identified. The trade-off figure sweeps hard top-k and soft
masks for each map and ``mask_weight`` for the inverse (:mod:`invnb.tradeoff`).

Outputs in ``--out``: ``results.csv``/``.json``/``.md`` (table, config,
command), ``tradeoff.csv``/``.json``/``.png``, ``curves.png`` and the
per-batch items in ``items/`` (one file per method and batch: maps, curves,
per-image scores). Running the same command again resumes: finished items
are loaded, not recomputed; ``--methods`` may add methods to a finished run.

Command used for the table bundled with the book (CPU, one thread; the
summary files are copied to ``data/results/synthetic_benchmark/``, which
chapter 02 displays)::

    python scripts/synthetic_benchmark.py --out runs/synthetic_benchmark --threads 1 --no-progress \
        --publish data/results/synthetic_benchmark
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from invnb.baselines import available_methods, make_method  # noqa: E402
from invnb.download import sha256sum  # noqa: E402
from invnb.metrics import (  # noqa: E402
    CausalCurve,
    deletion_curve,
    insertion_curve,
    mass_in_mask,
    pointing_game,
    predicted_classes,
)
from invnb.models import EMBEDDED_CHECKPOINT, load_embedded_model  # noqa: E402
from invnb.runs import ResultStore, code_fingerprint, run_items  # noqa: E402
from invnb.synthetic import make_shapes, normalize  # noqa: E402
from invnb.tradeoff import (  # noqa: E402
    DEFAULT_EXPONENTS,
    DEFAULT_FRACTIONS,
    keep_soft,
    keep_top_fraction,
    kept_input_scores,
    write_table,
)

INVERSES = ("inverse", "inverse_paper")
#: Summary files copied by ``--publish``.
PUBLISHED = ("results.md", "results.json", "results.csv", "tradeoff.csv", "tradeoff.json", "tradeoff.png",
             "curves.png")
TOPK = (1, 5)
#: Held-out seeds: train_embedded.py uses seeds < 10**6 for training and
#: validation and 10**6 + seed for its test set.
SEED_BASE = 2_000_000


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=REPO / "runs" / "synthetic_benchmark", help="output folder")
    p.add_argument("--checkpoint", type=Path, default=EMBEDDED_CHECKPOINT, help="embedded model state dict")
    p.add_argument("--n-images", type=int, default=500, help="held-out images (default 500)")
    p.add_argument("--batch-size", type=int, default=50, help="images per stored item (default 50)")
    p.add_argument("--methods", nargs="+", default=available_methods(), help="methods (default: all)")
    p.add_argument("--step", type=int, default=128,
                   help="pixels per deletion/insertion step (default 128: 32 steps at 64x64; RISE's "
                        "resolution, 224 steps, would be 19: on 20 images and two methods the mean AUCs "
                        "differed by at most 0.0008, at 4x the cost)")
    p.add_argument("--rise-masks", type=int, default=1000, help="RISE masks (default 1000)")
    p.add_argument("--ig-steps", type=int, default=50, help="integrated-gradients steps (default 50)")
    p.add_argument("--occlusion-window", type=int, default=8, help="occlusion patch side (default 8)")
    p.add_argument("--occlusion-stride", type=int, default=4, help="occlusion stride (default 4)")
    p.add_argument("--mask-weights", type=float, nargs="*", default=[0.25, 0.5, 1.0, 2.0, 4.0],
                   help="mask_weight sweep of the inverse for the trade-off (default 0.25 0.5 1 2 4)")
    p.add_argument("--tradeoff-images", type=int, default=None,
                   help="images used for the trade-off sweeps (default: all)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--publish", type=Path, default=None,
                   help="also copy the summary files (tables, figures; not the per-item maps) here")
    args = p.parse_args(argv)
    unknown = sorted(set(args.methods) - set(available_methods()))
    if unknown:
        p.error(f"unknown methods {unknown}; choose from {available_methods()}")
    for name in ("n_images", "batch_size", "step", "rise_masks", "ig_steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def git_commit() -> str | None:
    """The repository's HEAD commit (with "+dirty" for uncommitted changes), None outside git."""
    import subprocess

    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def method_kwargs(name: str, args: argparse.Namespace) -> dict:
    return {
        "rise": {"n_masks": args.rise_masks, "seed": 0, "batch_size": 100},
        "integrated_gradients": {"n_steps": args.ig_steps},
        "occlusion": {"window": args.occlusion_window, "stride": args.occlusion_stride},
        "random": {"seed": 0},
    }.get(name, {})


def batch_data(b: int, args, device):
    """Images of batch b: make_shapes on its own seed, so batches are independent."""
    n = min(args.batch_size, args.n_images - b * args.batch_size)
    data = make_shapes(n, seed=SEED_BASE + b).to(device)
    return data, normalize(data.images)


def evaluate(name: str, method, model, b: int, args, device) -> dict:
    """Map, curves and scores of one method on batch b (per-image arrays)."""
    data, x = batch_data(b, args, device)
    classes = predicted_classes(model, x)
    start = time.perf_counter()
    if name in INVERSES:
        res = method.inverse.invert(x, target=classes)
        maps, kept, failed = res.attribution, res.input, res.failed
    else:
        maps = method.attribute(x, target=classes)
        kept, failed = keep_soft(x, maps), torch.zeros(len(x), dtype=torch.bool)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    maps = torch.nan_to_num(maps.float(), nan=0.0)
    dele = deletion_curve(model, x, maps, target=classes, step=args.step)
    ins = insertion_curve(model, x, maps, target=classes, step=args.step)
    own = kept_input_scores(model, kept, x, classes, TOPK)
    failed = failed.to(device)
    top20 = kept_input_scores(model, keep_top_fraction(x, maps, 0.2), x, classes, TOPK)
    dis = data.has_distractor
    return {
        "attributions": maps,
        "deletion_scores": dele.scores, "insertion_scores": ins.scores,
        "deletion_auc": dele.auc, "insertion_auc": ins.auc,
        "amount": own["amount"], "reid_top1": own["top1"] & ~failed, "reid_top5": own["top5"] & ~failed,
        "reid_top1_top20": top20["top1"],
        "pointing_game": pointing_game(maps, data.masks), "mass_in_mask": mass_in_mask(maps, data.masks),
        "mass_on_distractor": torch.where(dis, mass_in_mask(maps, data.distractor_masks),
                                          torch.full_like(dele.auc, float("nan"))),
        "has_distractor": dis, "failed": failed, "classes": classes, "labels": data.labels,
        "seconds": seconds, "n": len(x),
    }


def tradeoff_maps(name: str, store: ResultStore, model, b: int, args, device) -> dict:
    """Hard top-k and soft-mask sweeps of a stored map on batch b."""
    _, x = batch_data(b, args, device)
    rec = store.load(f"{name}-b{b:03d}")
    maps = torch.from_numpy(rec.arrays["attributions"]).to(device)
    classes = torch.from_numpy(rec.arrays["classes"]).to(device)
    m = tradeoff_count(b, args)
    x, maps, classes = x[:m], maps[:m], classes[:m]
    out = {}
    for mode, params, keep in (("hard", DEFAULT_FRACTIONS, keep_top_fraction), ("soft", DEFAULT_EXPONENTS, keep_soft)):
        if mode == "soft" and name == "uniform":
            continue  # x * 1 = x: the amount of the unmasked image is undefined
        scores = [kept_input_scores(model, keep(x, maps, p), x, classes, TOPK) for p in params]
        out[f"{mode}_amount"] = torch.stack([s["amount"] for s in scores])
        for k in TOPK:
            out[f"{mode}_top{k}"] = torch.stack([s[f"top{k}"] for s in scores])
    return out


def tradeoff_inverse(weight: float, model, b: int, args, device) -> dict:
    from invnb.inverse import LayerwiseInverse

    _, x = batch_data(b, args, device)
    x = x[: tradeoff_count(b, args)]
    classes = predicted_classes(model, x)
    res = LayerwiseInverse(model, mask_weight=weight).invert(x, target=classes)
    s = kept_input_scores(model, res.input, x, classes, TOPK)
    failed = res.failed.to(device)
    return {"amount": s["amount"], "failed": failed, **{f"top{k}": s[f"top{k}"] & ~failed for k in TOPK}}


def batch_of(key: str) -> int:
    """Batch index of an item key ``...-b007``."""
    return int(key.rsplit("-b", 1)[1])


def tradeoff_count(b: int, args) -> int:
    """Images of batch b that enter the trade-off sweeps."""
    n_b = min(args.batch_size, args.n_images - b * args.batch_size)
    total = args.n_images if args.tradeoff_images is None else min(args.tradeoff_images, args.n_images)
    return max(0, min(n_b, total - b * args.batch_size))


def _cat(records, key):
    return np.concatenate([r.arrays[key] for r in records])


def summarise(name: str, records) -> tuple[dict, dict]:
    """Table row (means) and standard errors of one method."""
    dis = _cat(records, "has_distractor").astype(bool)
    n = len(dis)
    cols = {
        "deletion_auc": _cat(records, "deletion_auc"), "insertion_auc": _cat(records, "insertion_auc"),
        "amount": _cat(records, "amount"), "reid_top1": _cat(records, "reid_top1"),
        "reid_top5": _cat(records, "reid_top5"), "reid_top1_top20": _cat(records, "reid_top1_top20"),
        "pointing_game": _cat(records, "pointing_game"), "mass_in_mask": _cat(records, "mass_in_mask"),
        "pointing_game_distractor": _cat(records, "pointing_game")[dis],
        "mass_in_mask_distractor": _cat(records, "mass_in_mask")[dis],
        "mass_on_distractor": _cat(records, "mass_on_distractor")[dis],
    }
    row = {"method": name, "n_images": n, "n_distractor": int(dis.sum())}
    se = {}
    for k, v in cols.items():
        v = v.astype(float)
        row[k] = float(v.mean()) if len(v) else float("nan")
        se[k] = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan")
    row["seconds_per_image"] = sum(r.scalars["seconds"] for r in records) / n
    row["n_failed"] = int(_cat(records, "failed").sum())
    labels, classes = _cat(records, "labels"), _cat(records, "classes")
    row["model_accuracy"] = float((labels == classes).mean())
    return row, se


def tradeoff_rows(name: str, records) -> list[dict]:
    rows = []
    for mode, pname, params in (("hard", "fraction", DEFAULT_FRACTIONS), ("soft", "exponent", DEFAULT_EXPONENTS)):
        if f"{mode}_amount" not in records[0].arrays:
            continue
        amount = np.concatenate([r.arrays[f"{mode}_amount"] for r in records], axis=1)
        tops = {k: np.concatenate([r.arrays[f"{mode}_top{k}"] for r in records], axis=1) for k in TOPK}
        for i, p in enumerate(params):
            row = {"method": name, "mode": mode, "param_name": pname, "param": p,
                   "amount": float(amount[i].mean()), "n_images": amount.shape[1]}
            row.update({f"reid_top{k}": float(tops[k][i].mean()) for k in TOPK})
            rows.append(row)
    return rows


def markdown(rows: list[dict], command: str, config: dict) -> str:
    cols = ["deletion_auc", "insertion_auc", "amount", "reid_top1", "reid_top1_top20", "pointing_game",
            "mass_in_mask", "mass_in_mask_distractor", "mass_on_distractor", "seconds_per_image"]
    arrows = {"deletion_auc": "↓", "amount": "↓", "mass_on_distractor": "↓", "seconds_per_image": "↓"}
    head = "| method | " + " | ".join(f"{c} {arrows.get(c, '↑')}" for c in cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 1)]
    for r in rows:
        lines.append(f"| {r['method']} | " + " | ".join(
            f"{r[c]:.3g}" if c == "seconds_per_image" else f"{r[c]:.3f}" for c in cols) + " |")
    n = rows[0]["n_images"] if rows else 0
    nd = rows[0]["n_distractor"] if rows else 0
    return (
        f"Synthetic benchmark: {n} held-out images ({nd} with a distractor), embedded model "
        f"accuracy {rows[0]['model_accuracy']:.3f} on them.\n\n" + "\n".join(lines)
        + f"\n\nCommand: `{command}`\n\nConfig: `{json.dumps(config, sort_keys=True)}`\n"
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    progress = not args.no_progress
    model = load_embedded_model(args.checkpoint, device=device)
    config = {
        "checkpoint_sha256": sha256sum(args.checkpoint), "batch_size": args.batch_size, "seed_base": SEED_BASE,
        "step": args.step, "rise_masks": args.rise_masks, "ig_steps": args.ig_steps,
        "occlusion_window": args.occlusion_window, "occlusion_stride": args.occlusion_stride,
        "tradeoff_images": args.tradeoff_images, "fractions": list(DEFAULT_FRACTIONS),
        "exponents": list(DEFAULT_EXPONENTS),
    }
    store = ResultStore(args.out / "items", config=config)
    n_batches = math.ceil(args.n_images / args.batch_size)
    batches = range(n_batches)

    summary, errors, trade = [], {}, []
    for name in args.methods:
        method = make_method(name, model, **method_kwargs(name, args))
        def fn(key, name=name, method=method):
            return evaluate(name, method, model, batch_of(key), args, device)

        run = run_items([f"{name}-b{b:03d}" for b in batches], fn, store, progress=progress, desc=name)
        row, se = summarise(name, run.records)
        summary.append(row)
        errors[name] = se
        if name in INVERSES:
            # the method's own setting is one point of the trade-off plot
            trade.append({"method": name, "mode": "inverse", "param_name": "mask_weight",
                          "param": float(method.inverse.mask_weight), "amount": row["amount"],
                          "n_images": row["n_images"], **{f"reid_top{k}": row[f"reid_top{k}"] for k in TOPK}})
            continue
        tb = [b for b in batches if tradeoff_count(b, args) > 0]
        tr = run_items([f"tradeoff-{name}-b{b:03d}" for b in tb],
                       lambda key, name=name: tradeoff_maps(name, store, model, batch_of(key), args, device),
                       store, progress=progress, desc=f"trade-off {name}")
        trade += tradeoff_rows(name, tr.records)

    if "inverse" in args.methods:
        tb = [b for b in batches if tradeoff_count(b, args) > 0]
        for w in args.mask_weights:
            tr = run_items([f"tradeoff-inverse-w{w:g}-b{b:03d}" for b in tb],
                           lambda key, w=w: tradeoff_inverse(w, model, batch_of(key), args, device),
                           store, progress=progress, desc=f"trade-off inverse w={w:g}")
            amount = np.concatenate([r.arrays["amount"] for r in tr.records])
            row = {"method": "inverse (sweep)", "mode": "inverse", "param_name": "mask_weight", "param": w,
                   "amount": float(amount.mean()), "n_images": len(amount),
                   "n_failed": int(sum(r.arrays["failed"].sum() for r in tr.records))}
            row.update({f"reid_top{k}": float(np.concatenate([r.arrays[f'top{k}'] for r in tr.records]).mean())
                        for k in TOPK})
            trade.append(row)

    command = "python " + " ".join(shlex.quote(a) for a in [str(Path(sys.argv[0])), *sys.argv[1:]])
    meta = {"command": command, "config": config, "n_images": args.n_images, "device": str(device),
            "code_fingerprint": code_fingerprint(), "git_commit": git_commit(),
            "threads": torch.get_num_threads(), "torch": torch.__version__, "platform": platform.platform(),
            "methods": {m: method_kwargs(m, args) for m in args.methods}}
    out = args.out
    write_table(summary, out / "results.csv")
    (out / "results.json").write_text(json.dumps({**meta, "rows": summary, "standard_errors": errors}, indent=1))
    (out / "results.md").write_text(markdown(summary, command, config))
    write_table(trade, out / "tradeoff.csv")
    (out / "tradeoff.json").write_text(json.dumps({**meta, "rows": trade}, indent=1))
    draw(args, store, trade, batches)
    if args.publish:
        import shutil

        args.publish.mkdir(parents=True, exist_ok=True)
        for name in PUBLISHED:
            shutil.copy2(out / name, args.publish / name)
    print((out / "results.md").read_text())
    return 0


def draw(args, store: ResultStore, trade: list[dict], batches) -> None:
    """Trade-off figure (hard and soft masks) and mean deletion/insertion curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from invnb.plot import plot_curves, plot_tradeoff

    names = list(dict.fromkeys(r["method"] for r in trade))
    palette = plt.get_cmap("tab20")
    colors = {m: palette(i % 20) for i, m in enumerate(n for n in names if not n.startswith("inverse"))}
    colors.update({"inverse (sweep)": "black", "inverse": "black", "inverse_paper": "red"})
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), sharey=True)
    for ax, mode, title in zip(axes, ("hard", "soft"), ("hard top-k masks", "soft masks x * (a / max a)^e")):
        plot_tradeoff(trade, ax=ax, modes=(mode, "inverse"), colors=colors)
        ax.set_title(f"maps kept as {title}; inverse: mask_weight sweep")
    fig.suptitle(f"Trade-off on {args.n_images if args.tradeoff_images is None else args.tradeoff_images} "
                 "held-out synthetic images (upper left is better)")
    fig.tight_layout()
    fig.savefig(args.out / "tradeoff.png", dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    for ax, mode in zip(axes, ("deletion", "insertion")):
        curves = {}
        for name in args.methods:
            recs = [store.load(f"{name}-b{b:03d}") for b in batches]
            scores = torch.from_numpy(_cat(recs, f"{mode}_scores"))
            hw = int(np.prod(recs[0].arrays["attributions"].shape[1:]))
            fractions = torch.clamp(torch.arange(scores.shape[1]) * args.step, max=hw).float() / hw
            curves[name] = CausalCurve(auc=torch.from_numpy(_cat(recs, f"{mode}_auc")), fractions=fractions,
                                       scores=scores, classes=None, mode=mode, step=args.step)
        plot_curves(curves, ax=ax)
    fig.tight_layout()
    fig.savefig(args.out / "curves.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
