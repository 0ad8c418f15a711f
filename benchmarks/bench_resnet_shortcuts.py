"""Do the identity shortcuts make the embedded SmallResNet's inverse fail the model-randomisation check?

On development images (``make_shapes(n, seed=777001)``, never the held-out seeds), the
default inverse explains the predicted class of

* the trained SmallResNet;
* the SmallResNet with every parametric layer re-initialised (`invnb.eval.randomise_layers`,
  one draw per ``--seeds`` value), as the sanity check's "all at once" step;
* the same re-initialised network with its identity shortcuts removed
  (`invnb.models.without_identity_shortcuts`: each block without a projection shortcut computes
  its branch alone, a plain chain; the stride-2 block keeps its 1x1 projection).

Per network it reports the map's mass in the object, its Spearman correlation with the trained
network's map and with the image's own magnitude ``sum_c x^2``, the share of the inverse
input's energy ``sum_c x_hat^2`` inside the object (is it the inverse input that finds the
object, or the map formula's factor ``|x|``?), and the share of images whose predicted class is
the one the network predicts for a blank (all-zero) input. A network whose prediction no longer
depends on the image predicts the blank's class for every image. Two maps that need no network
are the floors: a uniform map, and the image's own ``sum_c x^2``::

    python benchmarks/bench_resnet_shortcuts.py --n-images 20 --seeds 0 1 2 --threads 1 --json runs/resnet_shortcuts.json

With ``--json PATH`` it also writes the table as Markdown beside it (``PATH`` with ``.md``), with the
command and commit under it.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from invnb.datasets.synthetic import make_shapes, normalize
from invnb.eval import mass_in_mask
from invnb.eval.sanity import parametric_layers, randomise_layers, spearman
from invnb.inverse import LayerwiseInverse
from invnb.models import load_embedded, without_identity_shortcuts
from invnb.runs import git_commit


def measure(model: nn.Module, x: torch.Tensor, masks: torch.Tensor,
            trained_map: torch.Tensor | None) -> tuple[dict, torch.Tensor]:
    """The default inverse's map on `model` ``(N, H, W)`` and its scores (means over images; see the module docstring)."""
    result = LayerwiseInverse(model).invert(x)
    a, x_hat = result.attribution, result.features[0]
    with torch.no_grad():
        blank = int(model(torch.zeros_like(x[:1])).argmax(1))
        predicted = model(x).argmax(1)
    row = {"mass_in_mask": float(mass_in_mask(a, masks).mean()),
           "spearman_vs_image_magnitude": float(np.mean(spearman((x ** 2).sum(1), a))),
           "inverse_input_energy_in_object": float(mass_in_mask((x_hat ** 2).sum(1), masks).mean()),
           "share_predicting_blank_class": float((predicted == blank).float().mean())}
    if trained_map is not None:
        row["spearman_vs_trained"] = float(np.mean(spearman(trained_map, a)))
    return row, a


ROW_NAMES = {"trained": "trained", "random": "every layer re-initialised",
             "random_without_identity_shortcuts": "re-initialised, identity shortcuts removed"}


def markdown_table(out: dict) -> str:
    """The rows of :func:`main`'s result as a Markdown table, with the command and commit under it."""
    lines = ["| SmallResNet | mass in the object | Spearman vs trained map | Spearman vs sum_c x^2 "
             "| inverse input's energy in the object | predicts the blank input's class |",
             "|---|---:|---:|---:|---:|---:|"]
    for key, row in out["rows"].items():
        trained = row.get("spearman_vs_trained")
        lines.append(f"| {ROW_NAMES[key]} | {row['mass_in_mask']:.3f} | "
                     f"{'1' if trained is None else f'{trained:.3f}'} | "
                     f"{row['spearman_vs_image_magnitude']:.3f} | {row['inverse_input_energy_in_object']:.3f} | "
                     f"{row['share_predicting_blank_class']:.2f} |")
    lines.append(f"| the image's sum_c x^2 as the map | {out['image_energy_in_object']:.3f} | | | | |")
    lines.append(f"| uniform map | {out['uniform_mass_in_mask']:.3f} | | | | |")
    commit = str(out["git_commit"])[:7]
    lines += ["", f"{out['n_images']} development images (seed {out['image_seed']}), re-initialisation seeds "
              f"{' '.join(map(str, out['seeds']))} (means). Command: `{out['command']}`, commit `{commit}`, "
              f"torch {out['torch']}, {out['threads']} thread(s)."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-images", type=int, default=20, help="development images (default 20)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="re-initialisation seeds (default 0 1 2)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--json", help="write the numbers here")
    args = ap.parse_args(argv)
    if args.n_images < 1:
        ap.error(f"--n-images must be at least 1, got {args.n_images}")
    if args.threads:
        torch.set_num_threads(args.threads)
    data = make_shapes(args.n_images, seed=777001)
    x = normalize(data.images)
    model = load_embedded("smallresnet").eval()
    rows = {}
    rows["trained"], trained_map = measure(model, x, data.masks, None)
    uniform = float(mass_in_mask(torch.ones_like(x[:, 0]), data.masks).mean())
    image_energy = float(mass_in_mask((x ** 2).sum(1), data.masks).mean())
    per_seed = {"random": [], "random_without_identity_shortcuts": []}
    for seed in args.seeds:
        random_model = randomise_layers(model, parametric_layers(model), seed=seed)
        per_seed["random"].append(measure(random_model, x, data.masks, trained_map)[0])
        per_seed["random_without_identity_shortcuts"].append(
            measure(without_identity_shortcuts(random_model), x, data.masks, trained_map)[0])
    for name, runs in per_seed.items():
        rows[name] = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
    out = {"command": "python benchmarks/bench_resnet_shortcuts.py " + " ".join(sys.argv[1:] if argv is None else argv),
           "git_commit": git_commit(), "torch": torch.__version__, "platform": platform.platform(),
           "threads": torch.get_num_threads(), "n_images": args.n_images, "image_seed": 777001,
           "seeds": args.seeds, "uniform_mass_in_mask": uniform,
           "image_energy_in_object": image_energy, "rows": rows, "per_seed": per_seed}
    print(f"uniform map: mass {uniform:.3f}; the image's sum_c x^2: {image_energy:.3f}")
    for name, row in rows.items():
        print(f"{name:36s}" + "  ".join(f"{k} {v:.3f}" for k, v in row.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
        Path(args.json).with_suffix(".md").write_text(markdown_table(out))
    return out


if __name__ == "__main__":
    main()
