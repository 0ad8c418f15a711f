"""Which map of the default inverse points at the object? Smoothed maps against today's.

Inverts held-out synthetic images once with the default ``LayerwiseInverse``
and scores several maps made from the same inverse input with the
benchmark's own per-map scoring (``scripts/synthetic_benchmark.py``:
``score_map``, pointing with rtol 1e-3, mass, deletion/insertion with 8
seeded tie orders, hard 20%, soft) plus the hard/soft trade-off AUCs over
amounts <= 0.3. Variants (``--variants``), all from the same inverse input:
``KIND`` (``attribution_map`` kind, e.g. ``abs_x``, today's default),
``KIND:blurS`` (Gaussian blur of standard deviation S px, then max-normalised)
and ``KIND:weightS`` (``a * G_S(a)``: each pixel weighted by the mean of the
map around it), made by ``attribution_map(..., sigma=S, smoothing=...)``, each
optionally with ``+fillF`` (the faint secondary key ``fill_sigma=F``) and
``+clipQ`` (the map clipped at the ``Q`` quantile of its kept values first), e.g.
``abs_x:weight6+fill12+clip0.9``, today's default.
Reference rows: baselines (``--baselines``) on the same images with the
benchmark's settings. Also reports where the pointing misses fall (share of
near-maximal pixels on the distractor, within 3 px of the object, elsewhere)
and the extra seconds per image of each smoothing (one thread).

    OMP_NUM_THREADS=1 python benchmarks/bench_attribution_map.py --n-images 100 --out runs/bench_attribution_map

The inverse inputs and the baselines' maps are cached per batch in ``--out``
(a rerun with other variants reuses them).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from invnb._utils.classes import predicted_classes  # noqa: E402
from invnb.attribution import make_method  # noqa: E402
from invnb.datasets import HELD_OUT_SEED, make_shapes, normalize  # noqa: E402
from invnb.eval import (
    DEFAULT_EXPONENTS,
    DEFAULT_FRACTIONS,
    POINTING_RTOL,  # noqa: E402
    TRADEOFF_MAX_AMOUNT,
    keep_soft,
    keep_top_fraction,
    kept_input_scores,
    tradeoff_auc,
)
from invnb.inverse import LayerwiseInverse, attribution_map  # noqa: E402
from invnb.models import load_embedded_model  # noqa: E402


def _bench_module():
    spec = importlib.util.spec_from_file_location("synthetic_benchmark", REPO / "scripts" / "synthetic_benchmark.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def miss_locations(maps, data) -> dict:
    """Per image: share of the near-maximal pixels on the distractor / within 3 px of the object / elsewhere."""
    peak = maps.flatten(1).amax(1)[:, None, None]
    top = maps >= peak - POINTING_RTOL * peak.abs()
    obj = data.masks
    near = F.max_pool2d(obj.float().unsqueeze(1), 7, stride=1, padding=3).squeeze(1) > 0
    dis = data.distractor_masks & ~obj
    cnt = top.flatten(1).sum(1).float()
    on_dis = (top & dis).flatten(1).sum(1) / cnt
    on_edge = (top & near & ~obj & ~dis).flatten(1).sum(1) / cnt
    on_obj = (top & obj).flatten(1).sum(1) / cnt
    return {"obj": on_obj, "distractor": on_dis, "edge3": on_edge, "elsewhere": 1 - on_obj - on_dis - on_edge,
            "n_top": cnt}


def parse_variant(spec: str) -> tuple[str, float, str, float, float]:
    """``"abs_x:weight6+fill12+clip0.9"`` -> ``("abs_x", 6.0, "weight", 12.0, 0.9)``
    (kind, sigma, smoothing, fill_sigma, clip quantile)."""
    kind, _, rest = spec.partition(":")
    parts = rest.split("+") if rest else []
    smooth = parts.pop(0) if parts and not parts[0].startswith(("fill", "clip")) else ""
    opts = {"fill": 0.0, "clip": 1.0}
    for part in parts:
        name = part[:4]
        if name not in opts:
            raise SystemExit(f"variant {spec!r}: expected KIND[:weightS|:blurS][+fillF][+clipQ]")
        opts[name] = float(part[4:])
    mode = smooth.rstrip("0123456789.") or "blur"
    sigma = float(smooth[len(mode):]) if smooth else 0.0
    return kind, sigma, mode, opts["fill"], opts["clip"]


def tradeoff(model, x, maps, classes) -> dict:
    out = {}
    for mode, params in (("hard", DEFAULT_FRACTIONS), ("soft", DEFAULT_EXPONENTS)):
        am, re = [], []
        for p in params:
            kept = keep_top_fraction(x, maps, p, seed=0) if mode == "hard" else keep_soft(x, maps, p)
            s = kept_input_scores(model, kept, x, classes, (1,))
            am.append(s["amount"])
            re.append(s["top1"].float())
        out[mode] = (torch.stack(am), torch.stack(re))  # (P, n)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-images", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--seed-base", type=int, default=HELD_OUT_SEED,
                   help="seed of the first batch (default: the benchmark's held-out seed)")
    p.add_argument("--variants", nargs="*",
                   default=["abs_x", "abs_x:weight6", "abs_x:weight6+fill6",
                            "abs_x:weight6+fill12", "abs_x:weight6+fill24"])
    p.add_argument("--baselines", nargs="*", default=["occlusion", "integrated_gradients", "extremal_perturbation"])
    p.add_argument("--batches", type=int, nargs="*", default=None,
                   help="only these batch indices (their scores are cached; a later run over all batches "
                        "reuses them; the table then covers only the batches given)")
    p.add_argument("--out", type=Path, default=REPO / "runs" / "bench_attribution_map")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    bench = _bench_module()
    bargs = argparse.Namespace(step=128, tie_orders=8, rise_masks=1000, ig_steps=50, occlusion_window=8,
                               occlusion_stride=4, paper_batched=False, ep_steps=40)
    model = load_embedded_model()
    args.out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict[str, list]] = {}
    secs: dict[str, float] = {}

    def scored(name, b, n, maps, *score_args):
        """Per-image scores of one map on batch b, cached in --out (so batches can run in parallel processes)."""
        cache = args.out / f"scores_{name.replace(':', '_')}_b{b:03d}_seed{args.seed_base + b}_n{n}.pt"
        if cache.exists():
            return torch.load(cache)
        sc = bench.score_map(maps, *score_args, model, bargs)
        sc = {k: sc[k] for k in ("pointing_game", "mass_in_mask", "deletion_auc", "insertion_auc", "soft_reid_top1",
                                 "hard20_reid_top1", "own_amount", "own_reid_top1", "mass_on_distractor")}
        data, x, classes = score_args[2], score_args[3], score_args[4]
        out = (sc, tradeoff(model, x, maps, classes), miss_locations(maps, data))
        torch.save(out, cache)
        return out

    def add(name, scores, trade, seconds, misses):
        r = rows.setdefault(name, {})
        for k in ("pointing_game", "mass_in_mask", "deletion_auc", "insertion_auc", "soft_reid_top1",
                  "hard20_reid_top1", "own_amount", "own_reid_top1"):
            r.setdefault(k, []).append(scores[k].cpu())
        r.setdefault("mass_on_distractor", []).append(scores["mass_on_distractor"].cpu())
        for mode in ("hard", "soft"):
            r.setdefault(f"{mode}_amount", []).append(trade[mode][0])
            r.setdefault(f"{mode}_reid", []).append(trade[mode][1])
        for k, v in misses.items():
            r.setdefault(f"miss_{k}", []).append(v)
        secs[name] = secs.get(name, 0.0) + seconds

    n_batches = -(-args.n_images // args.batch_size)
    for b in range(n_batches) if args.batches is None else args.batches:
        n = min(args.batch_size, args.n_images - b * args.batch_size)
        data = make_shapes(n, seed=args.seed_base + b)
        x = normalize(data.images)
        classes = predicted_classes(model, x)
        cache = args.out / f"inverse_b{b:03d}_seed{args.seed_base + b}_n{n}.pt"
        if cache.exists():
            kept, failed, t_inv = torch.load(cache)
        else:
            t0 = time.perf_counter()
            res = LayerwiseInverse(model).invert(x, target=classes)
            t_inv = time.perf_counter() - t0
            kept, failed = res.input, res.failed
            torch.save((kept, failed, t_inv), cache)
        print(f"batch {b}: inverse {t_inv / n:.3f} s/img", flush=True)
        for spec in args.variants:
            kind, sigma, mode, fill, clip = parse_variant(spec)
            t0 = time.perf_counter()
            maps = attribution_map(kept, x, kind, sigma=sigma, smoothing=mode, fill_sigma=fill, clip=clip)
            dt = time.perf_counter() - t0
            sc, trade, misses = scored(spec, b, n, maps, kept, failed, data, x, classes)
            add(spec, sc, trade, dt, misses)
            print(f"batch {b}: {spec} scored", flush=True)
            if b == 0:
                np.save(args.out / f"maps_{spec.replace(':', '_')}_b0.npy", maps.numpy())
        if b == 0:
            np.save(args.out / "images_b0.npy", data.images.numpy())
            np.save(args.out / "masks_b0.npy", data.masks.numpy())
            np.save(args.out / "distractor_b0.npy", data.distractor_masks.numpy())
        secs["_inverse"] = secs.get("_inverse", 0.0) + t_inv
        for name in args.baselines:
            cache = args.out / f"{name}_b{b:03d}_seed{args.seed_base + b}_n{n}.pt"
            if cache.exists():
                maps, own, own_failed, dt = torch.load(cache)
            else:
                method = make_method(name, model, **bench.method_kwargs(name, bargs))
                t0 = time.perf_counter()
                maps, own, own_failed, _ = bench.run_method(name, method, x, classes)
                dt = time.perf_counter() - t0
                torch.save((maps, own, own_failed, dt), cache)
            maps = torch.nan_to_num(maps.float())
            sc, trade, misses = scored(name, b, n, maps, own, own_failed, data, x, classes)
            add(name, sc, trade, dt, misses)
            print(f"batch {b}: {name} {dt / n:.3f} s/img", flush=True)

    n_done = sum(len(v) for v in rows[next(iter(rows))]["pointing_game"])
    table = []
    for name, r in rows.items():
        cat = {k: torch.cat(v, dim=-1).float() for k, v in r.items()}
        row = {"map": name}
        for k in ("pointing_game", "mass_in_mask", "deletion_auc", "insertion_auc", "soft_reid_top1",
                  "hard20_reid_top1", "own_amount", "own_reid_top1"):
            row[k] = float(cat[k].mean())
        row["mass_on_distractor"] = float(np.nanmean(cat["mass_on_distractor"].numpy()))
        for mode in ("hard", "soft"):
            am, re = cat[f"{mode}_amount"].mean(1).tolist(), cat[f"{mode}_reid"].mean(1).tolist()
            row[f"tradeoff_auc_{mode}"] = tradeoff_auc(am, re, TRADEOFF_MAX_AMOUNT)
            row[f"{mode}_curve"] = list(zip(am, re))
        miss = cat["pointing_game"] < 1 - 1e-9
        row["n_miss"] = int(miss.sum())
        for k in ("distractor", "edge3", "elsewhere"):
            row[f"miss_{k}"] = float(cat[f"miss_{k}"][miss].mean()) if miss.any() else float("nan")
        row["mean_n_top"] = float(cat["miss_n_top"].mean())
        row["seconds_per_image"] = secs[name] / n_done
        table.append(row)
    cols = ("pointing_game", "mass_in_mask", "mass_on_distractor", "deletion_auc", "insertion_auc",
            "soft_reid_top1", "hard20_reid_top1", "tradeoff_auc_hard", "tradeoff_auc_soft", "n_miss",
            "miss_distractor", "miss_edge3", "miss_elsewhere", "mean_n_top", "seconds_per_image")
    lines = ["| map | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 1)]
    for r in table:
        lines.append(f"| {r['map']} | " + " | ".join(
            f"{r[c]:.3g}" if c == "seconds_per_image" else (str(r[c]) if isinstance(r[c], int) else f"{r[c]:.3f}")
            for c in cols) + " |")
    md = (f"{n_done} images, batches of {args.batch_size} from seed {args.seed_base}; inverse {secs['_inverse'] / n_done:.3f} "
          f"s/img (one thread); seconds_per_image of a map row: the map from the inverse input (extra cost)\n\n"
          + "\n".join(lines) + "\n\nCommand: `python " + " ".join(sys.argv) + "`\n")
    (args.out / "results.md").write_text(md)
    (args.out / "results.json").write_text(json.dumps(table, indent=1))
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
