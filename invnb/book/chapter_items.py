"""The chapters' item functions, picklable for :func:`invnb.runs.run_items` on a cluster.

Chapters 01-03 compute their stored items with these module-level functions,
wrapped as :class:`invnb.runs.ItemTask`: everything an item reads travels as
its key and small keyword arguments (a model name or weights path, a data
description, options), and the process computing it (the kernel in the serial
default, or a Dask worker) loads the model and data once through
:func:`invnb.runs.worker_cached`.

========================  ===========  ==========================================
function                  chapter      one item
========================  ===========  ==========================================
:func:`reid_item`         01           one inverse setting on one batch of images
:func:`tradeoff_item`     02           one method on one batch of images
:func:`vdsr_item`         03           one SR image inverted through VDSR
========================  ===========  ==========================================

Examples
--------
>>> task = ItemTask(tradeoff_item, dict(model_name="embedded", n_images=4, seed=2025, batch_size=2, ...))  # doctest: +SKIP
>>> run_items(["saliency-b0", "saliency-b2"], task, store)                                                # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from invnb.runs.tasks import worker_cached

__all__ = ["EMBEDDED_NAMES", "classifier", "image_batch", "reid_item", "tradeoff_item", "vdsr_model", "sr_samples", "vdsr_item"]


#: Chapter model names that mean an embedded shape classifier (``"embedded"`` is the SmallVGG).
EMBEDDED_NAMES = {"embedded": "smallvgg", "smallvgg": "smallvgg", "smallresnet": "smallresnet"}


def classifier(model_name: str, checkpoint: str | None, vgg_weights: Any, device: str) -> torch.nn.Module:
    """The chapters' classifier: an embedded shape classifier (``model_name`` ``"embedded"`` or
    ``"smallvgg"``: the SmallVGG; ``"smallresnet"``: the SmallResNet, :func:`invnb.models.load_embedded`)
    or a torchvision VGG or ResNet (:data:`invnb.models.IMAGENET_NAMES`, weights `vgg_weights`)."""
    from invnb.models.embedded import load_embedded
    from invnb.models.resnet import load_imagenet_classifier

    if model_name in EMBEDDED_NAMES:
        return load_embedded(EMBEDDED_NAMES[model_name], None if checkpoint is None else Path(checkpoint), device=device)
    return load_imagenet_classifier(model_name, weights=vgg_weights, device=device)


def _shapes(n_images: int, seed: int):
    from invnb.datasets.synthetic import make_shapes, normalize

    data = make_shapes(n_images, seed=seed)
    return normalize(data.images), data.masks


def _imagenet(imagenet_dir: str, labels_file: str, start: int, end: int, stride: int):
    from invnb.datasets.imagenet import ImageNetVal

    return ImageNetVal(imagenet_dir, labels_file, start=start, end=end, stride=stride)


def image_batch(first: int, batch_size: int, *, model_name: str, n_images: int, seed: int,
                imagenet_dir: str | None, labels_file: str | None, start: int, end: int, stride: int,
                device: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Images ``first`` .. ``first + batch_size - 1`` (fewer at the end), normalised, on ``device``.

    Returns
    -------
    x : torch.Tensor
        ``(n, 3, H, W)``: generated shapes (64x64) for the embedded model, else
        ImageNet validation images ``range(start, end, stride)`` (224x224).
    masks : torch.Tensor or None
        ``(n, H, W)`` bool object masks of the shapes; None for ImageNet.
    """
    if model_name in EMBEDDED_NAMES:
        x_all, masks_all = worker_cached(_shapes, n_images, seed)
        if not 0 <= first < len(x_all):
            raise ValueError(f"batch start {first} is outside the {len(x_all)} images")
        return x_all[first:first + batch_size].to(device), masks_all[first:first + batch_size].to(device)
    if imagenet_dir is None or labels_file is None:
        raise ValueError(f"model {model_name!r} needs imagenet_dir and labels_file (ImageNet validation images)")
    images = worker_cached(_imagenet, str(imagenet_dir), str(labels_file), start, end, stride)
    if not 0 <= first < len(images):
        raise ValueError(f"batch start {first} is outside the {len(images)} images")
    last = min(first + batch_size, len(images))
    return torch.stack([images[i][0] for i in range(first, last)]).to(device), None


