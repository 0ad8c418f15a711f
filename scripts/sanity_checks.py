"""Model-parameter randomisation sanity check of every attribution method on the embedded model.

For each method (default: every name of :func:`invnb.baselines.available_methods`,
the inverse's default and paper settings included), the embedded model's
layers are re-initialised with ``reset_parameters()`` -- cascading from the top
layer down to the input, and all at once -- for several seeds, and the maps of
the randomised model (explaining *its own* predicted class) are compared with
the trained model's (:mod:`invnb.sanity`): Spearman rank correlation, SSIM of
max-normalised maps, IoU of the top 10% pixels, and the ground-truth scores
mass in the object mask and pointing game. Images: held-out
``make_shapes(n, seed=2_000_000)`` (the synthetic benchmark's first batch).

It also prints the criterion of issue 15: on the fully re-initialised model
(all at once), the default inverse's Spearman correlation with its trained
map must be at most occlusion's + 0.1, and its mass in the object must fall.

Outputs in ``--out``: ``rows.jsonl`` (per image, per method/seed/mode/step;
a rerun resumes from it), ``summary.csv``/``.json``/``.md``, ``randomisation.png``.

Command used for the results bundled in ``data/results/sanity_checks/`` (CPU,
one thread, about 35 minutes on a shared 2-core machine: 6 images, the
cascade for seed 0 only, fewer RISE masks and IG steps than the defaults)::

    python scripts/sanity_checks.py --out data/results/sanity_checks --threads 1 --n-images 6 \
        --seeds 0 1 2 --cascade-seeds 0 --rise-masks 250 --ig-steps 16 \
        --methods inverse occlusion saliency sobel uniform random input_x_gradient \
                  integrated_gradients guided_backprop grad_cam rise inverse_paper

The full default (20 images, cascade for the three seeds, 500 RISE masks,
32 IG steps), e.g. on a GPU::

    python scripts/sanity_checks.py --out runs/sanity_checks --device cuda

An interrupted run resumes from ``rows.jsonl`` (rows computed with other
invnb code, images, checkpoint or method settings are ignored and recomputed);
``--summary-only`` writes the tables and the figure from the matching rows.
``--merge A B --out C`` summarises finished runs together (each method's rows
from the first run that has it), e.g. a recomputed inverse beside an earlier
run of the other methods; ``summary.json`` lists the sources.
"""

from __future__ import annotations

import argparse
import json
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
from invnb.models import EMBEDDED_CHECKPOINT, load_embedded_model  # noqa: E402
from invnb.runs import code_fingerprint, git_commit  # noqa: E402
from invnb.sanity import SCORES, parametric_layers, randomisation_curves, summarise  # noqa: E402
from invnb.synthetic import HELD_OUT_SEED, make_shapes, normalize  # noqa: E402
from invnb.tradeoff import write_table  # noqa: E402

SEED_BASE = HELD_OUT_SEED  # the held-out images (invnb.synthetic)
#: Criterion margin of issue 15 (Spearman of the default inverse <= occlusion's + MARGIN).
MARGIN = 0.1


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=REPO / "runs" / "sanity_checks", help="output folder")
    p.add_argument("--checkpoint", type=Path, default=EMBEDDED_CHECKPOINT, help="embedded model state dict")
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
                   help="run inverse_paper on a whole item at once instead of one image at a time; its solver is "
                        "per image, so only rounding differs (for GPUs, where one-at-a-time is slow)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--summary-only", action="store_true",
                   help="compute nothing: summarise the rows already in --out (e.g. of an interrupted run)")
    p.add_argument("--no-progress", action="store_true", help="print no line per finished step")
    p.add_argument("--merge", type=Path, nargs="+", default=None, metavar="FOLDER",
                   help="compute nothing: summarise finished runs together into --out, each method's rows from "
                        "the first FOLDER that has it (same images, seeds and checkpoint); sources recorded")
    args = p.parse_args(argv)
    unknown = sorted(set(args.methods) - set(available_methods()))
    if unknown:
        p.error(f"unknown methods {unknown}; choose from {available_methods()}")
    if args.n_images < 1 or args.rise_masks < 1 or args.ig_steps < 1:
        p.error("--n-images, --rise-masks and --ig-steps must be >= 1")
    return args


