"""VDSR's overlooked frequency bands: the chirp experiment and per-band DCT retention.

Inverts VDSR on the paper's chirp ``sin(x^2/c) sin(y^2/c)`` (position is
frequency, ``f = x / (c pi)`` cycles/px) at each scale and setting, bins the
attribution ``|x_hat| / (|x| + 1e-6)`` by radial local frequency and along
each axis, and prints the band of lowest attribution (range, depth relative
to the low-frequency level) beside each scale's LR Nyquist frequency
(``0.5 / scale``), the amount, PSNR(y, y_hat) and the output fidelity
(relative error, correlation, norm ratio of ``y_hat`` to ``y``). With
``--set5`` it also prints the per-band retention (mean |DCT(x_hat)| / mean
|DCT(x)| of 8x8 patches per zigzag band) on whole Set5 images::

    python scripts/vdsr_chirp.py --scales 2 --settings default --size 128    # quick (CPU, ~30 s)
    python scripts/vdsr_chirp.py --report data/results/vdsr_chirp256/summary.json  # re-print a bundled run
    python scripts/vdsr_chirp.py --device cuda --scales 2 3 4 --settings default paper \\
        --set5 --out data/results/vdsr_chirp                                  # the bundled run

Weights: ``--weights`` (default ``<data>/vdsr/vdsr.pth``, the paper's; any
VDSR checkpoint :func:`invnb.models.load_vdsr` reads). ``--network srcnn`` runs the same analysis on
the embedded SRCNNs (one per scale, rewritten to return what they add to the bicubic input,
:func:`invnb.sr.load_embedded_srcnn_residual`); the summary then records the SHA-256 of their provenance
file, which holds each checkpoint's::

    python scripts/vdsr_chirp.py --network srcnn --scales 2 3 4 --settings default paper --size 128

``--out`` gets
``summary.json`` (numbers, command, commit, weights sha256), ``chirp.png``
and ``retention.png``; ``--replot FOLDER`` redraws ``retention.png`` (and
``fidelity.png``, and ``chirp.png`` where ``--save-images`` wrote
``chirp_images.npz``) of a written ``summary.json`` without computing
anything.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from invnb.datasets import local_data_dir, sha256sum
from invnb.inverse import LayerwiseInverse
from invnb.models import load_vdsr
from invnb.runs import git_commit
from invnb.sr import (
    SR_NETWORKS,
    center_crop,
    invert_sample,
    load_sr_folder,
    mean_band_retention,
    mean_frequency_profile,
    sr_network,
)
from invnb.sr.chirp_runs import (
    chirp_record,
    chirp_report_text,
    load_chirp_images,
    save_chirp_images,
)

SETTINGS = {"default": "vdsr", "paper": "vdsr_paper"}  # the chirp's names for the registry's VDSR settings


def chirp_run(model, scale, setting, size, rate, device, overrides, settings=SETTINGS):
    """One inverse of the chirp; returns (VDSRInversion, record dict)."""
    inverse = LayerwiseInverse.from_setting(model, settings[setting], keep_features=False, **overrides)
    return chirp_record(model, inverse, scale, setting, size, rate, device, overrides)


def draw(result: dict, out: Path, images: dict | None = None, rate: float | None = None) -> None:
    """``retention.png`` (and ``fidelity.png`` with a sweep) from the summary; ``chirp.png`` from `images`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from invnb.plot import plot_chirp_grid, plot_fidelity_sweep, plot_retention_summary

    if images:
        fig = plot_chirp_grid(images, rate)
        fig.savefig(out / "chirp.png", dpi=90)
        plt.close(fig)
    fig = plot_retention_summary(result)
    fig.savefig(out / "retention.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    if result.get("sweep"):
        fig = plot_fidelity_sweep(result["sweep"])
        fig.savefig(out / "fidelity.png", dpi=110)
        plt.close(fig)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[2])
    parser.add_argument("--settings", nargs="+", choices=["default", "paper"], default=["default"])
    parser.add_argument("--size", type=int, default=512, help="chirp side (512: the paper's image)")
    parser.add_argument("--rate", type=float, default=None, help="chirp constant c (default 2*size: 1024 at 512)")
    parser.add_argument("--max-iter", type=int, default=None, help="override the settings' iteration cap")
    parser.add_argument("--mask-weight", type=float, default=None)
    parser.add_argument("--target-scale", choices=["forward", "none", "active"], default=None,
                        help="override the per-layer target rescaling rule (invnb.inverse)")
    parser.add_argument("--set5", action="store_true", help="also the per-band retention on whole Set5 images")
    parser.add_argument("--set5-crop", type=int, default=0, help="centre crops of this side (0: whole images)")
    parser.add_argument("--no-chirp", action="store_true", help="skip the chirp runs (e.g. only --set5)")
    parser.add_argument("--set5-settings", nargs="+", choices=["default", "paper"], default=None,
                        help="settings for the Set5 retention (default: --settings)")
    parser.add_argument("--sweep", action="store_true",
                        help="fidelity vs amount on the chirp at the first scale: mask_weight sweeps of the "
                             "default, the default run to convergence (max_iter 300) and the paper setting")
    parser.add_argument("--sweep-settings", nargs="+", default=["default", "converged", "paper"],
                        choices=["default", "converged", "paper"])
    parser.add_argument("--report", type=Path, default=None,
                        help="only print the bands and retention of a summary.json this script wrote "
                             "(profiles re-binned to --width)")
    parser.add_argument("--width", type=float, default=0.01, help="bin width in cycles/px for --report")
    parser.add_argument("--save-images", action="store_true",
                        help="also write chirp_images.npz (each chirp run's x and x_hat, float16) to --out, "
                             "from which --replot redraws chirp.png")
    parser.add_argument("--replot", type=Path, default=None, metavar="FOLDER",
                        help="only redraw the figures of FOLDER/summary.json: retention.png, fidelity.png, and "
                             "chirp.png where FOLDER has chirp_images.npz (--save-images)")
    parser.add_argument("--network", choices=sorted(SR_NETWORKS), default="vdsr",
                        help="the SR network (invnb.sr.SR_NETWORKS); srcnn: the embedded SRCNN of each scale "
                             "in residual form")
    parser.add_argument("--weights", type=Path, default=None,
                        help="a checkpoint (default: vdsr the paper's <data>/vdsr/vdsr.pth, srcnn the embedded ones)")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.report:
        result = json.loads(args.report.read_text())
        print(chirp_report_text(result, args.width))
        return result
    if args.replot:
        summary = args.replot / "summary.json"
        if not summary.is_file():
            parser.error(f"--replot: no summary.json in {args.replot}")
        result = json.loads(summary.read_text())
        images = load_chirp_images(args.replot / "chirp_images.npz", result)
        draw(result, args.replot, images, result["chirp"][0]["rate"] if images else None)
        print(f"redrew the figures of {summary.name}"
              + ("" if images else " except chirp.png (no chirp_images.npz: run with --save-images)"))
        return result

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data_dir = args.data_dir or local_data_dir()
    net = sr_network(args.network)
    if args.network == "vdsr":
        weights = args.weights or data_dir / "vdsr" / "vdsr.pth"
        models = dict.fromkeys(args.scales, load_vdsr(weights, map_location=args.device))
    else:  # a per-scale network's provenance file records each file's sha256
        weights = args.weights or net.checkpoint
        models = net.load_scales(args.scales, args.weights, map_location=args.device)
    rate = args.rate if args.rate is not None else 2.0 * args.size
    overrides = {k: v for k, v in (("max_iter", args.max_iter), ("mask_weight", args.mask_weight),
                                   ("target_scale", args.target_scale)) if v is not None}
    result = {
        "command": "python scripts/vdsr_chirp.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "commit": git_commit() or "unknown", "network": args.network, "weights": str(weights.name),
        "weights_sha256": sha256sum(weights),
        "device": args.device, "torch": torch.__version__, "chirp": [], "set5": [], "sweep": {},
    }
    print(f"chirp {args.size}x{args.size}, c = {rate:g} (f = x / (c pi): 0..{args.size / (rate * np.pi):.3f} "
          f"cycles/px per axis), device {args.device}, weights sha256 {result['weights_sha256'][:12]}")
    images = {}
    for setting in [] if args.no_chirp else args.settings:
        for scale in args.scales:
            r, rec = chirp_run(models[scale], scale, setting, args.size, rate, args.device, overrides, net.settings)
            images[(scale, setting)] = r
            result["chirp"].append(rec)
            f = rec["fidelity"]
            print(f"\nx{scale} {setting}: amount {rec['amount']:.3f}, PSNR(y, y_hat) {rec['psnr_dB']:.2f} dB, "
                  f"relative error {f['relative_error']:.3f}, correlation {f['correlation']:.3f}, "
                  f"|y_hat|/|y| {f['norm_ratio']:.3f}, {rec['seconds']:.0f} s; LR Nyquist {rec['lr_nyquist']:.3f}",
                  flush=True)
            for axis in ("radial", "x", "y"):
                b = rec["band"][axis]
                print(f"  {axis:>6}: lowest {b['lo']:.3f}-{b['hi']:.3f} cycles/px (min at {b['f_min']:.3f}), "
                      f"{b['value']:.3f} vs {b['reference']:.3f} below 0.05: depth {b['depth']:.2f}, "
                      f"above the band {b['above']:.2f} of the low level", flush=True)
            for key in ("retention", "retention_projection"):
                print(f"  {key} per zigzag band (0..63): " + " ".join(f"{v:.2f}" for v in rec[key]))
    if args.sweep:
        grids = {"default": ("default", {}, [0.1, 0.3, 1.0, 3.0, 10.0]),
                 "converged": ("default", {"max_iter": 300}, [0.1, 0.3, 1.0, 3.0]),
                 "paper": ("paper", {}, [0.05, 0.15, 0.5])}
        scale = args.scales[0]
        for name in args.sweep_settings:
            setting, kw, weights_grid = grids[name]
            result["sweep"][name] = []
            for lam in weights_grid:
                _, rec = chirp_run(models[scale], scale, setting, args.size, rate, args.device,
                                   {**overrides, **kw, "mask_weight": lam}, net.settings)
                row = {k: rec[k] for k in ("amount", "psnr_dB", "fidelity", "seconds")}
                row.update(mask_weight=lam, scale=scale, band=rec["band"]["radial"])
                result["sweep"][name].append(row)
                f = row["fidelity"]
                print(f"sweep x{scale} {name} mask_weight {lam:g}: amount {row['amount']:.3f}, "
                      f"{row['psnr_dB']:.2f} dB, relative error {f['relative_error']:.3f}, correlation "
                      f"{f['correlation']:.3f}, |y_hat|/|y| {f['norm_ratio']:.3f}, {row['seconds']:.0f} s", flush=True)
    if args.set5:
        samples_by_scale = {s: load_sr_folder(data_dir / "sr" / "Set5", s) for s in args.scales}
        if args.set5_crop:
            samples_by_scale = {k: [center_crop(s, min(args.set5_crop, *s.im_b_y.shape)) for s in v]
                                for k, v in samples_by_scale.items()}
        for setting in args.set5_settings or args.settings:
            for scale in args.scales:
                inv = LayerwiseInverse.from_setting(models[scale], net.settings[setting], keep_features=False,
                                                    **overrides)
                t0 = time.perf_counter()
                runs = [invert_sample(models[scale], s, inv, args.device) for s in samples_by_scale[scale]]
                ret = mean_band_retention([(r.x_hat, r.x) for r in runs])
                ret_p = mean_band_retention([(r.x_hat, r.x) for r in runs], mode="projection")
                prof = mean_frequency_profile([r.frequency_profile() for r in runs])
                rec = {"scale": scale, "setting": setting, "n_images": len(runs), "crop": args.set5_crop,
                       "amount": float(np.mean([r.amount for r in runs])),
                       "psnr_dB": float(np.mean([r.fidelity for r in runs])),
                       "fidelity": {k: float(np.mean([r.output_fidelity[k] for r in runs]))
                                    for k in runs[0].output_fidelity},
                       "focused_unfocused": {"ratio": prof.summary()["ratio"], "focused": prof.focused.tolist(),
                                             "unfocused": prof.unfocused.tolist(), "all": prof.all.tolist()},
                       "retention": ret.tolist(), "retention_projection": ret_p.tolist(), "seconds": time.perf_counter() - t0}
                result["set5"].append(rec)
                print(f"\nSet5{f' {args.set5_crop}px crops' if args.set5_crop else ''} x{scale} {setting}: amount {rec['amount']:.3f}, PSNR(y, y_hat) {rec['psnr_dB']:.2f} dB, "
                      f"relative error {rec['fidelity']['relative_error']:.3f}, correlation "
                      f"{rec['fidelity']['correlation']:.3f}, focused/unfocused high-band ratio "
                      f"{rec['focused_unfocused']['ratio']:.2f}, {rec['seconds']:.0f} s")
                print("  retention per zigzag band (0..63): " + " ".join(f"{v:.2f}" for v in ret))
                print("  retention_projection per zigzag band (0..63): " + " ".join(f"{v:.2f}" for v in ret_p),
                      flush=True)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "summary.json").write_text(json.dumps(result, indent=1))
        if args.save_images and images:
            save_chirp_images(args.out / "chirp_images.npz", images)
        draw(result, args.out, images, rate)
        written = sorted(p.name for p in args.out.iterdir() if p.suffix in (".json", ".png"))
        print(f"wrote {', '.join(written)} in {args.out}")
    return result


if __name__ == "__main__":
    main()
