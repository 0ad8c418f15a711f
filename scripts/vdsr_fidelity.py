"""Does the VDSR inverse reproduce VDSR's output? Fidelity, amount, cost and chirp curves per setting.

For each scale, image (the chirp ``sin(x^2/c) sin(y^2/c)`` with ``c = 2 * size``,
made the paper's way, and centre crops of the embedded photographs) and
setting (``default``: the ``"vdsr"`` setting, the walk then the output fit;
``walk``: the same walk without the fit; ``paper``: ``"vdsr_paper"``;
``matched``: the default with ``mask_weight`` chosen per image to keep the
paper setting's amount there), prints and stores the amount of activation,
the output fidelity of ``y_hat = VDSR(x_hat)`` against ``y = VDSR(x)``, the
inverse's time in VDSR forward passes and, for the default, the walk's and
the fit's shares (:func:`invnb.sr.fidelity.run_fidelity`). ``--out`` gets
``summary.json`` and the chirp's attribution-by-frequency curves
(``chirp_curves.png``)::

    python scripts/vdsr_fidelity.py --chirp-sizes 64 --photos --scales 2      # quick (CPU, minutes)
    python scripts/vdsr_fidelity.py --chirp-sizes 64 128 --photos --scales 2 3 4 \\
        --settings default walk paper --out data/results/vdsr_fidelity        # a bundled run (1 h on 2 busy cores)
    python scripts/vdsr_fidelity.py --chirp-sizes --photos --scales 2 3 4 \\
        --settings paper matched --out data/results/vdsr_fidelity_matched     # each photograph at the paper's amount
    python scripts/vdsr_fidelity.py --report data/results/vdsr_fidelity/summary.json --plot

Weights: the embedded VDSR (pytorch-vdsr) unless ``--weights`` names a VDSR
checkpoint (:func:`invnb.models.load_vdsr`). One CPU thread by default.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from invnb.datasets import sha256sum
from invnb.inverse import setting_kwargs
from invnb.models import EMBEDDED_VDSR_CHECKPOINT, load_embedded_vdsr, load_vdsr
from invnb.runs import git_commit
from invnb.sr.fidelity import FIDELITY_PHOTOS, FIDELITY_SETTINGS, fidelity_report_text, fidelity_row, run_fidelity


def draw(result: dict, path: Path) -> None:
    """``chirp_curves.png`` of a summary (:func:`invnb.plot.fidelity.plot_fidelity_curves`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from invnb.plot.fidelity import plot_fidelity_curves

    fig = plot_fidelity_curves(result)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--settings", nargs="+", choices=FIDELITY_SETTINGS, default=["default", "paper"])
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--chirp-sizes", type=int, nargs="*", default=[64], help="chirp sides (c = 2 * side)")
    parser.add_argument("--photos", action="store_true", help="also the embedded photographs (centre crops)")
    parser.add_argument("--photo-names", nargs="+", default=list(FIDELITY_PHOTOS), choices=FIDELITY_PHOTOS)
    parser.add_argument("--crop", type=int, default=64, help="side of the photographs' centre crops (the chapter's)")
    parser.add_argument("--weights", type=Path, default=None, help="a VDSR checkpoint (default: the embedded VDSR)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="folder for summary.json and chirp_curves.png")
    parser.add_argument("--report", type=Path, default=None, help="only re-print a summary.json this script wrote")
    parser.add_argument("--plot", action="store_true",
                        help="with --report: also draw chirp_curves.png beside that summary.json")
    args = parser.parse_args(argv)
    if args.report:
        result = json.loads(args.report.read_text())
        print(fidelity_report_text(result))
        if args.plot and any("profile" in r for r in result["runs"]):
            draw(result, args.report.parent / "chirp_curves.png")
        return result
    if "matched" in args.settings and ("paper" not in args.settings
                                       or args.settings.index("paper") > args.settings.index("matched")):
        parser.error("--settings: 'matched' needs 'paper' before it")
    torch.set_num_threads(args.threads)
    model = (load_vdsr(args.weights) if args.weights else load_embedded_vdsr()).eval()
    weights = args.weights or EMBEDDED_VDSR_CHECKPOINT
    result = {"command": "python scripts/vdsr_fidelity.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "commit": git_commit() or "unknown", "weights": weights.name, "weights_sha256": sha256sum(weights),
              "threads": args.threads, "torch": torch.__version__, "default_setting": setting_kwargs("vdsr")}
    result["runs"] = run_fidelity(model, args.scales, args.settings, args.chirp_sizes,
                                  args.photo_names if args.photos else (), args.crop,
                                  callback=lambda r: print(fidelity_row(r), flush=True))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "summary.json").write_text(json.dumps(result, indent=1))
        if any("profile" in r for r in result["runs"]):
            draw(result, args.out / "chirp_curves.png")
        print(f"wrote summary.json and chirp_curves.png in {args.out}")
    print(fidelity_report_text(result))
    return result


if __name__ == "__main__":
    main()
