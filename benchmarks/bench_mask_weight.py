"""How `mask_weight`, the mask's dilation and the attribution map trade re-identification for sparsity.

For each penalty setting, each `mask_weight` (a number or ``auto``) and each
`mask_dilation` it inverts the same synthetic development images (seed
777001 by default: neither the training seeds < 10**6 nor the benchmark's
held-out seeds >= 2,000,000) with the embedded model and prints the top-1
re-identification of the inverse input, the amount of activation, and, for
every attribution map of ``--attributions`` (computed from the same inverse
input), the share of the map inside the object mask, the strict pointing
game and a tie-tolerant one (share of the pixels within a relative
``--pointing-rtol`` of the maximum that lie inside the mask), plus seconds per
image (wall and process CPU time; on a shared machine the CPU time is
the steadier number) and, for ``auto``, the mean chosen weight and the images where no
candidate kept the class. This is how the defaults were chosen::

    python benchmarks/bench_mask_weight.py --n-images 100 --settings l1 \\
        --mask-weights auto 0.3 --dilations 1 3 --attributions ratio abs abs_x
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from invnb import LayerwiseInverse, attribution_map
from invnb.datasets import make_shapes, normalize
from invnb.eval import amount_of_activation, mass_in_mask, pointing_game
from invnb.inverse import ATTRIBUTIONS
from invnb.inverse.settings import DEFAULT_AUTO_EMPTY, DEFAULT_AUTO_WEIGHTS
from invnb.models import load_embedded_model

SETTINGS = {
    "paper": dict(penalty="l2", solver="paper", batch_size=1, relu_in_objective="always"),
    "l2": dict(penalty="l2"),
    "l1": dict(penalty="l1"),
    "l1-forward": dict(penalty="l1", penalty_scale="forward"),
}


def pointing_tolerant(maps: torch.Tensor, masks: torch.Tensor, rtol: float) -> torch.Tensor:
    """(N,) share of the pixels within a relative `rtol` of each map's maximum that lie in the mask."""
    peak = maps.flatten(1).amax(dim=1)[:, None, None]
    top = maps >= peak * (1 - rtol)
    return (top & masks.bool()).flatten(1).sum(1).float() / top.flatten(1).sum(1).clamp_min(1).float()


def parse_weight(v: str):
    return "auto" if v == "auto" else float(v)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-images", type=int, default=100)
    ap.add_argument("--seed", type=int, default=777_001, help="synthetic data seed (development set)")
    ap.add_argument("--settings", nargs="+", default=["l1"], choices=list(SETTINGS))
    ap.add_argument("--mask-weights", type=parse_weight, nargs="+", default=["auto", 0.3],
                    help="numbers and/or 'auto'")
    ap.add_argument("--auto-weights", type=float, nargs="+", default=list(DEFAULT_AUTO_WEIGHTS),
                    help="candidates of mask_weight='auto'")
    ap.add_argument("--auto-empty", action=argparse.BooleanOptionalAction, default=DEFAULT_AUTO_EMPTY,
                    help=f"auto_empty of LayerwiseInverse (default {DEFAULT_AUTO_EMPTY}, the engine's)")
    ap.add_argument("--dilations", type=int, nargs="+", default=[1, 3], help="mask_dilation values")
    ap.add_argument("--attributions", nargs="+", default=list(ATTRIBUTIONS), choices=list(ATTRIBUTIONS))
    ap.add_argument("--pointing-rtol", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=None, help="images per walk (default: all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    model = load_embedded_model()
    data = make_shapes(args.n_images, seed=args.seed)
    x = normalize(data.images)
    rows = []
    head = (f"{'setting':<11}{'weight':>7}{'dil':>4}{'map':>12}{'reid':>7}{'amount':>8}{'mass':>7}"
            f"{'point':>7}{'pt_tol':>7}{'s/img':>7}{'cpu/img':>8}{'w_mean':>7}{'lost':>5}{'fail':>5}")
    print(head, flush=True)
    for name in args.settings:
        for mw in args.mask_weights:
            for dil in args.dilations:
                inv = LayerwiseInverse(model, mask_weight=mw, auto_weights=args.auto_weights,
                                       mask_dilation=dil, auto_empty=args.auto_empty, batch_size=args.batch_size, **SETTINGS[name])
                t0, c0 = time.perf_counter(), time.process_time()
                res = inv.invert(x)
                sec = (time.perf_counter() - t0) / len(x)
                cpu = (time.process_time() - c0) / len(x)
                with torch.no_grad():
                    hit = (model(res.input).argmax(1) == res.classes) & ~res.failed
                amount = amount_of_activation(res.input, x).mean().item()
                lost = 0 if res.kept_class is None else int((~res.kept_class).sum())
                for kind in args.attributions:
                    maps = attribution_map(res.input, x, kind)
                    row = {"setting": name, "mask_weight": mw, "auto_weights": args.auto_weights, "auto_empty": args.auto_empty,
                           "mask_dilation": dil, "attribution": kind, "reid_top1": hit.float().mean().item(),
                           "amount": amount, "mass_in_mask": mass_in_mask(maps, data.masks).mean().item(),
                           "pointing": pointing_game(maps, data.masks).mean().item(),
                           "pointing_tol": pointing_tolerant(maps, data.masks, args.pointing_rtol).mean().item(),
                           "sec_per_image": sec, "cpu_sec_per_image": cpu, "weight_mean": res.mask_weight.mean().item(),
                           "class_lost": lost, "failed": int(res.failed.sum())}
                    rows.append(row)
                    print(f"{name:<11}{str(mw):>7}{dil:>4}{kind:>12}{row['reid_top1']:>7.3f}{amount:>8.3f}"
                          f"{row['mass_in_mask']:>7.3f}{row['pointing']:>7.3f}{row['pointing_tol']:>7.3f}"
                          f"{sec:>7.3f}{cpu:>8.3f}{row['weight_mean']:>7.2f}{lost:>5}{row['failed']:>5}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
