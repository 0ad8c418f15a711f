"""What the layer-wise inverse costs, in forward passes of the model it inverts.

For each model, setting and batch size, one `invert` of a batch is timed
beside the model's forward pass on the same batch (same device, same threads,
one run; `invnb.eval.cost.measure_inverse_cost`): forward-equivalents = inverse
wall time / forward wall time, so per image as both cover the batch. Also
printed and saved: the same ratio of CPU times (steadier on a shared
machine), per solved layer the iterations of the kept solution and over all
candidate walks and the seconds, and how many ``mask_weight`` candidates the
default's ``"auto"`` search walked per image.

Models: the embedded SmallVGG on its 64 px shapes, and torchvision's VGG16
with random weights (``torch.manual_seed(0)``) on shapes of ``--size`` px
(224 is the size that counts; the default 64 keeps a quick run quick).
Settings: ``default`` (``LayerwiseInverse(model)``) and ``paper``
(``LayerwiseInverse.paper(model)``, one image at a time). The paper setting's
time grows linearly with the images (it inverts them one by one), so with
``--paper-images K`` it is timed on the first K images of a larger batch and
scaled by batch/K (the row says so: ``paper_images_timed``).

    python benchmarks/bench_forward_equivalents.py                   # both models, batches 1 and 32, 1 thread
    python benchmarks/bench_forward_equivalents.py --models vgg16 --size 224 --batch-sizes 1 32 \\
        --settings default --out runs/fe_vgg16_224.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from invnb.datasets import make_shapes, normalize
from invnb.eval.cost import cost_markdown, environment, measure_inverse_cost
from invnb.inverse import LayerwiseInverse
from invnb.models import load_embedded, load_resnet, load_vgg

MODELS = ("smallvgg", "smallresnet", "vgg16", "resnet18")
SETTINGS = ("default", "paper")


def model_and_images(name: str, size: int, n: int, seed: int, device: str):
    """The model (eval mode) and ``n`` normalised shape images of its input size."""
    if name in ("smallvgg", "smallresnet"):
        model, size = load_embedded(name), 64
    elif name == "vgg16":
        torch.manual_seed(0)
        model = load_vgg("vgg16", weights=None)
    else:
        torch.manual_seed(0)
        model = load_resnet(name, weights=None)
    x = normalize(make_shapes(n, seed=seed, image_size=size).images)
    return model.to(device).eval(), x.to(device), size


def make_inverse(setting: str, model):
    return LayerwiseInverse.from_setting(model, setting)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    p.add_argument("--size", type=int, default=64, help="VGG16 input size in px (224: the measurement that counts)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    p.add_argument("--settings", nargs="+", choices=SETTINGS, default=list(SETTINGS))
    p.add_argument("--paper-images", type=int, default=None,
                   help="time the paper setting on at most this many images of each batch, scaled to the batch")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=777001, help="make_shapes seed of the images (a development seed)")
    p.add_argument("--forward-repeats", type=int, default=5)
    p.add_argument("--inverse-repeats", type=int, default=1, help="timed inverse runs (their median counts)")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON file to write, and its markdown table beside it (.md; default: print only)")
    p.add_argument("--markdown", type=Path, default=None, metavar="JSON",
                   help="only write the markdown table (.md) of a finished run's JSON file")
    args = p.parse_args(argv)
    if args.markdown is not None:
        args.markdown.with_suffix(".md").write_text(cost_markdown(json.loads(args.markdown.read_text())))
        return 0
    torch.set_num_threads(args.threads)
    env = environment(args.device)
    rows = []
    started = time.perf_counter()
    for name in args.models:
        for bs in args.batch_sizes:
            model, x, size = model_and_images(name, args.size, bs, args.seed, args.device)
            for setting in args.settings:
                inv = make_inverse(setting, model)
                k = args.paper_images if setting == "paper" and args.paper_images is not None else None
                k = None if k is None or k >= bs else k
                t0 = time.perf_counter()
                row = measure_inverse_cost(inv, x, setting=setting, forward_repeats=args.forward_repeats,
                                           inverse_repeats=args.inverse_repeats, inverse_images=k).as_dict()
                row.update(model=name, size=size, wall_seconds_of_measurement=time.perf_counter() - t0)
                rows.append(row)
                print(f"{name:8s} {size:4d}px {setting:7s} batch {bs:3d}: {row['forward_equivalents']:7.1f} FE "
                      f"(cpu {row['forward_equivalents_cpu']:7.1f}), inverse {row['inverse_seconds_per_image']:.3f} "
                      f"s/img, forward {row['forward_seconds_per_image'] * 1e3:.2f} ms/img, candidates "
                      f"{row.get('candidates_tried_mean', float('nan')):.2f}/img"
                      + (f" [timed on {k} images, scaled to {bs}]" if k else ""), flush=True)
                for lc in row["layers"]:
                    print(f"    {lc['index']:3d} {lc['name']:16s} iterations {lc['iterations_mean']:7.1f} "
                          f"(all walks {lc['iterations_total_mean']:7.1f}) {lc['seconds']:8.3f} s")
    out = {"environment": env, "command": "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
           "config": {key: (str(v) if isinstance(v, Path) else v) for key, v in vars(args).items()},
           "wall_seconds": time.perf_counter() - started, "rows": rows}
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1))
        args.out.with_suffix(".md").write_text(cost_markdown(out))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
