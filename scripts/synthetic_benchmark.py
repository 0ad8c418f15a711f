"""Every attribution method side by side on held-out images of the synthetic benchmark.

Runs each method of :func:`invnb.baselines.available_methods` on held-out
images of :mod:`invnb.synthetic` (seeds from 2,000,000 on; the embedded model
was trained and validated on seeds below 1,000,000 and tested on 1,000,000),
explaining the class the embedded model predicts, and measures, for every
map by the same rules (the fair protocol of issue 10):

===========================  ==================================================================  =========
column                       what                                                                better
===========================  ==================================================================  =========
deletion_auc                 RISE deletion AUC (zero substrate), ``--step`` pixels per step;     lower
                             ties: mean over ``--tie-orders`` (8) seeded random tie orders
insertion_auc                RISE insertion AUC (blur 11x11, sigma 5), ties as deletion          higher
pointing_game                share of the map's near-maximal pixels (>= (1 - 1e-3) * max) that   higher
                             lie in the (main) object mask
pointing_game_strict         the same with exact ties only (the old rule)                        higher
mass_in_mask                 share of the map's mass inside the object mask                      higher
mass_on_distractor           mass on the distractor object, images with a distractor             lower
own_amount, own_reid_top1    amount / top-1 re-identification of the method's *own* kept input:  --/higher
                             the inverse input ``features[0]`` (inverses), ``x * m`` of the
                             smallest preserving mask (extremal perturbation); none otherwise
soft_amount, soft_reid_top1  kept input ``x * a / max a`` (:func:`invnb.tradeoff.keep_soft`)     --/higher
hard20_reid_top1             kept input: the map's top 20% pixels (seeded ties)                  higher
tradeoff_auc_hard / _soft    area under re-identification vs amount over amounts [0, 0.3] / 0.3  higher
                             of the map's hard (top 1%...90% pixels) / soft (exponents
                             0.25...8) sweep (:func:`invnb.tradeoff.tradeoff_auc`)
tradeoff_auc_own             the same for the inverse's own kept input over ``--mask-weights``   higher
reid_hard_at_object          the hard curve read at the amount of the object itself (x * mask)   higher
seconds_per_image            wall time of the attribution alone (device/threads: results.json)   lower
seconds_per_image_cpu1       the same on ``--time-images`` images, CPU, one thread (also its     lower
                             process CPU time, ``cpu_seconds_per_image_cpu1``, in the JSON)
===========================  ==================================================================  =========

Row ``object_mask`` is a reference, not a method: the ground-truth mask of
the object itself used as the map, scored by the same rules (pointing and
mass 1 by construction; the trade-off columns say what a perfect localiser
scores: it keeps the whole object, and a map whose values are all equal on it
keeps it whole in every soft mask).

Rows ``inverse.abs``, ``inverse.abs_x``, ``inverse.ratio`` (and the same for
``inverse_paper``) are maps made from the inverse's kept input by
:func:`invnb.tradeoff.kept_input_map` (``--inverse-maps``); the kind equal
to the engine's own map is left out, so the script works whatever map the
engine makes by default. The inverse rows use ``LayerwiseInverse(model)``
(the default constructor) and ``LayerwiseInverse.paper(model)``; the trade-off
also sweeps ``mask_weight`` of the default inverse (``--mask-weights``). The
``*_at_object`` numbers and the trade-off figure use the object itself
(``x`` times its ground-truth mask) as the reference amount. Failed
inverses count as not re-identified.

Outputs in ``--out``: ``results.csv``/``.json``/``.md`` (table, config,
command), ``tradeoff.csv``/``.json``/``.png``, ``curves.png`` (and its data,
``curves.json``: each method's mean curves) and the per-batch items in
``items/`` (one file per method and batch: maps, curves, per-image scores).
``--replot FOLDER`` redraws the figures of such summary files (e.g. after a
change of the book's colours) without computing anything. Running the same command again resumes: finished items
are loaded, not recomputed; ``--methods`` may add methods to a finished run. ``--merge A B --out C``
combines finished runs of the same images and protocol (each method from the first run that has it,
its source recorded per row), e.g. a recomputed inverse beside an earlier run of the baselines.

Command used for the table bundled with the book (the summary files are
copied to ``data/results/synthetic_benchmark/``, which chapter 02 displays);
on a GPU, with the one-thread CPU time of every method on 20 images::

    python scripts/synthetic_benchmark.py --out runs/synthetic_benchmark --device cuda --time-images 20 \
        --no-progress --publish data/results/synthetic_benchmark

and, from the same run's items, the intervals of the trade-off differences
(``scripts/tradeoff_gaps.py runs/synthetic_benchmark --out
data/results/synthetic_benchmark/tradeoff_gaps.json``). The bundled files
merge several runs of the same images (``--merge``; the README lists them).
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
from torch import Tensor

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from invnb.baselines import available_methods, make_method  # noqa: E402
from invnb.download import sha256sum  # noqa: E402
from invnb.metrics import (  # noqa: E402
    POINTING_RTOL,
    TIE_ORDERS,
    CausalCurve,
    deletion_curve,
    insertion_curve,
    mass_in_mask,
    pointing_game,
    predicted_classes,
)
from invnb.models import EMBEDDED_CHECKPOINT, load_embedded_model  # noqa: E402
from invnb.runs import ResultStore, code_fingerprint, git_commit, run_items  # noqa: E402
from invnb.synthetic import HELD_OUT_SEED, make_shapes, normalize  # noqa: E402
from invnb.tradeoff import (  # noqa: E402
    DEFAULT_EXPONENTS,
    DEFAULT_FRACTIONS,
    MAP_KINDS,
    TRADEOFF_MAX_AMOUNT,
    keep_soft,
    keep_top_fraction,
    kept_input_map,
    kept_input_scores,
    reid_at_amount,
    tradeoff_auc,
    write_table,
)
INVERSES = ("inverse", "inverse_paper")
#: Reference row: the object's ground-truth mask as the map (no method; see the module docstring).
OBJECT_MASK = "object_mask"
#: Summary files copied by ``--publish``.
PUBLISHED = ("results.md", "results.json", "results.csv", "tradeoff.csv", "tradeoff.json", "tradeoff.png",
             "curves.png")
#: Also copied by ``--publish`` when the run wrote them (``curves.json``: the mean curves, for ``--replot``).
PUBLISHED_IF_PRESENT = ("curves.json",)
TOPK = (1, 5)
#: Seed of the tie orders (deletion/insertion and hard masks), the same for every method.
TIE_SEED = 0
#: Kept pixel fraction of the hard-mask column ``hard20_reid_top1``.
HARD_FRACTION = 0.2
SEED_BASE = HELD_OUT_SEED  # the held-out images (invnb.synthetic)


def benchmark_methods() -> list[str]:
    """Every row the benchmark can compute: the methods of `available_methods`, then the object mask."""
    return available_methods() + [OBJECT_MASK]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=REPO / "runs" / "synthetic_benchmark", help="output folder")
    p.add_argument("--checkpoint", type=Path, default=EMBEDDED_CHECKPOINT, help="embedded model state dict")
    p.add_argument("--n-images", type=int, default=500, help="held-out images (default 500)")
    p.add_argument("--batch-size", type=int, default=50, help="images per stored item (default 50)")
    p.add_argument("--methods", nargs="+", default=benchmark_methods(),
                   help=f"methods (default: all, and the reference row {OBJECT_MASK!r})")
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
    p.add_argument("--tie-orders", type=int, default=TIE_ORDERS,
                   help=f"random tie orders averaged in deletion/insertion (default {TIE_ORDERS}, seed 0)")
    p.add_argument("--inverse-maps", nargs="*", default=list(MAP_KINDS), choices=MAP_KINDS,
                   help="map kinds made from each inverse's kept input, as extra rows (default: all; a kind "
                        "equal to the engine's own map is not repeated)")
    p.add_argument("--ep-steps", type=int, default=40, help="extremal perturbation Adam steps (default 40)")
    p.add_argument("--time-images", type=int, default=0,
                   help="also time each method on this many images on the CPU with one thread "
                        "(column seconds_per_image_cpu1; 0: no)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (e.g. cuda for the 500 images on a GPU)")
    p.add_argument("--paper-batched", action="store_true",
                   help="run inverse_paper on a whole item at once instead of one image at a time; its solver is "
                        "per image, so only rounding differs (for GPUs, where one-at-a-time is slow)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--publish", type=Path, default=None,
                   help="also copy the summary files (tables, figures; not the per-item maps) here")
    p.add_argument("--merge", type=Path, nargs="+", default=None, metavar="FOLDER",
                   help="only combine finished runs' summary files into --out: each method (with its map rows "
                        "and trade-off rows) from the first FOLDER that has it; the runs must share images and "
                        "configuration; the sources are recorded per row; computes nothing")
    p.add_argument("--replot", type=Path, default=None, metavar="FOLDER",
                   help="only redraw the figures of a finished run's summary files in FOLDER (tradeoff.png from "
                        "tradeoff.json; curves.png from curves.json where present); computes nothing")
    args = p.parse_args(argv)
    if args.replot is not None or args.merge is not None:
        return args
    unknown = sorted(set(args.methods) - set(benchmark_methods()))
    if unknown:
        p.error(f"unknown methods {unknown}; choose from {benchmark_methods()}")
    for name in ("n_images", "batch_size", "step", "rise_masks", "ig_steps", "tie_orders", "ep_steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def method_kwargs(name: str, args: argparse.Namespace) -> dict:
    return {
        "rise": {"n_masks": args.rise_masks, "seed": 0, "batch_size": 100},
        "integrated_gradients": {"n_steps": args.ig_steps},
        "occlusion": {"window": args.occlusion_window, "stride": args.occlusion_stride},
        "random": {"seed": 0},
        "inverse_paper": {"batch_size": None} if args.paper_batched else {},
        "extremal_perturbation": {"steps": args.ep_steps},
    }.get(name, {})


def batch_data(b: int, args, device):
    """Images of batch b: make_shapes on its own seed, so batches are independent."""
    n = min(args.batch_size, args.n_images - b * args.batch_size)
    data = make_shapes(n, seed=SEED_BASE + b).to(device)
    return data, normalize(data.images)


def split_name(row: str) -> tuple[str, str | None]:
    """``"inverse.abs"`` -> ``("inverse", "abs")``; a method's own map -> ``(name, None)``."""
    base, _, kind = row.partition(".")
    return base, kind or None


