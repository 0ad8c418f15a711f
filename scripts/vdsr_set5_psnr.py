"""Set5 PSNR of VDSR (the paper's or the embedded weights), next to bicubic and the published numbers.

Every image goes through our Python pipeline (modcrop, MATLAB rgb2ycbcr,
MATLAB bicubic down/up), VDSR predicts the residual, and PSNR is taken on the
Y channel in [0, 1] (peak 1) with ``scale`` pixels shaved from each border,
the HR estimate clipped to [0, 1] (as pytorch-vdsr's eval.py does).

Usage::

    python scripts/vdsr_set5_psnr.py                 # data from $INVNB_TEST_DATA or ../shared/data
    python scripts/vdsr_set5_psnr.py --weights embedded   # the VDSR shipped in invnb/data/ (pytorch-vdsr's)
    python scripts/vdsr_set5_psnr.py --data-dir DIR  # DIR/sr/Set5/*.bmp and DIR/vdsr/vdsr.pth
    python scripts/vdsr_set5_psnr.py --download      # fetch Set5 and the weights into the data dir
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from invnb.datasets import local_data_dir
from invnb.models import (
    EMBEDDED_VDSR_CHECKPOINT,
    download_vdsr_weights,
    load_embedded_vdsr,
    load_vdsr,
)
from invnb.sr import download_sr_dataset, load_sr_folder, psnr, y_to_tensor

#: VDSR paper (Kim et al., CVPR 2016), Table 3, Set5.
PUBLISHED = {2: 37.53, 3: 33.66, 4: 31.35}
#: pytorch-vdsr's own re-implementation (its README).
PYTORCH_VDSR = {2: 37.65, 3: 33.77, 4: 31.45}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="folder with sr/Set5 and vdsr/vdsr.pth")
    parser.add_argument("--weights", default=None,
                        help="'embedded' (pytorch-vdsr's weights shipped in invnb/data/), or a VDSR checkpoint "
                             "(default DATA/vdsr/vdsr.pth, the paper's)")
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--cumulative-crop", action="store_true", help="crop as the reference MATLAB script")
    parser.add_argument("--download", action="store_true", help="download Set5 and the weights first")
    parser.add_argument("--per-image", action="store_true", help="also print each image's PSNR")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)

    data_dir = args.data_dir or local_data_dir()
    if args.download:
        download_sr_dataset("Set5", data_dir)
        if args.weights != "embedded":
            download_vdsr_weights(data_dir)
    if args.weights == "embedded":
        weights = "embedded (pytorch-vdsr epoch 50, invnb/data/" + EMBEDDED_VDSR_CHECKPOINT.name + ")"
        model = load_embedded_vdsr(map_location=args.device)
    else:
        weights = Path(args.weights) if args.weights else data_dir / "vdsr" / "vdsr.pth"
        model = load_vdsr(weights, map_location=args.device)
    print(f"weights {weights}, data {data_dir / 'sr' / 'Set5'}, device {args.device}")

    results = {}
    start = time.perf_counter()
    for scale in args.scales:
        samples = load_sr_folder(data_dir / "sr" / "Set5", scale, cumulative_crop=args.cumulative_crop)
        ours, bicubic = [], []
        for s in tqdm(samples, desc=f"x{scale}", leave=False):
            x = y_to_tensor(s.im_b_y, args.device)
            with torch.no_grad():
                hr = model.super_resolve(x).clamp(0, 1)[0, 0].double().cpu().numpy()
            gt = s.im_gt_y / 255.0
            ours.append(psnr(hr, gt, data_range=1.0, border=scale))
            bicubic.append(psnr(s.im_b_y / 255.0, gt, data_range=1.0, border=scale))
            if args.per_image:
                print(f"  x{scale} {s.name:<12} bicubic {bicubic[-1]:6.2f}  VDSR {ours[-1]:6.2f}")
        results[scale] = (float(np.mean(bicubic)), float(np.mean(ours)), len(samples))

    print(f"\nSet5, Y channel, border = scale shaved, PSNR in dB ({time.perf_counter() - start:.0f} s)")
    print(f"{'scale':<6}{'n':>3}{'bicubic':>10}{'VDSR (ours)':>13}{'published':>11}{'pytorch-vdsr':>14}")
    for scale, (b, o, n) in results.items():
        pub = f"{PUBLISHED[scale]:.2f}" if scale in PUBLISHED else "-"
        ptv = f"{PYTORCH_VDSR[scale]:.2f}" if scale in PYTORCH_VDSR else "-"
        print(f"x{scale:<5}{n:>3}{b:>10.2f}{o:>13.2f}{pub:>11}{ptv:>14}")
    return results


if __name__ == "__main__":
    main()
