#!/usr/bin/env python
"""Train the embedded SRCNNs on scikit-image's public-domain photographs and write their checkpoints.

A command line over :mod:`invnb.sr.srcnn_training` (what is trained, on what, and how is described
there): one SRCNN per scale in ``--scales``. Writes ``invnb/data/srcnn_embedded_x{scale}.pt`` (plain
state dicts) and ``invnb/data/srcnn_embedded.json`` (architecture, data and licences, seeds, command,
SHA-256 of each file, training histories, PSNR against bicubic on the embedded images and, where
``<data>/sr/Set5`` exists, on Set5, timing). Deterministic under ``--seed`` for a fixed ``--threads``
and torch build.

Usage (the defaults reproduce the shipped checkpoints; their JSON records the time it took)::

    python scripts/train_embedded_srcnn.py --no-progress
    python scripts/train_embedded_srcnn.py --scales 2 --steps 200 --out-dir /tmp/srcnn   # a quick smoke run
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from invnb.datasets import local_data_dir, sha256sum
from invnb.models import EMBEDDED_SRCNN_DIR, EMBEDDED_SRCNN_META, embedded_srcnn_checkpoint
from invnb.sr import (TRAIN_IMAGES, SRCNNTraining, load_embedded_sr_set, load_sr_folder, srcnn_psnr_table,
                      state_digest, train_srcnn, training_pairs)


def parse_args(argv=None) -> argparse.Namespace:
    d = SRCNNTraining()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=d.seed, help="master seed (scale s uses 1000 * seed + s)")
    p.add_argument("--steps", type=int, default=d.steps, help="optimiser steps per scale")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--patch", type=int, default=d.patch, help="side of the HR training patches")
    p.add_argument("--scales", type=int, nargs="+", default=[2, 3, 4])
    p.add_argument("--kernel-sizes", type=int, nargs=3, default=list(d.kernel_sizes))
    p.add_argument("--channels", type=int, nargs=2, default=list(d.channels))
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate of Adam")
    p.add_argument("--warmup", type=int, default=d.warmup, help="steps of linear warm-up")
    p.add_argument("--min-std", type=float, default=d.min_std,
                   help="patches whose ground truth has a smaller standard deviation (Y in [0, 1]) are not drawn")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--data-dir", type=Path, default=None, help="where sr/Set5 is looked for (reported only)")
    p.add_argument("--out-dir", type=Path, default=EMBEDDED_SRCNN_DIR,
                   help=f"where srcnn_embedded_x{{scale}}.pt and {EMBEDDED_SRCNN_META.name} are written")
    p.add_argument("--no-progress", action="store_true", help="print only the history rows (every 250 steps)")
    args = p.parse_args(argv)
    if args.threads < 1 or any(s < 2 for s in args.scales):
        p.error("--threads must be >= 1 and --scales integers >= 2")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    start, cpu_start = time.perf_counter(), time.process_time()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    try:
        config = SRCNNTraining(steps=args.steps, batch_size=args.batch_size, patch=args.patch,
                               kernel_sizes=tuple(args.kernel_sizes), channels=tuple(args.channels), lr=args.lr,
                               warmup=args.warmup, min_std=args.min_std, seed=args.seed)
    except ValueError as err:
        raise SystemExit(str(err)) from err
    pairs = training_pairs(args.scales)
    prep_time = time.perf_counter() - start
    set5_dir = (args.data_dir or local_data_dir()) / "sr" / "Set5"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    models, embedded, set5 = {}, {}, {}
    for scale in args.scales:
        t0, c0 = time.perf_counter(), time.process_time()
        model, history = train_srcnn(pairs, scale, config, log=lambda row: print(json.dumps(row), flush=True))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        embedded[str(scale)] = srcnn_psnr_table(model, load_embedded_sr_set(scale), scale)
        if set5_dir.is_dir():
            set5[str(scale)] = srcnn_psnr_table(model, load_sr_folder(set5_dir, scale), scale)
        path = args.out_dir / embedded_srcnn_checkpoint(scale)
        state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
        torch.save(state, path)
        models[str(scale)] = {"file": path.name, "sha256": sha256sum(path), "weights_sha256": state_digest(state),
                              "seed": config.scale_seed(scale), "history": history,
                              "train_time_s": round(wall, 1), "train_cpu_time_s": round(cpu, 1)}
        line = f"x{scale}: embedded bicubic {embedded[str(scale)]['bicubic']:.2f} SRCNN {embedded[str(scale)]['srcnn']:.2f}"
        if set5:
            line += f", Set5 bicubic {set5[str(scale)]['bicubic']:.2f} SRCNN {set5[str(scale)]['srcnn']:.2f}"
        print(line, flush=True)
    import skimage

    record = {
        "what": "SRCNN 9-5-5 (Dong et al., TPAMI 2016) on bicubic-upscaled Y in [0, 1], one network per scale, "
                "trained by invnb",
        "seed": args.seed,
        "command": shlex.join(["python", "scripts/train_embedded_srcnn.py", *(sys.argv[1:] if argv is None else argv)]),
        "models": models,
        "architecture": model.architecture(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "input": "(N, 1, H, W) bicubic-upscaled luminance Y in [0, 1] (invnb.sr pipeline); output: the HR Y",
        "data": {"images": TRAIN_IMAGES,
                 "source": f"skimage.data of scikit-image {skimage.__version__} (files in its wheel)",
                 "pipeline": "invnb.sr.make_sr_sample (modcrop, MATLAB rgb2ycbcr, MATLAB bicubic down/up), Y / 255",
                 "scales": args.scales, "patch": args.patch, "min_std": args.min_std,
                 "sampling": "image uniform, then a position on a 4-px grid with ground-truth std >= min_std; "
                             "random transpose and flips"},
        "training": {"steps_per_scale": args.steps, "batch_size": args.batch_size, "optimizer": "Adam",
                     "lr": args.lr, "schedule": f"linear warm-up ({args.warmup} steps), cosine decay to 0, per step",
                     "loss": "MSE over the whole patch", "init": "invnb.models.srcnn_identity_init_",
                     "threads": args.threads, "deterministic_algorithms": True},
        "psnr": {"note": "Y channel, peak 1, scale pixels shaved, SR clipped to [0, 1]; whole images; "
                         "Set5 where the data folder has it (reported, not required)",
                 "embedded": embedded, "set5": set5 or None},
        "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
        "prep_time_s": round(prep_time, 1), "wall_time_s": round(time.perf_counter() - start, 1),
        "cpu_time_s": round(time.process_time() - cpu_start, 1),
    }
    meta = args.out_dir / EMBEDDED_SRCNN_META.name
    meta.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {', '.join(m['file'] for m in models.values())} and {meta.name} in {args.out_dir} "
          f"({record['wall_time_s']} s, {record['cpu_time_s']} s CPU)")
    return record


if __name__ == "__main__":
    main()