def row_names(args) -> list[str]:
    """Table rows: every method, then each inverse's maps made from its kept input."""
    rows = []
    for name in args.methods:
        rows.append(name)
        if name in INVERSES:
            rows += [f"{name}.{kind}" for kind in args.inverse_maps]
    return rows


def run_method(name: str, method, x: Tensor, classes: Tensor) -> tuple[Tensor, Tensor | None, Tensor, dict]:
    """Map, own kept input (None when the method has none), failed flags and extra arrays."""
    extra = {}
    if name in INVERSES:
        res = method.inverse.invert(x, target=classes)
        chosen = getattr(res, "mask_weight", None)
        if isinstance(chosen, Tensor):
            extra["chosen_mask_weight"] = chosen.float()
        return res.attribution, res.input, res.failed, extra
    if name == "extremal_perturbation":
        res = method.explain(x, target=classes)
        extra["chosen_area"] = res["area"]
        return res["attribution"], res["kept"], torch.zeros(len(x), dtype=torch.bool), extra
    return method.attribute(x, target=classes), None, torch.zeros(len(x), dtype=torch.bool), extra


def score_map(maps: Tensor, kept: Tensor | None, failed: Tensor, data, x: Tensor, classes: Tensor, model,
              args) -> dict:
    """Every per-image score of one map (and its method's own kept input) under the shared rules."""
    n = len(x)
    nan = torch.full((n,), float("nan"), device=x.device)
    maps = torch.nan_to_num(maps.float(), nan=0.0).to(x.device)
    curve_kw = {"target": classes, "step": args.step, "tie_orders": args.tie_orders, "seed": TIE_SEED}
    dele = deletion_curve(model, x, maps, **curve_kw)
    ins = insertion_curve(model, x, maps, **curve_kw)
    failed = failed.to(x.device)
    out = {"attributions": maps, "deletion_scores": dele.scores, "insertion_scores": ins.scores,
           "deletion_auc": dele.auc, "insertion_auc": ins.auc}
    if kept is None:
        out.update(own_amount=nan, own_reid_top1=nan, own_reid_top5=nan)
    else:
        own = kept_input_scores(model, kept.to(x.device), x, classes, TOPK)
        out.update(own_amount=own["amount"], own_reid_top1=(own["top1"] & ~failed).float(),
                   own_reid_top5=(own["top5"] & ~failed).float())
    soft = kept_input_scores(model, keep_soft(x, maps), x, classes, TOPK)
    hard = kept_input_scores(model, keep_top_fraction(x, maps, HARD_FRACTION, seed=TIE_SEED), x, classes, TOPK)
    dis = data.has_distractor.to(x.device)
    out.update(
        soft_amount=soft["amount"], soft_reid_top1=soft["top1"].float(),
        hard20_amount=hard["amount"], hard20_reid_top1=hard["top1"].float(),
        pointing_game=pointing_game(maps, data.masks, rtol=POINTING_RTOL),
        pointing_game_strict=pointing_game(maps, data.masks),
        mass_in_mask=mass_in_mask(maps, data.masks),
        mass_on_distractor=torch.where(dis, mass_in_mask(maps, data.distractor_masks), nan),
        has_distractor=dis, failed=failed, classes=classes, labels=data.labels,
    )
    return out


