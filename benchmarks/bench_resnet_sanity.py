"""Why the default inverse's map survives model randomisation on the embedded SmallResNet: map variants.

On development images (``make_shapes(n, seed=777001)``, never the held-out seeds), the default
inverse explains the trained SmallResNet and the same network with every layer re-initialised
(:func:`invnb.eval.randomise_layers`, as the sanity check does). The two inverse inputs are then
turned into maps of several kinds (:func:`invnb.inverse.attribution_map`), so that each step of
the map (the factor ``|x|`` of ``"abs_x"``, the Gaussian weighting, the clipping, the faint fill)
can be judged on its own:

* ``spearman``: rank correlation of the trained and randomised maps (the check's statistic;
  :func:`invnb.eval.sanity.spearman`), mean over images;
* ``mass``, ``pointing``: the trained map's localisation (the benchmark's targets: >= 0.75, >= 0.95);
* ``mass_random``: the randomised map's mass in the object (should fall);
* ``image_only``: the same map kind made from the image itself (``x_hat = x``, no model at all),
  its rank correlation with the trained map: how much of a map's ranking the image alone gives.

Occlusion (window 8, stride 4, as the sanity check) on both models gives the reference
(the criterion: the inverse's Spearman <= occlusion's + 0.1)::

    python benchmarks/bench_resnet_sanity.py --n-images 30 --seeds 0 1
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from invnb.attribution import make_method
from invnb.datasets import make_shapes, normalize
from invnb.eval import POINTING_RTOL, mass_in_mask, pointing_game
from invnb.eval.sanity import parametric_layers, randomise_layers, spearman
from invnb.inverse import LayerwiseInverse, attribution_map
from invnb.models import load_embedded

DEV_SEED = 777001

#: name -> attribution_map keywords (kind, sigma, clip, fill_sigma); "default" is the package's.
VARIANTS = {
    "abs_x (default: weight 6, clip 0.9, fill 12)": ("abs_x", 6.0, 0.9, 12.0),
    "abs_x, no fill": ("abs_x", 6.0, 0.9, 0.0),
    "abs_x, raw": ("abs_x", 0.0, 1.0, 0.0),
    "abs (weight 6, clip 0.9, fill 12)": ("abs", 6.0, 0.9, 12.0),
    "abs, no fill": ("abs", 6.0, 0.9, 0.0),
    "abs, raw": ("abs", 0.0, 1.0, 0.0),
    "ratio (weight 6, clip 0.9, fill 12)": ("ratio", 6.0, 0.9, 12.0),
    "ratio, raw (the paper's)": ("ratio", 0.0, 1.0, 0.0),
}


def maps(x_hat, x, kind, sigma, clip, fill):
    return attribution_map(x_hat, x, kind, sigma=sigma, smoothing="weight", clip=clip, fill_sigma=fill)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-images", type=int, default=30)
    ap.add_argument("--seed", type=int, default=DEV_SEED, help="development images (not the benchmark's)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="re-initialisation seeds")
    ap.add_argument("--model", default="smallresnet", choices=["smallresnet", "smallvgg"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="write the numbers here")
    args = ap.parse_args(argv)
    if args.seed >= 2_000_000:
        ap.error("seeds from 2,000,000 are the held-out benchmark's; use development seeds")
    torch.set_num_threads(args.threads)
    data = make_shapes(args.n_images, seed=args.seed)
    x, masks = normalize(data.images), data.masks
    model = load_embedded(args.model)
    trained = LayerwiseInverse(model).invert(x)
    occ = make_method("occlusion", model, window=8, stride=4).attribute(x, trained.classes)
    out = {"n": args.n_images, "model": args.model, "seeds": args.seeds, "variants": {}, "occlusion": {}}
    per_seed = {name: [] for name in VARIANTS}
    occ_rows = []
    for seed in args.seeds:
        rnd = randomise_layers(model, parametric_layers(model), seed=seed)
        res = LayerwiseInverse(rnd).invert(x)
        with torch.no_grad():
            n_classes = len(set(rnd(x).argmax(1).tolist()))
        for name, (kind, sigma, clip, fill) in VARIANTS.items():
            a, b = maps(trained.input, x, kind, sigma, clip, fill), maps(res.input, x, kind, sigma, clip, fill)
            img = maps(x, x, kind, sigma, clip, fill)
            per_seed[name].append({
                "spearman": float(np.mean(spearman(a.numpy(), b.numpy()))),
                "mass": float(mass_in_mask(a, masks).mean()),
                "pointing": float(pointing_game(a, masks, rtol=POINTING_RTOL).mean()),
                "mass_random": float(mass_in_mask(b, masks).mean()),
                "image_only": float(np.mean(spearman(a.numpy(), img.numpy()))),
                "random_classes": n_classes, "random_empty": int(res.failed.sum()),
            })
        occ_r = make_method("occlusion", rnd, window=8, stride=4).attribute(x, res.classes)
        occ_rows.append({"spearman": float(np.mean(spearman(occ.numpy(), occ_r.numpy()))),
                         "mass": float(mass_in_mask(occ, masks).mean()),
                         "mass_random": float(mass_in_mask(occ_r, masks).mean())})
    for name, rows in per_seed.items():
        out["variants"][name] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    out["occlusion"] = {k: float(np.mean([r[k] for r in occ_rows])) for k in occ_rows[0]}
    out["reid_top1"] = float(trained.kept_class.float().mean())
    print(f"{args.model}, {args.n_images} development images, seeds {args.seeds}; re-id of the trained "
          f"inverse {out['reid_top1']:.2f}; occlusion: spearman {out['occlusion']['spearman']:.3f}, mass "
          f"{out['occlusion']['mass']:.3f} -> {out['occlusion']['mass_random']:.3f}")
    print(f"{'map':48s} {'spearman':>8s} {'mass':>6s} {'point':>6s} {'mass_rnd':>8s} {'image_only':>10s}")
    for name, r in out["variants"].items():
        print(f"{name:48s} {r['spearman']:8.3f} {r['mass']:6.3f} {r['pointing']:6.3f} {r['mass_random']:8.3f} "
              f"{r['image_only']:10.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
