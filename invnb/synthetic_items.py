"""Picklable items of the synthetic benchmark, for :func:`invnb.runs.run_items` on a cluster.

One item is one attribution method on one batch of held-out synthetic images:
its maps, deletion / insertion AUCs and pointing game. Everything an item
needs travels as its key (``<method>-b<batch>``) and a few numbers; a worker
loads the embedded model once (:func:`invnb.runs.worker_cached`) and generates
its batch from the batch's seed, so items are independent of where they run.

Examples
--------
>>> task = benchmark_task(n_images=8, batch_size=4)                                   # doctest: +SKIP
>>> run_items(benchmark_keys(["saliency"], 8, 4), task, store, executor=ex)           # doctest: +SKIP
"""

from __future__ import annotations

import math

from .runs import ItemTask, worker_cached
from .synthetic import HELD_OUT_SEED

__all__ = ["SEED_BASE", "benchmark_keys", "benchmark_task", "evaluate_batch"]

SEED_BASE = HELD_OUT_SEED  # the held-out images (invnb.synthetic)


def benchmark_keys(methods: list[str], n_images: int, batch_size: int) -> list[str]:
    """Item keys ``<method>-b<batch:03d>`` covering ``n_images`` in batches of ``batch_size``."""
    if n_images < 1 or batch_size < 1:
        raise ValueError(f"n_images and batch_size must be >= 1, got {n_images}, {batch_size}")
    return [f"{m}-b{b:03d}" for m in methods for b in range(math.ceil(n_images / batch_size))]


def benchmark_task(n_images: int, batch_size: int, step: int = 128, checkpoint: str | None = None,
                   method_kwargs: dict | None = None) -> ItemTask:
    """The :class:`~invnb.runs.ItemTask` computing :func:`evaluate_batch` for keys of :func:`benchmark_keys`."""
    return ItemTask(evaluate_batch, {"n_images": n_images, "batch_size": batch_size, "step": step,
                                     "checkpoint": checkpoint, "method_kwargs": method_kwargs or {}})


def _model(checkpoint: str | None):
    from .models import load_embedded_model

    return load_embedded_model(checkpoint, device="cpu")


def evaluate_batch(key: str, n_images: int, batch_size: int, step: int = 128, checkpoint: str | None = None,
                   method_kwargs: dict | None = None) -> dict:
    """Scores of one method on one batch (CPU).

    Parameters
    ----------
    key : str
        ``<method>-b<batch>``, e.g. ``"saliency-b001"``.
    n_images, batch_size : int
        The benchmark's size; batch ``b`` holds images ``b*batch_size`` .. (seed ``SEED_BASE + b``).
    step : int
        Pixels per deletion / insertion step.
    checkpoint : str, optional
        Embedded model file (default: the bundled one).
    method_kwargs : dict, optional
        ``{method: kwargs}`` passed to :func:`invnb.baselines.make_method`.

    Returns
    -------
    dict
        Per-image arrays (n,): ``deletion_auc``, ``insertion_auc``, ``pointing_game``,
        ``classes``, ``labels``; ``attributions`` (n, 64, 64); scalar ``n``.
    """
    from .baselines import make_method
    from .metrics import deletion_curve, insertion_curve, pointing_game, predicted_classes
    from .synthetic import make_shapes, normalize

    name, _, b = key.rpartition("-b")
    if not name or not b.isdigit():
        raise ValueError(f"bad item key {key!r}: expected '<method>-b<batch>', e.g. 'saliency-b000'")
    b = int(b)
    n = min(batch_size, n_images - b * batch_size)
    if n < 1:
        raise ValueError(f"item {key!r}: batch {b} is past the {n_images} images")
    model = worker_cached(_model, checkpoint)
    data = make_shapes(n, seed=SEED_BASE + b)
    x = normalize(data.images)
    classes = predicted_classes(model, x)
    method = make_method(name, model, **(method_kwargs or {}).get(name, {}))
    if hasattr(method, "inverse"):
        maps = method.inverse.invert(x, target=classes).attribution
    else:
        maps = method.attribute(x, target=classes)
    maps = maps.detach().float().nan_to_num(0.0)
    return {
        "attributions": maps,
        "deletion_auc": deletion_curve(model, x, maps, target=classes, step=step).auc,
        "insertion_auc": insertion_curve(model, x, maps, target=classes, step=step).auc,
        "pointing_game": pointing_game(maps, data.masks),
        "classes": classes, "labels": data.labels, "n": n,
    }
