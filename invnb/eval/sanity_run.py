"""The model-randomisation sanity check of every attribution method on an embedded model, run and reported.

:func:`run_sanity_checks` re-initialises the layers of an embedded model (SmallVGG or SmallResNet; cascading from the
top, and all at once) for several seeds and compares each method's maps of the
randomised model with the trained model's (:func:`invnb.eval.sanity.randomisation_curves`),
on held-out synthetic images. Rows are appended to ``rows.jsonl`` as they finish, so an
interrupted run resumes; :func:`sanity_markdown` and :func:`criterion` summarise them.

Examples
--------
>>> report = run_sanity_checks("runs/sanity", methods=["inverse", "occlusion"], n_images=4)  # doctest: +SKIP
>>> report.criterion["passes"]                                                                # doctest: +SKIP
"""

from __future__ import annotations

import json
import platform
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from invnb._utils.precision import full_precision
from invnb.attribution.base import make_method
from invnb.datasets.download import sha256sum
from invnb.datasets.synthetic import HELD_OUT_SEED, make_shapes, normalize
from invnb.eval.sanity import (
    parametric_layers,
    randomisation_curves,
    randomisation_summary,
)
from invnb.eval.tables import write_table

__all__ = ["MARGIN", "SanityReport", "criterion", "criterion_text", "run_sanity_checks", "sanity_markdown"]

#: The criterion's margin: the default inverse's Spearman correlation on the fully randomised
#: model may exceed occlusion's by at most this much.
MARGIN = 0.1


@dataclass
class SanityReport:
    """A finished sanity check: per-(method, mode, step) summary rows, the criterion, provenance."""

    rows: list
    criterion: dict | None
    meta: dict

    def write(self, folder: str | Path) -> Path:
        """``summary.csv``/``.json``/``.md`` in `folder` (the figure is drawn by :mod:`invnb.plot.sanity`)."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        write_table(self.rows, out / "summary.csv")
        (out / "summary.json").write_text(json.dumps({**self.meta, "criterion": self.criterion, "rows": self.rows},
                                                     indent=1))
        (out / "summary.md").write_text(sanity_markdown(self.rows, self.criterion, self.meta))
        return out


def criterion(summary: Sequence[dict]) -> dict | None:
    """The check on the fully re-initialised model; None when a needed row is missing.

    Passes when the default inverse's Spearman correlation (trained vs randomised map) is at
    most occlusion's + :data:`MARGIN` and its mass in the object falls.
    """
    get = {(r["method"], r["mode"]): r for r in summary}
    need = [("inverse", "all"), ("occlusion", "all"), ("inverse", "trained")]
    if any(k not in get for k in need):
        return None
    inv, occ, tr = get[("inverse", "all")], get[("occlusion", "all")], get[("inverse", "trained")]
    rank_ok = inv["spearman"] <= occ["spearman"] + MARGIN
    mass_ok = inv["mass_in_mask"] < tr["mass_in_mask"]
    return {"inverse_spearman": inv["spearman"], "occlusion_spearman": occ["spearman"], "margin": MARGIN,
            "spearman_ok": bool(rank_ok), "mass_trained": tr["mass_in_mask"], "mass_random": inv["mass_in_mask"],
            "mass_falls": bool(mass_ok), "passes": bool(rank_ok and mass_ok)}


def criterion_text(crit: dict | None) -> str:
    """One sentence stating the criterion's numbers and verdict."""
    if crit is None:
        return "Criterion: not computed (needs inverse and occlusion, mode all)."
    return (f"Criterion, all layers re-initialised: default inverse Spearman "
            f"{crit['inverse_spearman']:.3f} vs occlusion {crit['occlusion_spearman']:.3f} + {MARGIN} -> "
            f"{'ok' if crit['spearman_ok'] else 'FAILS'}; inverse mass in object {crit['mass_trained']:.3f} "
            f"(trained) -> {crit['mass_random']:.3f} (random) -> {'falls' if crit['mass_falls'] else 'DOES NOT FALL'}"
            f". Overall: {'PASS' if crit['passes'] else 'FAIL'}.")