def method_kwargs(name: str, args) -> dict:
    return {
        "rise": {"n_masks": args.rise_masks, "seed": 0, "batch_size": 100},
        "integrated_gradients": {"n_steps": args.ig_steps},
        "occlusion": {"window": args.occlusion_window, "stride": args.occlusion_stride},
        "random": {"seed": 0},
        "inverse_paper": {"batch_size": None} if args.paper_batched else {},
    }.get(name, {})


def _key(r) -> tuple:
    return (r["method"], r["seed"], r["mode"], r["step"])


def criterion(summary: list[dict]) -> dict | None:
    """Issue 15's test on the all-at-once randomised model; None when a needed method is missing."""
    get = {(r["method"], r["mode"]): r for r in summary}
    need = [("inverse", "all"), ("occlusion", "all"), ("inverse", "trained")]
    if any(k not in get for k in need):
        return None
    inv, occ, tr = get[("inverse", "all")], get[("occlusion", "all")], get[("inverse", "trained")]
    rank_ok = inv["spearman"] <= occ["spearman"] + MARGIN
    mass_ok = inv["mass_in_mask"] < tr["mass_in_mask"]
    return {"inverse_spearman": inv["spearman"], "occlusion_spearman": occ["spearman"], "margin": MARGIN,
            "spearman_ok": bool(rank_ok), "mass_trained": tr["mass_in_mask"], "mass_random": inv["mass_in_mask"],
            "mass_falls": bool(mass_ok), "passes": bool(rank_ok and mass_ok)}


def markdown(summary: list[dict], crit: dict | None, meta: dict) -> str:
    cols = ("spearman", "ssim", "topk_iou", "mass_in_mask", "pointing_game")
    lines = [f"Model-parameter randomisation on {meta['n_images']} held-out synthetic images, "
             f"seeds {meta['seeds']} (cascade: {meta['cascade_seeds']}); each map explains its own model's predicted class. "
             "Similarities compare the trained model's map with the randomised model's (lower = the map "
             "depends more on the learned weights); mass/pointing are the randomised maps' ground-truth scores.",
             "", "All layers re-initialised at once (mean over images and seeds; +- sd over seeds):", "",
             "| method | " + " | ".join(cols) + " | mass, trained | pointing, trained | same class |",
             "|---|" + "---:|" * (len(cols) + 3)]
    get = {(r["method"], r["mode"]): r for r in summary}
    for m in dict.fromkeys(r["method"] for r in summary):
        a, t = get.get((m, "all")), get.get((m, "trained"))
        if a is None or t is None:
            continue
        cells = [f"{a[c]:.3f} ± {a[c + '_sd']:.3f}" for c in cols]
        lines.append(f"| {m} | " + " | ".join(cells) +
                     f" | {t['mass_in_mask']:.3f} | {t['pointing_game']:.3f} | {a['same_class']:.2f} |")
    lines += ["", "Cascade (top layer first), Spearman trained vs randomised after k layers:", ""]
    steps = sorted({r["step"] for r in summary if r["mode"] == "cascade"})
    layers = {r["step"]: r["layer"] for r in summary if r["mode"] == "cascade"}
    lines += ["| method | " + " | ".join(f"{k}: {layers[k]}" for k in steps) + " |",
              "|---|" + "---:|" * len(steps)]
    for m in dict.fromkeys(r["method"] for r in summary):
        c = {r["step"]: r for r in summary if r["method"] == m and r["mode"] == "cascade"}
        if c:
            lines.append(f"| {m} | " + " | ".join(f"{c[k]['spearman']:.3f}" if k in c else "" for k in steps) + " |")
    lines += ["", criterion_text(crit), "", f"Command: `{meta['command']}`", "",
              f"Commit: `{meta['git_commit']}`; checkpoint sha256 `{meta['checkpoint_sha256']}`; "
              f"device {meta['device']}, {meta['threads']} thread(s); {meta['seconds']:.0f} s this run."]
    return "\n".join(lines) + "\n"


