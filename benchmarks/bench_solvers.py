"""Paper solver vs the default solver: quality against time, in one run.

Same model, same images, same objective (the paper's: L2 mask penalty,
``mask_weight`` 0.7) for the solver comparison; the default setting (L1
penalty, default ``mask_weight``) is added as a last row. For each iteration
budget it prints seconds per image, mean iterations per solved layer,
top-1 re-identification of the inverse input (and the mean over layers),
the mean per-layer objective, the per-layer output fidelity (relative error
of each layer's output on its inverse against its rescaled target) and the
amount of activation, then the ratios the issue asks for.

    python benchmarks/bench_solvers.py                # embedded model, 200 images, CPU
    python benchmarks/bench_solvers.py --vgg16 --n-images 8 --device cuda   # random-weight VGG16 at 224 px
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from invnb import LayerwiseInverse
from invnb.eval import amount_of_activation, reid_rates


def evaluate(inv: LayerwiseInverse, x: torch.Tensor):
    """Run one setting on `x` and measure it; returns (row, result)."""
    if x.is_cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    res = inv.invert(x)
    if x.is_cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    stack = inv.stack
    acts = stack.record(x)
    reid = reid_rates(stack, res.features, res.classes, topk=(1,))
    top = max(s.index for s in res.stats)
    fidelity, objective = [], []
    for s in res.stats:
        objective.append(s.cost.mean().item())
        if s.index == top:
            continue
        layer = stack.layers[s.index]
        out = layer(res.features[s.index])
        if s.index + 1 < len(stack) and isinstance(stack.layers[s.index + 1], torch.nn.ReLU):
            out = F.relu(out)
        t = res.features[s.index + 1]
        scale = acts[s.index + 1].flatten(1).norm(dim=1) / (t.flatten(1).norm(dim=1) + 1e-10)
        t = t * scale.reshape((-1,) + (1,) * (t.dim() - 1))
        err = (out - t).flatten(1).norm(dim=1) / t.flatten(1).norm(dim=1).clamp_min(1e-12)
        fidelity.append(err[~res.failed].mean().item() if (~res.failed).any() else float("nan"))
    with torch.no_grad():
        pred_inv = stack(res.input).argmax(1)
    return {
        "sec_per_image": seconds / len(x),
        "iterations_per_layer": float(torch.stack([s.iterations.float().mean() for s in res.stats]).mean()),
        "reid_top1_input": (pred_inv == res.classes).float().mean().item(),
        "reid_top1_mean_over_layers": reid.rate(1).mean().item(),
        "objective_mean_per_layer": sum(objective) / len(objective),
        "fidelity_rel_err": sum(fidelity) / max(len(fidelity), 1),
        "amount": amount_of_activation(res.input, x).mean().item(),
        "failed": int(res.failed.sum()),
    }, res


def same_problems(paper_inv: LayerwiseInverse, paper_res, x: torch.Tensor, budgets) -> list:
    """Re-solve every layer problem of the paper run with fista: same targets, same objective."""
    stack = paper_inv.stack
    acts = stack.record(x)
    top = max(s.index for s in paper_res.stats)
    rows = []
    for budget in budgets:
        fista = LayerwiseInverse(paper_inv.model, penalty=paper_inv.penalty, mask_weight=paper_inv.mask_weight,
                                 max_iter=budget, relu_in_objective=paper_inv.relu_in_objective)
        seconds, ratios, wins = 0.0, [], []
        for st in paper_res.stats:
            k = st.index
            classes = paper_res.classes if k == top else None
            t0 = time.perf_counter()
            _, res = fista._solve_layer(k, stack.layers[k], paper_res.features[k + 1], acts[k], acts[k + 1],
                                        classes)
            seconds += time.perf_counter() - t0
            ok = ~paper_res.failed
            rel = (res.cost - st.cost) / st.cost.abs().clamp_min(1e-12)
            ratios.append(rel[ok].mean().item())
            wins.append((res.cost[ok] <= st.cost[ok] + 1e-6 * st.cost[ok].abs()).float().mean().item())
        paper_seconds = sum(st.seconds for st in paper_res.stats)
        rows.append({"max_iter": budget, "time_ratio": seconds / paper_seconds,
                     "mean_rel_objective_change": sum(ratios) / len(ratios),
                     "share_of_problems_fista_at_least_as_low": sum(wins) / len(wins)})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-images", type=int, default=200)
    ap.add_argument("--seed", type=int, default=12345, help="synthetic data seed (held out from training)")
    ap.add_argument("--mask-weight", type=float, default=0.7, help="of the compared (paper) objective")
    ap.add_argument("--paper-budgets", type=int, nargs="+", default=[10, 15, 20, 3000])
    ap.add_argument("--fista-budgets", type=int, nargs="+", default=[5, 10, 20, 40, 300])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--vgg16", action="store_true", help="random-weight VGG16 at 224x224 (timing only)")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args(argv)

    torch.manual_seed(0)
    if args.vgg16:
        from invnb.models import load_vgg
        model = load_vgg("vgg16", weights=None).to(args.device).eval()
        x = torch.randn(args.n_images, 3, 224, 224, generator=torch.Generator().manual_seed(args.seed))
        what = "VGG16 (random weights), 224x224"
    else:
        from invnb.datasets import make_shapes, normalize
        from invnb.models import load_embedded_model
        model = load_embedded_model(device=args.device)
        x = normalize(make_shapes(args.n_images, seed=args.seed).images)
        what = "embedded SmallVGG, 64x64 synthetic shapes"
    x = x.to(args.device)
    print(f"{what}; {args.n_images} images; device {args.device}; torch threads {torch.get_num_threads()}")

    rows = []
    settings = [("paper", b, dict(solver="paper", batch_size=1)) for b in args.paper_budgets]
    settings += [("paper-batched", args.paper_budgets[-1], dict(solver="paper", batch_size=None))]
    settings += [("fista", b, dict(solver="fista")) for b in args.fista_budgets]
    for name, budget, kw in settings:
        inv = LayerwiseInverse(model, penalty="l2", mask_weight=args.mask_weight, max_iter=budget,
                               relu_in_objective="always" if name.startswith("paper") else "mirror", **kw)
        row, res = evaluate(inv, x)
        rows.append({"setting": name, "max_iter": budget, **row})
        if name == "paper" and budget == args.paper_budgets[-1]:
            paper_inv, paper_res = inv, res
    default = LayerwiseInverse(model)
    rows.append({"setting": f"default (l1, mask_weight {default.mask_weight})", "max_iter": default.max_iter,
                 **evaluate(default, x)[0]})

    cols = ["sec_per_image", "iterations_per_layer", "reid_top1_input", "reid_top1_mean_over_layers",
            "objective_mean_per_layer", "fidelity_rel_err", "amount", "failed"]
    print(f"{'setting':<34}{'max_iter':>9}" + "".join(f"{c[:14]:>16}" for c in cols))
    for r in rows:
        print(f"{r['setting']:<34}{r['max_iter']:>9}" + "".join(f"{r[c]:>16.4g}" for c in cols))

    paper = [r for r in rows if r["setting"] == "paper"]
    final = paper[-1]
    fista = [r for r in rows if r["setting"] == "fista"]
    good = [r for r in fista if r["reid_top1_input"] >= final["reid_top1_input"]
            and r["objective_mean_per_layer"] <= final["objective_mean_per_layer"]]
    print()
    if good:
        first = min(good, key=lambda r: r["sec_per_image"])
        print(f"fista matches the paper solver's final re-identification and objective at max_iter "
              f"{first['max_iter']}: time ratio fista/paper = {first['sec_per_image'] / final['sec_per_image']:.3f}")
    else:
        print("fista never matches the paper solver's final re-identification and objective")
    for p in paper:
        within = [r for r in fista if r["sec_per_image"] <= p["sec_per_image"]]
        best = min(within, key=lambda r: r["objective_mean_per_layer"]) if within else None
        verdict = ("no fista budget that fast" if best is None else
                   f"best fista within that time: objective {best['objective_mean_per_layer']:.4g} "
                   f"(paper {p['objective_mean_per_layer']:.4g}), re-id {best['reid_top1_input']:.3f} "
                   f"(paper {p['reid_top1_input']:.3f})")
        print(f"paper budget {p['max_iter']:>5} ({p['sec_per_image']:.4f} s/img): {verdict}")
    print("\nThe paper run's own layer problems (same targets, same objective) re-solved by fista:")
    for r in same_problems(paper_inv, paper_res, x, args.fista_budgets):
        print(f"  fista max_iter {r['max_iter']:>4}: time ratio fista/paper {r['time_ratio']:.3f}, "
              f"objective change vs paper {100 * r['mean_rel_objective_change']:+.2f}% (mean over layers), "
              f"at least as low on {100 * r['share_of_problems_fista_at_least_as_low']:.1f}% of layer problems")
        rows.append({"setting": "same-problems", **r})
    batched = next(r for r in rows if r["setting"] == "paper-batched")
    print(f"batching alone (paper solver, all images at once): time ratio {batched['sec_per_image'] / final['sec_per_image']:.3f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