def sanity_markdown(summary: Sequence[dict], crit: dict | None, meta: dict) -> str:
    """The summary as markdown tables (all at once; cascade), the criterion and the provenance."""
    cols = ("spearman", "ssim", "topk_iou", "mass_in_mask", "pointing_game")
    model = f" of the embedded {meta['model']}" if "model" in meta else ""
    lines = [f"Model-parameter randomisation{model} on {meta['n_images']} held-out synthetic images, "
             f"seeds {meta['seeds']} (cascade: {meta['cascade_seeds']}); each map explains its own model's predicted class. "
             "Similarities compare the trained model's map with the randomised model's (lower = the map "
             "depends more on the learned weights); mass/pointing are the randomised maps' ground-truth scores.",
             "", "All layers re-initialised at once (mean over images and seeds; +- sd over seeds):", "",
             "| method | " + " | ".join(cols) + " | mass, trained | pointing, trained | same class |",
             "|---|" + "---:|" * (len(cols) + 3)]
    get = {(r["method"], r["mode"]): r for r in summary}
    for m in dict.fromkeys(r["method"] for r in summary):
        a, t = get.get((m, "all")), get.get((m, "trained"))
        if a is None or t is None:
            continue
        cells = [f"{a[c]:.3f} ± {a[c + '_sd']:.3f}" for c in cols]
        lines.append(f"| {m} | " + " | ".join(cells) +
                     f" | {t['mass_in_mask']:.3f} | {t['pointing_game']:.3f} | {a['same_class']:.2f} |")
    lines += ["", "Cascade (top layer first), Spearman trained vs randomised after k layers:", ""]
    steps = sorted({r["step"] for r in summary if r["mode"] == "cascade"})
    layers = {r["step"]: r["layer"] for r in summary if r["mode"] == "cascade"}
    lines += ["| method | " + " | ".join(f"{k}: {layers[k]}" for k in steps) + " |",
              "|---|" + "---:|" * len(steps)]
    for m in dict.fromkeys(r["method"] for r in summary):
        c = {r["step"]: r for r in summary if r["method"] == m and r["mode"] == "cascade"}
        if c:
            lines.append(f"| {m} | " + " | ".join(f"{c[k]['spearman']:.3f}" if k in c else "" for k in steps) + " |")
    lines += ["", criterion_text(crit), "", f"Command: `{meta['command']}`", "",
              f"Commit: `{meta['git_commit']}`; checkpoint sha256 `{meta['checkpoint_sha256']}`; "
              f"device {meta['device']}, {meta['threads']} thread(s); {meta['seconds']:.0f} s this run."]
    return "\n".join(lines) + "\n"


def _key(r) -> tuple:
    return (r["method"], r["seed"], r["mode"], r["step"])