def evaluate(name: str, method, model, b: int, args, device) -> dict:
    """Map, curves and scores of one method on batch b (per-image arrays)."""
    data, x = batch_data(b, args, device)
    classes = predicted_classes(model, x)
    start = time.perf_counter()
    if name == OBJECT_MASK:
        maps, kept, failed, extra = data.masks.to(x.dtype), None, torch.zeros(len(x), dtype=torch.bool), {}
    else:
        maps, kept, failed, extra = run_method(name, method, x, classes)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    out = score_map(maps, kept, failed, data, x, classes, model, args)
    if kept is not None and name in INVERSES:
        out["kept"] = kept  # the inverse input: the other map kinds are made from it
    obj = kept_input_scores(model, x * data.masks.unsqueeze(1).to(x.dtype), x, classes, TOPK)
    out.update(extra, object_amount=obj["amount"], object_reid_top1=obj["top1"].float(), seconds=seconds, n=len(x))
    return out


def evaluate_kind(row: str, store: ResultStore, model, b: int, args, device) -> dict:
    """An inverse's map of another kind, made from its stored inverse input (no new inverse)."""
    base, kind = split_name(row)
    data, x = batch_data(b, args, device)
    rec = store.load(f"{base}-b{b:03d}")
    kept = torch.from_numpy(rec.arrays["kept"]).to(device)
    classes = torch.from_numpy(rec.arrays["classes"]).to(device)
    maps = kept_input_map(kept, x, kind)
    same = bool(torch.allclose(maps, torch.from_numpy(rec.arrays["attributions"]).to(device), atol=1e-6))
    if same:  # the engine's own map is of this kind: the row would repeat it
        return {"same_as_own_map": True, "seconds": rec.scalars["seconds"], "n": len(x)}
    failed = torch.from_numpy(rec.arrays["failed"]).to(device)
    out = score_map(maps, kept, failed, data, x, classes, model, args)
    out.update({k: rec.arrays[k] for k in ("object_amount", "object_reid_top1")})
    out.update(same_as_own_map=False, seconds=rec.scalars["seconds"], n=len(x))
    return out