def _with_stack(model_name: str, checkpoint: str | None, vgg_weights: Any, device: str):
    """The cached :func:`classifier` and its :class:`~invnb.inverse.LayerStack`."""
    from invnb.inverse.layers import LayerStack

    model = worker_cached(classifier, model_name, checkpoint, vgg_weights, device)
    return model, LayerStack(model)


def _split_key(key: str, sep: str) -> tuple[str, int]:
    name, found, first = key.rpartition(sep)
    if not found or not first.isdigit():
        raise ValueError(f"bad item key {key!r}: expected '<name>{sep}<first image>', e.g. 'saliency{sep}0'")
    return name, int(first)


def reid_item(key: str, *, setting: str, mask_weight: float | None, batch_size: int, model_name: str,
              checkpoint: str | None = None, vgg_weights: Any = None, n_images: int = 0, seed: int = 0,
              imagenet_dir: str | None = None, labels_file: str | None = None, start: int = 1,
              end: int = 50001, stride: int = 10, device: str = "cpu") -> dict:
    """Chapter 01: re-identification through the layers of one inverse setting on one batch.

    Parameters
    ----------
    key : str
        ``batch<first:06d>``, e.g. ``"batch000008"``: images ``first`` .. ``first + batch_size - 1``.
    setting : str
        A named setting of the inverse (:mod:`invnb.inverse.settings`: ``"default"``, ``"paper"``).
    mask_weight : float, optional
        Overrides the setting's own.
    batch_size, model_name, checkpoint, vgg_weights, n_images, seed, imagenet_dir, labels_file, start, end, stride, device
        The chapter's parameters (see :func:`image_batch`, :func:`classifier`).

    Returns
    -------
    dict
        ``hits`` (n_layers, 2, n) bool (top-1 / top-5 re-identified), ``hits_rescaled`` the same
        with each inverse feature rescaled to the norm of the forward activation it replaces
        (this separates what the inverse keeps from how weak it is), ``layers`` (n_layers,),
        ``failed`` (n,), ``classes`` (n,), ``amount`` (n,) amount of activation.
    """
    from invnb.eval.reid import amount_of_activation, reid_rates
    from invnb.inverse.engine import LayerwiseInverse
    from invnb.inverse.settings import setting_kwargs

    if not key.startswith("batch") or not key[5:].isdigit():
        raise ValueError(f"bad item key {key!r}: expected 'batch<first image, 6 digits>', e.g. 'batch000008'")
    setting_kwargs(setting)  # an unknown name fails here, before any work
    model, stack = worker_cached(_with_stack, model_name, checkpoint, vgg_weights, device)
    x, _ = image_batch(int(key[5:]), batch_size, model_name=model_name, n_images=n_images, seed=seed,
                       imagenet_dir=imagenet_dir, labels_file=labels_file, start=start, end=end, stride=stride,
                       device=device)
    kwargs = {} if mask_weight is None else {"mask_weight": float(mask_weight)}
    inverse = LayerwiseInverse.from_setting(model, setting, **kwargs)
    res = inverse.invert(x)
    reid = reid_rates(stack, res.features, res.classes, failed=res.failed)
    acts = stack.record(x)
    rescaled = [None if t is None else
                t * (a.flatten(1).norm(dim=1) / t.flatten(1).norm(dim=1).clamp_min(1e-12)).view(-1, *[1] * (t.dim() - 1))
                for t, a in zip(res.features, acts)]
    reid_rescaled = reid_rates(stack, rescaled, res.classes, layers=reid.layers, failed=res.failed)
    return {"hits": reid.hits, "hits_rescaled": reid_rescaled.hits, "layers": torch.tensor(reid.layers),
            "failed": res.failed,
            "classes": res.classes, "amount": amount_of_activation(res.input, x)}