def criterion_text(crit: dict | None) -> str:
    if crit is None:
        return "Criterion (issue 15): not computed (needs inverse and occlusion, mode all)."
    return (f"Criterion (issue 15), all layers re-initialised: default inverse Spearman "
            f"{crit['inverse_spearman']:.3f} vs occlusion {crit['occlusion_spearman']:.3f} + {MARGIN} -> "
            f"{'ok' if crit['spearman_ok'] else 'FAILS'}; inverse mass in object {crit['mass_trained']:.3f} "
            f"(trained) -> {crit['mass_random']:.3f} (random) -> {'falls' if crit['mass_falls'] else 'DOES NOT FALL'}"
            f". Overall: {'PASS' if crit['passes'] else 'FAIL'}.")


def merge_note(sources: list[dict]) -> str:
    """The lines ``summary.md`` of a merged summary ends with: which run each method comes from."""
    return "\nMerged from runs of the same images, seeds and checkpoint:\n\n" + "\n".join(
        f"- run {i}: {', '.join(s['methods'])}; `{s['command']}` at commit {str(s['git_commit'])[:7]} on "
        f"{s['device']} ({s['threads']} thread(s), {s['seconds']:.0f} s){'. ' + s['note'] if s.get('note') else ''}"
        for i, s in enumerate(sources)) + "\n"


