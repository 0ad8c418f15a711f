"""Where does the VDSR inverse lose the output? Per-layer fit and end-to-end fidelity of the walk.

Runs one layer-wise inverse of VDSR on the chirp (made the paper's way,
``c = 2 * size``) and prints, for every convolution from the top down
(:func:`invnb.sr.fidelity.layer_fidelity`), how well the layer's inverse
reproduces the (rescaled) target it was solved for, and how faithful the
network's output is when run forward from there (at the input: the output
fidelity of the inverse input)::

    python scripts/vdsr_layer_fidelity.py --size 64 --scale 2                       # the "vdsr" setting's walk
    python scripts/vdsr_layer_fidelity.py --size 64 --scale 4 --setting paper
    python scripts/vdsr_layer_fidelity.py --size 64 --scale 4 --max-iter 300 --mask-weight 0.1

The output fit of the ``"vdsr"`` setting is left out (``output_fit=None``): it
only moves the inverse input, after the walk.
"""

from __future__ import annotations

import argparse
import time

import torch

from invnb.eval import amount_of_activation
from invnb.inverse import LayerwiseInverse
from invnb.models import load_embedded_vdsr, load_vdsr
from invnb.sr import chirp_hr, make_sr_sample, y_to_tensor
from invnb.sr.fidelity import layer_fidelity


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--setting", choices=["default", "paper"], default="default",
                        help="default: the \"vdsr\" setting's walk; paper: \"vdsr_paper\"")
    parser.add_argument("--mask-weight", type=float, default=None)
    parser.add_argument("--max-iter", type=int, default=None)
    parser.add_argument("--target-scale", choices=["forward", "none", "active"], default=None)
    parser.add_argument("--weights", default=None, help="a VDSR checkpoint (default: the embedded VDSR)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = (load_vdsr(args.weights) if args.weights else load_embedded_vdsr()).eval()
    overrides = {k: v for k, v in (("mask_weight", args.mask_weight), ("max_iter", args.max_iter),
                                   ("target_scale", args.target_scale)) if v is not None}
    if args.setting == "default":
        overrides["output_fit"] = None
    inverse = LayerwiseInverse.from_setting(model, "vdsr" if args.setting == "default" else "vdsr_paper", **overrides)
    x = y_to_tensor(make_sr_sample(chirp_hr(args.size), args.scale, cumulative_crop=True).im_b_y)
    with torch.no_grad():
        y = model(x)
    t0 = time.perf_counter()
    result = inverse.invert(x, target=y)
    seconds = time.perf_counter() - t0
    rows = layer_fidelity(inverse, x, y, result)
    print(f"{args.size}-px chirp x{args.scale}, {args.setting} {overrides}: amount "
          f"{float(amount_of_activation(result.input, x)[0]):.3f}, {seconds:.1f} s")
    print(f"{'k':>3} {'layer':24s} {'local corr':>10} {'norm':>6} {'|f_k|/|x_k|':>11} "
          f"{'e2e corr':>9} {'norm':>6} {'rel':>6}")
    for r in rows:
        print(f"{r['k']:3d} {r['name']:24s} {r['local_corr']:10.3f} {r['local_norm']:6.3f} {r['feature_norm']:11.3f} "
              f"{r['e2e_corr']:9.3f} {r['e2e_norm']:6.3f} {r['e2e_rel']:6.3f}")
    return rows


if __name__ == "__main__":
    main()