def time_method(name: str, args) -> dict:
    """Seconds per image of one method on ``--time-images`` images, on the CPU with one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cpu = torch.device("cpu")
        model = load_embedded_model(args.checkpoint, device=cpu)
        method = make_method(name, model, **method_kwargs(name, args))
        data = make_shapes(args.time_images, seed=SEED_BASE)
        x = normalize(data.images)
        classes = predicted_classes(model, x)
        start, cpu = time.perf_counter(), time.process_time()
        run_method(name, method, x, classes)
        # wall time, and the process's CPU time (close to the wall time of an idle machine when others share it)
        return {"seconds_per_image": (time.perf_counter() - start) / len(x),
                "cpu_seconds_per_image": (time.process_time() - cpu) / len(x), "n": len(x)}
    finally:
        torch.set_num_threads(threads)


def tradeoff_maps(row: str, store: ResultStore, model, b: int, args, device) -> dict:
    """Hard top-k and soft-mask sweeps of a stored map on batch b."""
    _, x = batch_data(b, args, device)
    rec = store.load(f"{row}-b{b:03d}")
    maps = torch.from_numpy(rec.arrays["attributions"]).to(device)
    classes = torch.from_numpy(rec.arrays["classes"]).to(device)
    m = tradeoff_count(b, args)
    x, maps, classes = x[:m], maps[:m], classes[:m]
    out = {}
    for mode, params in (("hard", DEFAULT_FRACTIONS), ("soft", DEFAULT_EXPONENTS)):
        if mode == "soft" and row == "uniform":
            continue  # x * 1 = x: the amount of the unmasked image is undefined
        if mode == "hard":
            kept = [keep_top_fraction(x, maps, p, seed=TIE_SEED) for p in params]
        else:
            kept = [keep_soft(x, maps, p) for p in params]
        scores = [kept_input_scores(model, k, x, classes, TOPK) for k in kept]
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


#: Per-image columns of the table (means over images).
COLUMNS = ("deletion_auc", "insertion_auc", "pointing_game", "pointing_game_strict", "mass_in_mask",
           "own_amount", "own_reid_top1", "own_reid_top5", "soft_amount", "soft_reid_top1",
           "hard20_amount", "hard20_reid_top1")


def summarise(name: str, records) -> tuple[dict, dict]:
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


def add_tradeoff_summary(row: dict, trade: list[dict], object_amount: float) -> None:
    """The trade-off summary numbers of one table row, from its trade-off rows."""
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


#: Columns of the markdown table, in order.
TABLE_COLUMNS = ("deletion_auc", "insertion_auc", "pointing_game", "pointing_game_strict", "mass_in_mask",
                 "mass_on_distractor", "own_amount", "own_reid_top1", "soft_reid_top1", "hard20_reid_top1",
                 "tradeoff_auc_hard", "tradeoff_auc_soft", "tradeoff_auc_own", "reid_hard_at_object",
                 "seconds_per_image", "seconds_per_image_cpu1")
_LOWER_BETTER = ("deletion_auc", "own_amount", "mass_on_distractor", "seconds_per_image", "seconds_per_image_cpu1")


def _fmt(v, col: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.3g}" if col.startswith("seconds") else f"{v:.3f}"


def markdown(rows: list[dict], command: str, config: dict, object_row: dict | None = None) -> str:
    cols = [c for c in TABLE_COLUMNS if any(c in r for r in rows)]
    head = "| method | " + " | ".join(f"{c} {'↓' if c in _LOWER_BETTER else '↑'}" for c in cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 1)]
    for r in rows:
        lines.append(f"| {r['method']} | " + " | ".join(_fmt(r.get(c), c) for c in cols) + " |")
    n = rows[0]["n_images"] if rows else 0
    nd = rows[0]["n_distractor"] if rows else 0
    obj = "" if object_row is None else (
        f" The object itself (x times its mask) has amount {object_row['amount']:.3f} and re-identification "
        f"{object_row['reid_top1']:.3f}.")
    return (
        f"Synthetic benchmark: {n} held-out images ({nd} with a distractor), embedded model "
        f"accuracy {rows[0]['model_accuracy']:.3f} on them.{obj}\n\n" + "\n".join(lines)
        + f"\n\nCommand: `{command}`\n\nConfig: `{json.dumps(config, sort_keys=True)}`\n"
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.replot is not None:
        return replot(args.replot)
    if args.merge is not None:
        return merge(args.merge, args.out)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    # full float32 on GPUs: cuDNN's default TF32 convolutions round to ~1e-3, more than the CPU
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    progress = not args.no_progress
    model = load_embedded_model(args.checkpoint, device=device)
    config = {
        "checkpoint_sha256": sha256sum(args.checkpoint), "batch_size": args.batch_size, "seed_base": SEED_BASE,
        "step": args.step, "rise_masks": args.rise_masks, "ig_steps": args.ig_steps,
        "occlusion_window": args.occlusion_window, "occlusion_stride": args.occlusion_stride,
        "tradeoff_images": args.tradeoff_images, "fractions": list(DEFAULT_FRACTIONS),
        "exponents": list(DEFAULT_EXPONENTS), "tie_orders": args.tie_orders, "tie_seed": TIE_SEED,
        "pointing_rtol": POINTING_RTOL, "hard_fraction": HARD_FRACTION, "tradeoff_max_amount": TRADEOFF_MAX_AMOUNT,
        "ep_steps": args.ep_steps,
    }
    store = ResultStore(args.out / "items", config=config)
    n_batches = math.ceil(args.n_images / args.batch_size)
    batches = range(n_batches)
    tb = [b for b in batches if tradeoff_count(b, args) > 0]
    started = time.perf_counter()

    summary, errors, trade, rows_done = [], {}, [], []
    for name in row_names(args):
        base, kind = split_name(name)
        if kind is None:
            method = None if name == OBJECT_MASK else make_method(name, model, **method_kwargs(name, args))

            def fn(key, name=name, method=method):
                return evaluate(name, method, model, batch_of(key), args, device)
        else:
            def fn(key, name=name):
                return evaluate_kind(name, store, model, batch_of(key), args, device)

        run = run_items([f"{name}-b{b:03d}" for b in batches], fn, store, progress=progress, desc=name)
        if kind is not None and all(r.scalars.get("same_as_own_map") for r in run.records):
            continue  # the engine's own map already is of this kind
        row, se = summarise(name, run.records)
        if args.time_images and name != OBJECT_MASK:
            rec = run_items([f"time-{base}"], lambda key, base=base: time_method(base, args), store,
                            progress=False).records[0]
            row["seconds_per_image_cpu1"] = rec.scalars["seconds_per_image"]
            row["cpu_seconds_per_image_cpu1"] = rec.scalars.get("cpu_seconds_per_image", float("nan"))
        summary.append(row)
        errors[name] = se
        rows_done.append((name, run.records))
        tr = run_items([f"tradeoff-{name}-b{b:03d}" for b in tb],
                       lambda key, name=name: tradeoff_maps(name, store, model, batch_of(key), args, device),
                       store, progress=progress, desc=f"trade-off {name}")
        trade += tradeoff_rows(name, tr.records)
        if kind is None and not np.isnan(row["own_amount"]):  # the method's own kept input: one point
            weight = getattr(getattr(method, "inverse", None), "mask_weight", None)
            trade.append({"method": name, "mode": "own", "param_name": "mask_weight" if base in INVERSES else "",
                          "param": weight if isinstance(weight, (int, float)) else float("nan"),
                          "amount": row["own_amount"], "n_images": row["n_images"],
                          **{f"reid_top{k}": row[f"own_reid_top{k}"] for k in TOPK}})

    if "inverse" in args.methods:
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

    recs = rows_done[0][1]
    object_row = {"method": "object (x * mask)", "mode": "object", "param_name": "", "param": float("nan"),
                  "amount": float(_cat(recs, "object_amount").mean()),
                  "reid_top1": float(_cat(recs, "object_reid_top1").mean()), "n_images": len(_cat(recs, "classes"))}
    trade.append(object_row)
    for row in summary:
        add_tradeoff_summary(row, trade, object_row["amount"])

    command = "python " + " ".join(shlex.quote(a) for a in [str(Path(sys.argv[0])), *sys.argv[1:]])
    meta = {"command": command, "config": config, "n_images": args.n_images, "device": str(device),
            "code_fingerprint": code_fingerprint(), "git_commit": git_commit(),
            "threads": torch.get_num_threads(), "torch": torch.__version__, "platform": platform.platform(),
            "methods": {m: method_kwargs(m, args) for m in args.methods if m != OBJECT_MASK}, "object": object_row,
            "wall_seconds_this_call": time.perf_counter() - started}
    out = args.out
    write_table(summary, out / "results.csv")
    (out / "results.json").write_text(json.dumps({**meta, "rows": summary, "standard_errors": errors}, indent=1))
    (out / "results.md").write_text(markdown(summary, command, config, object_row))
    write_table(trade, out / "tradeoff.csv")
    (out / "tradeoff.json").write_text(json.dumps({**meta, "rows": trade}, indent=1))
    draw(args, store, trade, batches, [n for n, _ in rows_done])
    if args.publish:
        import shutil

        args.publish.mkdir(parents=True, exist_ok=True)
        for name in PUBLISHED + tuple(n for n in PUBLISHED_IF_PRESENT if (out / n).exists()):
            shutil.copy2(out / name, args.publish / name)
    print((out / "results.md").read_text())
    return 0


def draw(args, store: ResultStore, trade: list[dict], batches, names: list[str]) -> None:
    """Trade-off figure (every map under the same hard and soft rules) and mean deletion/insertion curves.

    Also writes ``curves.json`` (each method's mean curves and mean AUC), from
    which ``--replot`` redraws ``curves.png`` without the per-item files.
    """
    n_trade = args.n_images if args.tradeoff_images is None else min(args.tradeoff_images, args.n_images)
    draw_tradeoff(trade, n_trade, TRADEOFF_MAX_AMOUNT, args.out / "tradeoff.png")
    means: dict[str, dict] = {}
    for name in names:
        recs = [store.load(f"{name}-b{b:03d}") for b in batches]
        hw = int(np.prod(recs[0].arrays["attributions"].shape[1:]))
        for mode in ("deletion", "insertion"):
            scores = _cat(recs, f"{mode}_scores")
            fractions = np.minimum(np.arange(scores.shape[1]) * args.step, hw) / hw
            means.setdefault(name, {})[mode] = {"fractions": fractions.tolist(), "mean": scores.mean(0).tolist(),
                                                "auc": float(_cat(recs, f"{mode}_auc").mean()),
                                                "n_images": int(scores.shape[0])}
    (args.out / "curves.json").write_text(json.dumps({"step": args.step, "methods": means}, indent=1))
    draw_curves(means, args.step, args.out / "curves.png")


def draw_tradeoff(trade: list[dict], n_images: int, max_amount: float, path: Path) -> None:
    """``tradeoff.png``: :func:`invnb.plot.plot_tradeoff_comparison` of the rows, legend under the panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from invnb.plot import legend_below, plot_tradeoff_comparison

    fig = plot_tradeoff_comparison(trade, max_amount=max_amount)
    fig.set_size_inches(14, 7.6)
    fig.suptitle(f"Trade-off on {n_images} held-out synthetic images, every map under the same rules "
                 "(upper left is better)")
    legend_below(fig, ncol=4, height=0.17)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def draw_curves(means: dict[str, dict], step: int, path: Path) -> None:
    """``curves.png``: mean deletion and insertion curves (``means`` as written to ``curves.json``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from invnb.plot import legend_below, plot_curves

    fig, axes = plt.subplots(1, 2, figsize=(13, 7.5))
    for ax, mode in zip(axes, ("deletion", "insertion")):
        curves = {name: CausalCurve(auc=torch.tensor([m[mode]["auc"]]),
                                    fractions=torch.tensor(m[mode]["fractions"], dtype=torch.float32),
                                    scores=torch.tensor([m[mode]["mean"]], dtype=torch.float32), classes=None,
                                    mode=mode, step=step)
                  for name, m in means.items()}
        plot_curves(curves, ax=ax)
    # one legend: the methods (AUCs per panel are in the results table)
    for ax in axes:
        for line in ax.get_lines():
            line.set_label(line.get_label().split(" (AUC")[0])
    legend_below(fig, ncol=4, height=0.26)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def replot(folder: Path) -> int:
    """Redraw the figures of a finished run from its summary files in `folder` (see ``--replot``)."""
    trade_file = folder / "tradeoff.json"
    if not trade_file.is_file():
        print(f"error: {trade_file.name} not found in {folder}; --replot needs a finished run's summary files",
              file=sys.stderr)
        return 2
    trade = json.loads(trade_file.read_text())
    n_trade = trade["config"].get("tradeoff_images") or trade["n_images"]
    draw_tradeoff(trade["rows"], min(n_trade, trade["n_images"]), trade["config"]["tradeoff_max_amount"],
                  folder / "tradeoff.png")
    print(f"redrew tradeoff.png from {trade_file.name}")
    curves_file = folder / "curves.json"
    if curves_file.is_file():
        curves = json.loads(curves_file.read_text())
        draw_curves(curves["methods"], curves["step"], folder / "curves.png")
        print(f"redrew curves.png from {curves_file.name}")
    else:
        print("curves.png left as it is: no curves.json (written by runs of this script since --replot exists)")
    return 0


def _base(method: str) -> str:
    """The method a results or trade-off row belongs to (``inverse.abs``: inverse).

    The inverse's ``mask_weight`` sweep (``inverse (sweep)``: its own kept inputs at fixed
    weights, which no map enters) is a unit of its own, so a run that recomputed only the
    inverse's maps (``--mask-weights`` with no values) can take the sweep from another run.
    """
    return method if method.endswith(" (sweep)") else split_name(method)[0]


def merge_note(sources: list[dict]) -> str:
    """The paragraph ``results.md`` of a merged run adds under the table: which run each row comes from."""
    listing = "\n".join(
        f"- run {i}: {', '.join(s['methods'])}; `{s['command']}` at commit {str(s['git_commit'])[:7]} "
        f"on {s['device']} (torch {s['torch']}, {s['threads']} threads){'. ' + s['note'] if s.get('note') else ''}"
        for i, s in enumerate(sources))
    return (f"\nMerged from {len(sources)} runs of the same images and protocol (each method and its map rows "
            "from one run; `seconds_per_image` is on that run's device, `seconds_per_image_cpu1` on that run's "
            f"CPU with one thread):\n\n{listing}\n")


def merge(folders: list[Path], out: Path) -> int:
    """Combine finished runs' summary files into `out` (see ``--merge``); returns the exit status.

    Each method, with its map rows (``inverse.abs`` ...), its trade-off rows and
    its mean curves, comes from the first folder that has it, so a run that
    recomputed a few methods (e.g. after a change of the inverse) can be put
    beside an earlier run of the others. The runs must have the same images
    and protocol (``config``, ``n_images``); every row records its source run
    (``source``: index into ``merged_from``).
    """
    runs = []
    for folder in folders:
        missing = [n for n in ("results.json", "tradeoff.json") if not (folder / n).is_file()]
        if missing:
            print(f"error: {folder} has no {', '.join(missing)}; --merge needs finished runs' summary files",
                  file=sys.stderr)
            return 2
        curves = folder / "curves.json"
        runs.append((folder, json.loads((folder / "results.json").read_text()),
                     json.loads((folder / "tradeoff.json").read_text()),
                     json.loads(curves.read_text()) if curves.is_file() else None))
    config, n_images = runs[0][1]["config"], runs[0][1]["n_images"]
    for folder, res, _, _ in runs[1:]:
        if res["config"] != config or res["n_images"] != n_images:
            print(f"error: {folder} was run on other images or with another protocol than {runs[0][0]} "
                  "(config or n_images differ); only runs of the same benchmark can be merged", file=sys.stderr)
            return 2
    owner: dict[str, int] = {}
    for i, (_, res, tr, _) in enumerate(runs):
        for r in res["rows"] + [r for r in tr["rows"] if r["mode"] != "object"]:
            owner.setdefault(_base(r["method"]), i)
    order = {m: k for k, m in enumerate(benchmark_methods())}
    rows, errors, trade, means = [], {}, [], {}
    for i, (_, res, tr, cu) in enumerate(runs):
        rows += [{**r, "source": i} for r in res["rows"] if owner[_base(r["method"])] == i]
        errors.update({m: e for m, e in res["standard_errors"].items() if owner.get(_base(m)) == i})
        trade += [{**r, "source": i} for r in tr["rows"] if r["mode"] != "object" and owner.get(_base(r["method"])) == i]
        if cu is not None:
            means.update({m: c for m, c in cu["methods"].items() if owner.get(_base(m)) == i})
    rows.sort(key=lambda r: order.get(_base(r["method"]), len(order)))  # stable: own map before its kinds
    objects = [next(r for r in tr["rows"] if r["mode"] == "object") for _, _, tr, _ in runs]
    if any(abs(o["amount"] - objects[0]["amount"]) > 1e-4 for o in objects):
        print("error: the runs' objects differ in amount; not the same images", file=sys.stderr)
        return 2
    trade.append(objects[0])
    for row in rows:  # the trade-off columns from the merged trade-off rows (e.g. a sweep from another run)
        add_tradeoff_summary(row, trade, objects[0]["amount"])
    sources = []
    for i, (folder, res, _, _) in enumerate(runs):
        command = res["command"].replace(str(folder.resolve()), str(folder))  # no machine path
        sources.append({"folder": str(folder), "methods": [m for m, k in owner.items() if k == i],
                        "command": command, **{k: res.get(k) for k in (
                            "git_commit", "code_fingerprint", "device", "threads", "torch", "platform", "note")}})
    command = "python " + " ".join(shlex.quote(a) for a in [str(Path(sys.argv[0])), *sys.argv[1:]])
    meta = {"command": command, "config": config, "n_images": n_images, "object": objects[0],
            "merged_from": sources}
    out.mkdir(parents=True, exist_ok=True)
    write_table(rows, out / "results.csv")
    (out / "results.json").write_text(json.dumps({**meta, "rows": rows, "standard_errors": errors}, indent=1))
    (out / "results.md").write_text(markdown(rows, command, config, objects[0]) + merge_note(sources))
    write_table(trade, out / "tradeoff.csv")
    (out / "tradeoff.json").write_text(json.dumps({**meta, "rows": trade}, indent=1))
    n_trade = min(config.get("tradeoff_images") or n_images, n_images)
    draw_tradeoff(trade, n_trade, config["tradeoff_max_amount"], out / "tradeoff.png")
    if means:
        (out / "curves.json").write_text(json.dumps({"step": config["step"], "methods": means}, indent=1))
        draw_curves(means, config["step"], out / "curves.png")
    no_curves = [r["method"] for r in rows if r["method"] not in means]
    if no_curves:
        print(f"curves.json/curves.png lack {', '.join(no_curves)}: their runs wrote no curves.json")
    print((out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
