"""Model-parameter randomisation sanity checks (Adebayo et al., NeurIPS 2018).

A map that localises the object is an explanation of the *model* only if it
changes when the model's learned weights are destroyed. This module
re-initialises a classifier's layers and compares each method's maps on the
trained and the randomised model:

* ``cascade``: the top layer first, then the next, down to the input layer
  (step k = the k top parametric layers re-initialised);
* ``all``: every layer at once, from an independent draw.

Each layer is re-initialised with its own ``reset_parameters()`` (PyTorch's
default initialisation of that layer type) under a seeded generator, on a
deep copy: the caller's model is never changed, and the global RNG state is
restored afterwards.

Similarities (per image, trained map vs randomised map): Spearman rank
correlation, SSIM of max-normalised maps, IoU of the top 10% pixels. A
constant map (e.g. an all-zero, empty inverse) has no ranking: its Spearman
correlation with anything is defined as 0 (uncorrelated), never NaN.
Ground-truth scores of the randomised maps: :func:`invnb.eval.mass_in_mask`
and :func:`invnb.eval.pointing_game`.

Why not Quantus's ``MPRT`` (``ModelParameterRandomisation``) directly: in
Quantus 0.6.0 it explains the *same fixed label* ``y_batch`` on every
randomised model, whereas here each method explains its own model's
predicted class (what a user of a randomised model would see); it reseeds the
*global* torch RNG with the same seed before every layer; and it returns one
similarity function at a time without the ground-truth scores. Its layer
order (modules with ``reset_parameters``, top first) is the one used here,
and ``tests/eval/test_sanity.py`` checks that :func:`randomisation_curves` with
``target="trained"`` fed with Quantus's own randomised models reproduces
its Spearman scores.

Examples
--------
>>> from invnb.attribution import make_method
>>> rows = randomisation_curves(model, x, masks, methods={"sobel": lambda m: make_method("sobel", m)},
...                             seeds=(0,), modes=("all",))
>>> [(r["mode"], round(float(np.mean(r["spearman"])), 3)) for r in rows]   # an edge map ignores the model
[('trained', 1.0), ('all', 1.0)]
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
from scipy.stats import rankdata
from torch import Tensor, nn

from invnb._utils.classes import predicted_classes
from invnb.eval.localisation import mass_in_mask, pointing_game

__all__ = ["MODES", "SIMILARITIES", "parametric_layers", "randomise_layers", "cascade_models", "spearman", "ssim_maps", "topk_iou", "map_similarities", "randomisation_curves", "randomisation_summary"]


#: Randomisation modes of :func:`randomisation_curves`.
MODES = ("cascade", "all")


#: Similarity keys of :func:`map_similarities`.
SIMILARITIES = ("spearman", "ssim", "topk_iou")


# --------------------------------------------------------------------------- randomising
def parametric_layers(model: nn.Module) -> list[str]:
    """Names of the layers that own parameters and a ``reset_parameters()``, input first.

    For the embedded SmallVGG (BatchNorm folded): the 6 convolutions
    ``features.*`` and the 3 linear layers ``classifier.*``. The order is
    ``model.named_modules()``'s (the forward order for sequential models),
    the order Quantus's randomisation also uses.
    """
    names = [n for n, m in model.named_modules()
             if n and hasattr(m, "reset_parameters") and any(True for _ in m.parameters(recurse=False))]
    if not names:
        raise ValueError("the model has no layer with parameters and a reset_parameters() method to randomise.")
    return names


def _layer_seed(seed: int, position: int) -> int:
    """A torch seed for (seed, layer position), far from small seeds a model may have been built with."""
    return int(np.random.SeedSequence([int(seed), int(position), 0x5A17]).generate_state(1)[0])


def randomise_layers(model: nn.Module, layers: Sequence[str], seed: int, base: nn.Module | None = None) -> nn.Module:
    """Deep copy of ``model`` (or of ``base``) with ``layers`` re-initialised by ``reset_parameters()``.

    Parameters
    ----------
    model : nn.Module
        The trained model (unchanged).
    layers : sequence of str
        Qualified module names to re-initialise, in the order given.
    seed : int
        Seed of the re-initialisation; layer ``name`` is reset under
        ``torch.manual_seed`` of a value derived from ``seed`` and the
        layer's position (through ``numpy.random.SeedSequence``) in :func:`parametric_layers`, so a layer gets the
        same random weights whatever else is randomised with it.
    base : nn.Module, optional
        Copy this model instead of ``model`` (to continue a cascade).

    Returns
    -------
    nn.Module
        A new model in eval mode, on ``model``'s device. The global RNG
        state is left as it was.
    """
    order = parametric_layers(model)
    unknown = [n for n in layers if n not in order]
    if unknown:
        raise ValueError(f"unknown or parameter-free layers {unknown}; choose from {order}.")
    src = base if base is not None else model
    device = next(src.parameters()).device
    # Draw on the CPU so that a seed gives the same weights on every device.
    out = copy.deepcopy(src).cpu()
    named = dict(out.named_modules())
    with torch.random.fork_rng(devices=[]):
        for name in layers:
            torch.manual_seed(_layer_seed(seed, order.index(name)))
            with torch.no_grad():
                named[name].reset_parameters()
    out = out.to(device)
    return out.eval()


def cascade_models(model: nn.Module, seed: int = 0) -> Iterator[tuple[str, nn.Module]]:
    """Cascading randomisation: yield ``(layer, model)`` with the top layer first, then the next, ...

    The k-th model yielded has the k top parametric layers re-initialised
    (``layer`` is the one added at that step); the last has every layer
    re-initialised. Each model is a separate copy.
    """
    current = model
    for name in reversed(parametric_layers(model)):
        current = randomise_layers(model, [name], seed, base=current)
        yield name, current


# --------------------------------------------------------------------------- similarities
def _flat(a) -> np.ndarray:
    a = a.detach().cpu().double().numpy() if isinstance(a, Tensor) else np.asarray(a, dtype=np.float64)
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 3:
        raise ValueError(f"maps must be (N, H, W) or (N, 1, H, W), got shape {a.shape}.")
    if not np.isfinite(a).all():
        raise ValueError("maps contain NaN or inf values.")
    return a.reshape(a.shape[0], -1)


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    fa, fb = _flat(a), _flat(b)
    if fa.shape != fb.shape:
        raise ValueError(f"maps must have the same shape, got {tuple(np.shape(a))} and {tuple(np.shape(b))}.")
    return fa, fb


def spearman(a, b) -> np.ndarray:
    """Spearman rank correlation of each pair of maps, (N,) in [-1, 1].

    Ties get average ranks (as ``scipy.stats.spearmanr``). Where either map is
    constant (e.g. an all-zero map) the correlation is undefined; it is
    returned as 0 (uncorrelated), never NaN.
    """
    fa, fb = _pair(a, b)
    ra, rb = rankdata(fa, axis=1), rankdata(fb, axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    den = np.sqrt((ra ** 2).sum(1) * (rb ** 2).sum(1))
    ok = den > 0
    out = np.zeros(fa.shape[0])
    out[ok] = (ra * rb).sum(1)[ok] / den[ok]
    return out


def _max_normalise(f: np.ndarray) -> np.ndarray:
    f = np.abs(f)
    peak = f.max(axis=1, keepdims=True)
    return np.where(peak > 0, f / np.where(peak > 0, peak, 1.0), 0.0)


def ssim_maps(a, b) -> np.ndarray:
    """SSIM of each pair of maps after ``|a| / max |a|`` (data range 1), (N,).

    ``skimage.metrics.structural_similarity`` with its default 7 x 7 window.
    Two all-zero maps score 1; an all-zero map against a non-zero one scores
    near 0.
    """
    from skimage.metrics import structural_similarity

    shape = (_flat(a).shape[0], *np.shape(a)[-2:])
    fa, fb = _pair(a, b)
    na, nb = _max_normalise(fa).reshape(shape), _max_normalise(fb).reshape(shape)
    return np.array([structural_similarity(p, q, data_range=1.0) for p, q in zip(na, nb)])


def topk_iou(a, b, fraction: float = 0.1) -> np.ndarray:
    """IoU of the top ``fraction`` pixels of each pair of maps, (N,) in [0, 1].

    Pixels are ranked by value with a stable sort (ties broken by position,
    so a constant map's "top" is an arbitrary raster block, not the object).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}.")
    fa, fb = _pair(a, b)
    k = max(1, int(round(fraction * fa.shape[1])))
    out = np.empty(fa.shape[0])
    for i, (p, q) in enumerate(zip(fa, fb)):
        sa = set(np.argsort(-p, kind="stable")[:k].tolist())
        sb = set(np.argsort(-q, kind="stable")[:k].tolist())
        out[i] = len(sa & sb) / len(sa | sb)
    return out


def map_similarities(a, b, fraction: float = 0.1) -> dict[str, np.ndarray]:
    """``{"spearman", "ssim", "topk_iou"}`` of each pair of (N, H, W) maps, each (N,)."""
    return {"spearman": spearman(a, b), "ssim": ssim_maps(a, b), "topk_iou": topk_iou(a, b, fraction)}


# --------------------------------------------------------------------------- the test
MethodFactory = Callable[[nn.Module], object]


def _explain(factory: MethodFactory, model: nn.Module, x: Tensor, target) -> Tensor:
    return factory(model).attribute(x, target=target).detach().float()


def _scores(maps: Tensor, masks: Tensor) -> dict[str, np.ndarray]:
    return {"mass_in_mask": mass_in_mask(maps, masks).cpu().numpy(),
            "pointing_game": pointing_game(maps, masks).cpu().numpy()}


def randomisation_curves(
    model: nn.Module,
    x: Tensor,
    masks: Tensor,
    methods: Mapping[str, MethodFactory],
    seeds: Iterable[int] = (0, 1, 2),
    modes: Sequence[str] = MODES,
    target: str = "own",
    fraction: float = 0.1,
    models: Callable[[nn.Module, int], Iterable[tuple[str, nn.Module]]] | None = None,
    on_row: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Run the randomisation test for every method; one row per (method, seed, mode, step).

    Parameters
    ----------
    model : nn.Module
        Trained classifier in eval mode (never changed).
    x : Tensor
        (N, C, H, W) images in the model's input space.
    masks : Tensor
        (N, H, W) bool object masks (ground truth).
    methods : mapping of str to callable
        ``name -> factory(model)`` returning an object with
        ``.attribute(x, target) -> (N, H, W)`` (e.g.
        ``lambda m: invnb.attribution.make_method(name, m)``). A method is
        rebuilt for every randomised model.
    seeds : iterable of int
        Seeds of the re-initialisation.
    modes : sequence of {"cascade", "all"}
        Cascading (top layer first) and/or all layers at once.
    target : {"own", "trained"}
        ``"own"``: each model's maps explain that model's predicted class;
        ``"trained"``: every model explains the trained model's predicted
        class (Quantus's MPRT convention).
    fraction : float
        Top share of pixels for ``topk_iou``.
    models : callable, optional
        ``models(model, seed) -> iterable of (layer, model)`` replacing
        :func:`cascade_models` for the cascade (e.g. Quantus's generator).
    on_row : callable, optional
        Called with each row as soon as it is computed (progress, saving).

    Returns
    -------
    list of dict
        Rows with ``method, seed, mode, step`` (0 = trained model, k = k
        layers re-initialised; ``all``: step = number of layers), ``layer``
        (last layer re-initialised; "none" for step 0), ``same_class``
        (share of images whose predicted class is unchanged), and per image
        (lists of N floats) ``spearman, ssim, topk_iou, mass_in_mask,
        pointing_game``. Step-0 rows (once per method, ``seed`` None)
        compare the trained maps with themselves.
    """
    if target not in ("own", "trained"):
        raise ValueError(f"target must be 'own' or 'trained', got {target!r}.")
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise ValueError(f"unknown modes {bad}; choose from {MODES}.")
    if not methods:
        raise ValueError("methods is empty: pass at least one name -> factory(model).")
    x = x.detach()
    masks = masks.to(x.device)
    layers = parametric_layers(model)
    trained_cls = predicted_classes(model, x)
    rows: list[dict] = []

    def emit(row: dict) -> None:
        rows.append(row)
        if on_row is not None:
            on_row(row)

    def row(name, seed, mode, step, layer, rmodel, maps, ref):
        cls = predicted_classes(rmodel, x)
        out = {"method": name, "seed": seed, "mode": mode, "step": step, "layer": layer,
               "same_class": float((cls == trained_cls).float().mean())}
        for k, v in {**map_similarities(ref, maps, fraction), **_scores(maps, masks)}.items():
            out[k] = [float(t) for t in v]
        return out

    trained_maps = {}
    for name, factory in methods.items():
        ref = _explain(factory, model, x, trained_cls if target == "trained" else None)
        trained_maps[name] = ref
        emit(row(name, None, "trained", 0, "none", model, ref, ref))
    for seed in seeds:
        if "cascade" in modes:
            gen = models(model, seed) if models is not None else cascade_models(model, seed)
            for k, (layer, rmodel) in enumerate(gen, start=1):
                for name, factory in methods.items():
                    tgt = trained_cls if target == "trained" else None
                    emit(row(name, seed, "cascade", k, layer, rmodel,
                             _explain(factory, rmodel, x, tgt), trained_maps[name]))
        if "all" in modes:
            # An independent draw: a seed stream disjoint from the cascade's.
            rmodel = randomise_layers(model, layers, seed=10_000 + int(seed))
            for name, factory in methods.items():
                tgt = trained_cls if target == "trained" else None
                emit(row(name, seed, "all", len(layers), "all", rmodel,
                         _explain(factory, rmodel, x, tgt), trained_maps[name]))
    return rows


# --------------------------------------------------------------------------- summaries
SCORES = SIMILARITIES + ("mass_in_mask", "pointing_game")


def randomisation_summary(rows: Sequence[Mapping]) -> list[dict]:
    """Mean over images and seeds of every score, one row per (method, mode, step).

    Returns rows with ``method, mode, step, layer, n_seeds, same_class`` and,
    per score, its mean and ``<score>_sd`` (standard deviation over seeds of
    the per-seed image means; 0 for the trained step).
    """
    groups: dict[tuple, list[Mapping]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["mode"], r["step"]), []).append(r)
    out = []
    for (method, mode, step), rs in groups.items():
        s = {"method": method, "mode": mode, "step": step, "layer": rs[0]["layer"], "n_seeds": len(rs),
             "same_class": float(np.mean([r["same_class"] for r in rs]))}
        for k in SCORES:
            per_seed = [float(np.mean(r[k])) for r in rs]
            s[k] = float(np.mean(per_seed))
            s[f"{k}_sd"] = float(np.std(per_seed))
        out.append(s)
    return out