def merge(folders: list[Path], out: Path) -> int:
    """Summarise finished runs together (see ``--merge``); returns the exit status."""
    same = ("n_images", "seed_base", "checkpoint_sha256", "seeds", "cascade_seeds")
    owner: dict[str, int] = {}
    rows, sources, metas = [], [], []
    for i, folder in enumerate(folders):
        missing = [n for n in ("rows.jsonl", "summary.json") if not (folder / n).is_file()]
        if missing:
            print(f"error: {folder} has no {', '.join(missing)}; --merge needs finished runs", file=sys.stderr)
            return 2
        meta = json.loads((folder / "summary.json").read_text())
        if metas and any(meta[k] != metas[0][k] for k in same):
            print(f"error: {folder} differs from {folders[0]} in {', '.join(k for k in same if meta[k] != metas[0][k])}; "
                  "only runs of the same images, seeds and checkpoint can be merged", file=sys.stderr)
            return 2
        metas.append(meta)
        run_rows = [json.loads(line) for line in (folder / "rows.jsonl").read_text().splitlines()]
        latest = {r["method"]: r["config"] for r in run_rows}  # the run's last configuration per method
        taken = []
        for r in run_rows:
            m = r["method"]
            if m in meta["methods"] and r["config"] == latest[m] and owner.setdefault(m, i) == i and (
                    r["seed"] is None or r["seed"] in meta["seeds"]):
                rows.append(r)
                taken.append(m)
        sources.append({"folder": str(folder), "methods": list(dict.fromkeys(taken)),
                        **{k: meta.get(k) for k in ("command", "git_commit", "device", "threads", "seconds", "note")}})
    summary = summarise(rows)
    crit = criterion(summary)
    command = "python " + " ".join(shlex.quote(a) for a in ["scripts/sanity_checks.py", *sys.argv[1:]])
    meta = {"command": command, "git_commit": "see merged_from", **{k: metas[0][k] for k in same},
            "device": "+".join(dict.fromkeys(s["device"] for s in sources)),
            "threads": "/".join(str(s["threads"]) for s in sources), "torch": metas[0].get("torch"),
            "platform": metas[0].get("platform"), "layers": metas[0].get("layers"),
            "methods": {m: metas[owner[m]]["methods"][m] for m in owner}, "seconds": 0.0, "merged_from": sources}
    out.mkdir(parents=True, exist_ok=True)
    (out / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    write_summary(out, summary, crit, meta, merge_note(sources))
    return 0


def write_summary(out: Path, summary: list[dict], crit: dict | None, meta: dict, note: str = "") -> None:
    """``summary.csv``/``.json``/``.md`` and ``randomisation.png`` in `out` (`note`: appended to the markdown)."""
    out.mkdir(parents=True, exist_ok=True)
    write_table(summary, out / "summary.csv")
    (out / "summary.json").write_text(json.dumps({**meta, "criterion": crit, "rows": summary}, indent=1))
    (out / "summary.md").write_text(markdown(summary, crit, meta) + note)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from invnb.plot_sanity import plot_randomisation

    fig = plot_randomisation(summary, scores=SCORES)
    fig.suptitle(f"Model randomisation, {meta['n_images']} held-out images, cascade seeds {meta['cascade_seeds']}, "
                 f"all-at-once seeds {meta['seeds']}")
    fig.tight_layout()
    fig.savefig(out / "randomisation.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    print((out / "summary.md").read_text())


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.merge is not None:
        return merge(args.merge, args.out)
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.time()
    device = torch.device(args.device)
    # full float32 on GPUs: cuDNN's default TF32 convolutions round to ~1e-3, more than the CPU
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    model = load_embedded_model(args.checkpoint, device=device)
    data = make_shapes(args.n_images, seed=SEED_BASE).to(device)
    x = normalize(data.images)
    args.out.mkdir(parents=True, exist_ok=True)
    store = args.out / "rows.jsonl"
    config = {"n_images": args.n_images, "seed_base": SEED_BASE, "checkpoint_sha256": sha256sum(args.checkpoint),
              "methods": {m: method_kwargs(m, args) for m in args.methods}, "code": code_fingerprint()}
    rows: dict[tuple, dict] = {}
    if store.is_file():
        for line in store.read_text().splitlines():
            r = json.loads(line)
            if r.get("config") == config:
                rows[_key(r)] = r
    print(f"{len(rows)} rows loaded from {store}" if rows else f"writing {store}", flush=True)

    def save(r):
        if _key(r) in rows:
            return
        rows[_key(r)] = {**r, "config": config}
        with store.open("a") as fh:
            fh.write(json.dumps(rows[_key(r)]) + "\n")
        if not args.no_progress:
            print(f"{time.time() - t0:7.0f}s {r['method']:>20} seed {r['seed']} {r['mode']:>7} step {r['step']}: "
                  f"spearman {np.mean(r['spearman']):.3f}, mass {np.mean(r['mass_in_mask']):.3f}", flush=True)

    n_steps = len(parametric_layers(model))
    cascade_seeds = args.seeds if args.cascade_seeds is None else args.cascade_seeds
    for seed in args.seeds:
        modes = [m for m in args.modes if m == "all" or seed in cascade_seeds]
        if not modes:
            continue
        expected = {("cascade", k) for k in range(1, n_steps + 1)} if "cascade" in modes else set()
        expected |= {("all", n_steps)} if "all" in modes else set()
        for name in args.methods:
            if args.summary_only:
                break
            have = {(k[2], k[3]) for k in rows if k[0] == name and k[1] == seed}
            if (name, None, "trained", 0) in rows and expected <= have:
                continue
            kw = method_kwargs(name, args)
            t = time.time()
            randomisation_curves(model, x, data.masks, {name: lambda m, name=name, kw=kw: make_method(name, m, **kw)},
                                 seeds=[seed], modes=modes, on_row=save)
            print(f"{name} seed {seed}: {time.time() - t:.0f} s", flush=True)

    keep = [r for r in rows.values() if r["method"] in args.methods and (
        r["seed"] is None or (r["seed"] in args.seeds and r["mode"] in args.modes
                              and (r["mode"] == "all" or r["seed"] in cascade_seeds)))]
    summary = summarise(keep)
    crit = criterion(summary)
    command = "python " + " ".join(shlex.quote(a) for a in ["scripts/sanity_checks.py", *sys.argv[1:]])
    meta = {"command": command, "git_commit": git_commit(), "checkpoint_sha256": config["checkpoint_sha256"],
            "n_images": args.n_images, "seeds": args.seeds, "cascade_seeds": cascade_seeds, "seed_base": SEED_BASE, "device": str(device),
            "threads": torch.get_num_threads(), "torch": torch.__version__, "platform": platform.platform(),
            "layers": parametric_layers(model), "methods": config["methods"], "seconds": time.time() - t0}
    write_summary(args.out, summary, crit, meta)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
