"""Invert VDSR on an SR test set: dA-dE table, frequency analysis figure and summary.

One command for the paper's SR finding (default: Set5, x2, our default
inverse)::

    python scripts/vdsr_frequency.py                          # Set5 x2 -> runs/vdsr_frequency/Set5_x2_default/
    python scripts/vdsr_frequency.py --setting paper          # the released code's setting (slow on a CPU)
    python scripts/vdsr_frequency.py --crop 128               # centre crops, for a quick CPU run
    python scripts/vdsr_frequency.py --dataset Artificial --scale 4

Per image it prints dA-dE (PSNR peak 1 / SSIM / MSE on Y, ``scale`` border
shaved), the amount of activation and the time; then the averages, and the
frequency analysis: mean |DCT| of 8x8 patches per zigzag band for focused
(mean attribution >= the image's mean over patches) and unfocused patches,
with the summary number "share of the AC magnitude in bands >= cut" for
each group. Figure (``frequency.png``) and numbers (``summary.json``) go to
``--out``. Data: ``$INVNB_TEST_DATA`` or ``--data-dir`` (``sr/<dataset>``
folders of HR images and ``vdsr/vdsr.pth``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from invnb.datasets import local_data_dir
from invnb.inverse import LayerwiseInverse
from invnb.models import load_vdsr
from invnb.sr import (
    analyse_samples,
    center_crop,
    chirp_hr,
    load_sr_folder,
    make_sr_sample,
)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="Set5", help="Set5, Set14, BSDS100, Urban100 (folder under DATA/sr) or Artificial")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--setting", choices=["default", "paper"], default="default")
    parser.add_argument("--mask-weight", type=float, default=None, help="override the setting's mask_weight")
    parser.add_argument("--max-iter", type=int, default=None, help="override the setting's iteration cap")
    parser.add_argument("--crop", type=int, default=0, help="centre crop side in pixels (0: whole images)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images")
    parser.add_argument("--cut", type=int, default=28, help="first zigzag band counted as high frequency")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    data_dir = args.data_dir or local_data_dir()
    model = load_vdsr(data_dir / "vdsr" / "vdsr.pth", map_location=args.device)
    if args.dataset == "Artificial":
        samples = [make_sr_sample(chirp_hr(), args.scale, cumulative_crop=True, name="artificial")]
    else:
        samples = load_sr_folder(data_dir / "sr" / args.dataset, args.scale, limit=args.limit)
    if args.crop:
        samples = [center_crop(s, min(args.crop, *s.im_b_y.shape)) for s in samples]
    overrides = {k: v for k, v in (("mask_weight", args.mask_weight), ("max_iter", args.max_iter)) if v is not None}
    # only the inverse input is analysed: drop the 40 intermediate feature maps (GBs on whole images)
    inverse = LayerwiseInverse.from_setting(model, {"default": "vdsr", "paper": "vdsr_paper"}[args.setting],
                                           keep_features=False, **overrides)
    tag = f"{args.dataset}_x{args.scale}_{args.setting}" + (f"_crop{args.crop}" if args.crop else "")
    out = args.out or Path("runs") / "vdsr_frequency" / tag
    print(
        f"{tag}: {len(samples)} images, mask_weight {inverse.mask_weight}, penalty {inverse.penalty}, "
        f"solver {inverse.solver}, max_iter {inverse.max_iter}, device {args.device}"
    )
    head = "".join(f"{k + ' ' + m:>10}" for m in ("PSNR", "SSIM") for k in ("dA", "dB", "dC", "dD", "dE"))
    print(f"{'image':<14}{head}{'amount':>9}{'time/s':>8}")

    def row(name, t, amount, seconds):
        vals = [t.psnr[k] for k in ("dA", "dB", "dC", "dD", "dE")] + [t.ssim[k] for k in ("dA", "dB", "dC", "dD", "dE")]
        cells = "".join(f"{v:>10.2f}" for v in vals[:5]) + "".join(f"{v:>10.4f}" for v in vals[5:])
        print(f"{name:<14}{cells}{amount:>9.4f}{seconds:>8.1f}", flush=True)

    report = analyse_samples(
        model, samples, inverse, callback=lambda r: row(r.name, r.table, r.amount, r.seconds)
    )
    row("mean", report.table, report.amount, report.seconds)
    print("MSE (mean): " + "  ".join(f"{k} {v:.3e}" for k, v in report.table.mse.items()))

    profile = report.frequency_profile()
    summary = profile.summary(args.cut)
    print(
        f"\nfrequency analysis ({profile.n_focused} focused / {profile.n_unfocused} unfocused 8x8 patches): "
        f"share of AC |DCT| in zigzag bands >= {args.cut}: focused {summary['focused']:.4f}, "
        f"unfocused {summary['unfocused']:.4f}, all {summary['all']:.4f}; focused/unfocused = {summary['ratio']:.2f}"
    )

    out.mkdir(parents=True, exist_ok=True)
    import matplotlib

    matplotlib.use("Agg")
    from invnb.plot import plot_frequency_profile

    ax = plot_frequency_profile(profile, title=f"VDSR {tag}", cut=args.cut)
    ax.figure.tight_layout()
    ax.figure.savefig(out / "frequency.png", dpi=120)
    result = {
        "tag": tag,
        "mask_weight": inverse.mask_weight,
        "per_image": [
            {"name": r.name, "psnr": r.table.psnr, "ssim": r.table.ssim, "mse": r.table.mse, "amount": r.amount,
             "seconds": r.seconds, "failed": r.failed}
            for r in report.images
        ],
        "mean": {"psnr": report.table.psnr, "ssim": report.table.ssim, "mse": report.table.mse,
                 "amount": report.amount, "seconds": report.seconds},
        "frequency": {"focused": profile.focused.tolist(), "unfocused": profile.unfocused.tolist(),
                      "all": profile.all.tolist(), "n_focused": profile.n_focused,
                      "n_unfocused": profile.n_unfocused, "summary": summary},
    }
    (out / "summary.json").write_text(json.dumps(result, indent=1))
    print(f"wrote {out / 'frequency.png'} and {out / 'summary.json'}")
    return result


if __name__ == "__main__":
    main()