def _explain(name: str, model, method_options: dict, x: torch.Tensor, classes: torch.Tensor):
    """The map and, where the method has one, its own kept input and failures (None otherwise)."""
    from invnb.attribution.base import make_method

    exp = make_method(name, model, **method_options.get(name, {})).explain(x, target=classes)
    if exp.kept is None:
        return exp.attribution, None, None
    return exp.attribution, exp.kept, exp.failed


def tradeoff_item(key: str, *, batch_size: int, method_options: dict, mask_weights: list, fractions: list,
                  exponents: list, deletion_step: int | None, tie_orders: int, model_name: str,
                  checkpoint: str | None = None, vgg_weights: Any = None, n_images: int = 0, seed: int = 0,
                  imagenet_dir: str | None = None, labels_file: str | None = None, start: int = 1,
                  end: int = 50001, stride: int = 10, device: str = "cpu") -> dict:
    """Chapter 02: one method on one batch: its scores, deletion / insertion curves and trade-off rows.

    Parameters
    ----------
    key : str
        ``<method>-b<first image>``, e.g. ``"saliency-b8"``; the method ``inverse``,
        ``inverse_paper`` or a name of :func:`invnb.attribution.make_method`.
    batch_size, method_options, mask_weights, fractions, exponents, deletion_step, tie_orders
        The chapter's parameters (``method_options``: ``{method: kwargs}``).
    model_name, checkpoint, vgg_weights, n_images, seed, imagenet_dir, labels_file, start, end, stride, device
        The model and images (see :func:`classifier`, :func:`image_batch`).

    Returns
    -------
    dict
        ``deletion`` / ``insertion`` (n, steps) scores, their ``*_auc`` (n,), ``fractions`` (steps,);
        with object masks ``pointing_game`` and ``mass_in_mask`` (n,); ``rows``: the trade-off rows as JSON.
    """
    from invnb.eval.causal import deletion_curve, insertion_curve
    from invnb.eval.localisation import POINTING_RTOL, mass_in_mask, pointing_game
    from invnb.eval.tradeoff import inverse_tradeoff, kept_input_scores, map_tradeoff

    name, first = _split_key(key, "-b")
    model = worker_cached(classifier, model_name, checkpoint, vgg_weights, device)
    x, masks = image_batch(first, batch_size, model_name=model_name, n_images=n_images, seed=seed,
                           imagenet_dir=imagenet_dir, labels_file=labels_file, start=start, end=end,
                           stride=stride, device=device)
    with torch.no_grad():
        classes = model(x).argmax(1)
    maps, kept, failed = _explain(name, model, method_options, x, classes)
    maps = torch.nan_to_num(maps.float())
    curve = {"target": classes, "step": deletion_step, "tie_orders": tie_orders, "seed": 0}
    deletion = deletion_curve(model, x, maps, **curve)
    insertion = insertion_curve(model, x, maps, **curve)
    out = {"deletion": deletion.scores, "insertion": insertion.scores, "deletion_auc": deletion.auc,
           "insertion_auc": insertion.auc, "fractions": deletion.fractions}
    if masks is not None:
        out["pointing_game"] = pointing_game(maps, masks, rtol=POINTING_RTOL)
        out["mass_in_mask"] = mass_in_mask(maps, masks)
    rows = [r for r in map_tradeoff(model, x, maps, name, classes, fractions=fractions, exponents=exponents)
            if not (name == "uniform" and r["mode"] == "soft")]
    if kept is not None:  # the method's own kept input: one point
        s = kept_input_scores(model, kept, x, classes)
        rows.append({"method": name, "mode": "own", "param_name": "", "param": float("nan"), "n_images": len(x),
                     "amount": float(s["amount"].mean()), "reid_top1": float((s["top1"] & ~failed).float().mean())})
    if name == "inverse":  # its own sweep of fixed mask_weight values
        rows += inverse_tradeoff(model, x, mask_weights, classes, method="inverse (sweep)")
    if masks is not None and name == "inverse":  # the object itself, x * mask
        s = kept_input_scores(model, x * masks.unsqueeze(1).to(x.dtype), x, classes)
        rows.append({"method": "object (x * mask)", "mode": "object", "param_name": "", "param": float("nan"),
                     "n_images": len(x), "amount": float(s["amount"].mean()),
                     "reid_top1": float(s["top1"].float().mean())})
    out["rows"] = json.dumps(rows)
    return out


