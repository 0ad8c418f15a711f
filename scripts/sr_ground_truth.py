"""Ground truth for an SR network's frequency claim: measured gain, per-band error, agreement with attributions, LAM.

A command line over :func:`invnb.sr.ground_truth.run_ground_truth` (what is measured is described there) for
one network of :data:`invnb.sr.networks.SR_NETWORKS` (``--network``, the embedded weights unless
``--weights``). Writes ``summary.json`` (numbers, command, commit, device, CPU time per image),
``lam_maps.npz`` and the figures ``response.png``, ``band_error.png``, ``agreement.png``, ``lam.png`` into
``--out``::

    python scripts/sr_ground_truth.py --scales 2 --settings default --quick      # smoke run, ~2 min
    python scripts/sr_ground_truth.py --out data/results/sr_ground_truth        # the full run (CPU, 1 thread)
    python scripts/sr_ground_truth.py --replot data/results/sr_ground_truth     # figures from the files
    python scripts/sr_ground_truth.py --refresh data/results/sr_ground_truth    # re-derive agreements, findings
    python scripts/sr_ground_truth.py --network srcnn --out data/results/sr_ground_truth_srcnn  # the SRCNNs

``--refresh`` recomputes the numbers derived from the stored curves (:func:`invnb.sr.refresh_derived`) and
rewrites ``summary.json`` without running the network.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":  # one BLAS thread unless asked otherwise, set before numpy loads its BLAS
    _threads = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1"
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, _threads)

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from invnb.datasets import local_data_dir, sha256sum  # noqa: E402
from invnb.runs import git_commit  # noqa: E402
from invnb.sr import (SR_NETWORKS, GroundTruthConfig, refresh_derived, rounded, run_ground_truth,  # noqa: E402
                      sr_network)


def draw(result: dict, out: Path, maps: dict) -> None:
    """Save the figures of a run (:func:`invnb.plot.ground_truth_figures`) into `out`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from invnb.plot import ground_truth_figures

    for name, fig in ground_truth_figures(result, maps).items():
        fig.savefig(out / f"{name}.png", dpi=100)
        plt.close(fig)


def read_run(folder: Path) -> tuple[dict, dict]:
    """``summary.json`` and ``lam_maps.npz`` (float32; empty when absent) of a written run."""
    summary = folder / "summary.json"
    if not summary.is_file():
        raise SystemExit(f"no summary.json in {folder}")
    npz = folder / "lam_maps.npz"
    maps = {k: v.astype(np.float32) for k, v in np.load(npz).items()} if npz.is_file() else {}
    return json.loads(summary.read_text()), maps


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--network", choices=sorted(SR_NETWORKS), default="vdsr")
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--settings", nargs="*", choices=["default", "paper"], default=["default", "paper"],
                        help="inverse settings whose chirp attribution is compared (none: LAM only)")
    parser.add_argument("--chirp-size", type=int, default=128)
    parser.add_argument("--sets", nargs="*", default=["Set5", "Set14"],
                        help="benchmark folders under <data-dir>/sr used when present")
    parser.add_argument("--lam-steps", type=int, default=50)
    parser.add_argument("--lam-sigma", type=float, default=1.2)
    parser.add_argument("--lam-batch", type=int, default=10, help="path images per LAM forward/backward")
    parser.add_argument("--quick", action="store_true", help="fewer gratings and images (a smoke run)")
    parser.add_argument("--weights", type=Path, default=None, help="a checkpoint (default: the embedded one)")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--replot", type=Path, default=None, metavar="FOLDER",
                        help="only redraw the figures of FOLDER/summary.json (and lam_maps.npz)")
    parser.add_argument("--refresh", type=Path, default=None, metavar="FOLDER",
                        help="re-derive the agreements and findings of FOLDER/summary.json from its curves "
                             "and rewrite it (no network run)")
    args = parser.parse_args(argv)
    command = "python scripts/sr_ground_truth.py " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.replot or args.refresh:
        folder = args.replot or args.refresh
        result, maps = read_run(folder)
        result.setdefault("network", args.network)
        if args.refresh:
            result = rounded(refresh_derived(result))
            result["refreshed_by"] = command
            (folder / "summary.json").write_text(json.dumps(result, indent=1))
            print(f"re-derived the agreements and findings of {folder / 'summary.json'}")
        else:
            draw(result, folder, maps)
            print(f"redrew the figures of {folder / 'summary.json'}")
        return result
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    net = sr_network(args.network)
    config = GroundTruthConfig(network=args.network, scales=tuple(args.scales), settings=tuple(args.settings),
                               chirp_size=args.chirp_size, sets=tuple(args.sets), lam_steps=args.lam_steps,
                               lam_sigma=args.lam_sigma, lam_batch=args.lam_batch, quick=args.quick,
                               device=args.device)
    weights = args.weights or net.checkpoint  # a per-scale network's provenance file records each file's sha256
    models = net.load_scales(args.scales, args.weights, map_location=args.device)
    device = args.device if args.device != "cpu" else f"cpu ({platform.processor() or platform.machine()})"
    result = {"command": command, "commit": git_commit() or "unknown", "weights": weights.name,
              "weights_sha256": sha256sum(weights), "device": device, "threads": args.threads,
              "torch": torch.__version__}
    print(f"{command}\n{net.label} weights {weights.name} ({result['weights_sha256'][:12]}), device {device}, "
          f"{args.threads} thread(s)", flush=True)
    run, maps = run_ground_truth(models, config, args.data_dir or local_data_dir(), log=lambda s: print(s, flush=True))
    result.update(run)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "summary.json").write_text(json.dumps(rounded(result), indent=1))
        np.savez_compressed(args.out / "lam_maps.npz", **maps)
        draw(result, args.out, {k: v.astype(np.float32) for k, v in maps.items()})
        print(f"wrote summary.json, lam_maps.npz and the figures in {args.out}")
    return result


if __name__ == "__main__":
    main()