def run_sanity_checks(out: str | Path, methods: Sequence[str], n_images: int = 20, seeds: Sequence[int] = (0, 1, 2),
                      cascade_seeds: Sequence[int] | None = None, modes: Sequence[str] = ("cascade", "all"),
                      method_kwargs: dict | None = None, checkpoint: str | None = None, device: str = "cpu",
                      compute: bool = True, progress: bool = True, model: str = "smallvgg") -> SanityReport:
    """Run (or resume) the randomisation check into ``out/rows.jsonl`` and summarise it.

    Parameters
    ----------
    out : path
        Folder of ``rows.jsonl``; rows of another configuration (code, images, checkpoint,
        method settings) found there are ignored and recomputed.
    methods : sequence of str
        Names of :func:`invnb.attribution.make_method`.
    n_images : int
        Held-out images (``make_shapes(n_images, seed=HELD_OUT_SEED)``).
    seeds, cascade_seeds : sequence of int
        Re-initialisation seeds; those of `cascade_seeds` (default: all) also run the cascade.
    modes : sequence of {"cascade", "all"}
    method_kwargs : dict, optional
        ``{method: keyword arguments}``.
    checkpoint : str, optional
        The embedded model's state dict (default: the bundled one).
    device : str
    compute : bool
        False: compute nothing, summarise the rows already there.
    progress : bool
        Print a line per finished step.
    model : {"smallvgg", "smallresnet"}
        The embedded model (:func:`invnb.models.load_embedded`); rows of another model are never reused.

    Returns
    -------
    SanityReport
    """
    from invnb.models.embedded import embedded_checkpoint, load_embedded
    from invnb.runs.provenance import code_fingerprint, git_commit

    t0 = time.time()
    method_kwargs = method_kwargs or {}
    model_name = model
    model = load_embedded(model_name, checkpoint, device=torch.device(device))
    data = make_shapes(n_images, seed=HELD_OUT_SEED).to(torch.device(device))
    x = normalize(data.images)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    store = out / "rows.jsonl"
    config = {"model": model_name, "n_images": n_images, "seed_base": HELD_OUT_SEED,
              "checkpoint_sha256": sha256sum(checkpoint or embedded_checkpoint(model_name)),
              "methods": {m: method_kwargs.get(m, {}) for m in methods}, "code": code_fingerprint()}
    rows: dict[tuple, dict] = {}
    if store.is_file():
        for line in store.read_text().splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by an interruption: recomputed
                continue
            if r.get("config") == config:
                rows[_key(r)] = r

    def save(r):
        if _key(r) in rows:
            return
        rows[_key(r)] = {**r, "config": config}
        with store.open("a") as fh:
            fh.write(json.dumps(rows[_key(r)]) + "\n")
        if progress:
            print(f"{time.time() - t0:7.0f}s {r['method']:>20} seed {r['seed']} {r['mode']:>7} step {r['step']}: "
                  f"spearman {np.mean(r['spearman']):.3f}, mass {np.mean(r['mass_in_mask']):.3f}", flush=True)

    n_steps = len(parametric_layers(model))
    cascade_seeds = list(seeds if cascade_seeds is None else cascade_seeds)
    with full_precision():
        for seed in seeds if compute else ():
            todo = [m for m in modes if m == "all" or seed in cascade_seeds]
            if not todo:
                continue
            expected = {("cascade", k) for k in range(1, n_steps + 1)} if "cascade" in todo else set()
            expected |= {("all", n_steps)} if "all" in todo else set()
            for name in methods:
                have = {(k[2], k[3]) for k in rows if k[0] == name and k[1] == seed}
                if (name, None, "trained", 0) in rows and expected <= have:
                    continue
                kw = method_kwargs.get(name, {})
                randomisation_curves(model, x, data.masks, {name: lambda m, name=name, kw=kw: make_method(name, m, **kw)},
                                     seeds=[seed], modes=todo, on_row=save)
    keep = [r for r in rows.values() if r["method"] in methods and (
        r["seed"] is None or (r["seed"] in seeds and r["mode"] in modes
                              and (r["mode"] == "all" or r["seed"] in cascade_seeds)))]
    summary = randomisation_summary(keep)
    command = "python " + " ".join(shlex.quote(a) for a in [str(Path(sys.argv[0])), *sys.argv[1:]])
    meta = {"command": command, "git_commit": git_commit(), "model": model_name,
            "checkpoint_sha256": config["checkpoint_sha256"],
            "n_images": n_images, "seeds": list(seeds), "cascade_seeds": cascade_seeds, "seed_base": HELD_OUT_SEED,
            "device": device, "threads": torch.get_num_threads(), "torch": torch.__version__,
            "platform": platform.platform(), "layers": parametric_layers(model), "methods": config["methods"],
            "seconds": time.time() - t0}
    return SanityReport(summary, criterion(summary), meta)