def vdsr_model(weights: str | None, device: str) -> torch.nn.Module:
    """VDSR with the paper's weights file ``weights``, or the embedded one (``weights=None``)."""
    from invnb.models.vdsr import load_embedded_vdsr, load_vdsr

    return load_embedded_vdsr(map_location=device) if weights is None else load_vdsr(weights, map_location=device)


def sr_samples(root: str | None, datasets: list[str], scales: list[int], n_per_dataset: int | None,
               crop: int | None) -> dict:
    """Chapter 03's images by key ``<dataset>-x<scale>-<name>``: ``root/sr/<dataset>`` or, with ``root=None``, the embedded set.

    Each sample is centre-cropped to ``crop`` pixels (None: whole images).
    """
    from invnb.sr.analysis import center_crop
    from invnb.sr.datasets import load_embedded_sr_set, load_sr_folder

    samples = {}
    for dataset in (["embedded"] if root is None else datasets):
        for scale in scales:
            found = (load_embedded_sr_set(scale, limit=n_per_dataset) if root is None
                     else load_sr_folder(Path(root) / "sr" / dataset, scale, limit=n_per_dataset))
            for sample in found:
                samples[f"{dataset}-x{scale}-{sample.name}"] = center_crop(sample, crop) if crop else sample
    return samples


def _vdsr_inverse(weights: str | None, device: str, setting: str, mask_weight: float | None):
    from invnb.inverse.engine import LayerwiseInverse

    model = worker_cached(vdsr_model, weights, device)
    kwargs = {} if mask_weight is None else {"mask_weight": float(mask_weight)}
    return LayerwiseInverse.from_setting(model, setting, **kwargs)


def vdsr_item(key: str, *, weights: str | None, root: str | None, datasets: list[str], scales: list[int],
              n_per_dataset: int | None, crop: int | None, setting: str, mask_weight: float | None,
              device: str = "cpu") -> dict:
    """Chapter 03: one SR image inverted through VDSR, with its dA-dE table and amount.

    Parameters
    ----------
    key : str
        ``<dataset>-x<scale>-<name>``, one of :func:`sr_samples`'s keys.
    weights : str, optional
        The paper's VDSR weights file; None: the embedded VDSR (``root`` must be None too).
    root, datasets, scales, n_per_dataset, crop
        The images (see :func:`sr_samples`).
    setting, mask_weight
        The inverse (:func:`invnb.sr.vdsr_inverse`).

    Returns
    -------
    dict
        ``x``, ``x_hat``, ``y``, ``y_hat``, ``gt`` (H, W) arrays; scalars ``amount``, ``seconds``,
        ``failed``, ``scale`` and ``psnr_<pair>``, ``ssim_<pair>``, ``mse_<pair>`` for dA .. dE.
    """
    from invnb.sr.analysis import invert_sample

    samples = worker_cached(sr_samples, root, list(datasets), list(scales), n_per_dataset, crop)
    if key not in samples:
        raise ValueError(f"no SR image {key!r}; known: {', '.join(samples) or 'none'}")
    model = worker_cached(vdsr_model, weights, device)
    inverse = worker_cached(_vdsr_inverse, weights, device, setting, mask_weight)
    r = invert_sample(model, samples[key], inverse)
    out = {"x": r.x, "x_hat": r.x_hat, "y": r.y, "y_hat": r.y_hat, "gt": r.gt,
           "amount": r.amount, "seconds": r.seconds, "failed": r.failed, "scale": r.scale}
    for measure in ("psnr", "ssim", "mse"):
        out.update({f"{measure}_{pair}": v for pair, v in getattr(r.table, measure).items()})
    return out
