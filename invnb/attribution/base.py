"""The common base of every attribution method and the registry of methods by name."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from invnb._utils.checks import check_images, chunks
from invnb._utils.classes import resolve_classes

__all__ = ["AttributionMethod", "Explanation", "available_methods", "make_method", "register"]


@dataclass
class Explanation:
    """What a method says about a batch: its map and, where it has one, its own kept input.

    Attributes
    ----------
    attribution : Tensor
        ``(N, H, W)`` float, non-negative: the method's map (raw; the inverse's is max-normalised).
    kept : Tensor or None
        ``(N, C, H, W)``: the input the method itself keeps as its explanation (the inverse
        input of the layer-wise inverse, ``x`` times the chosen mask of extremal
        perturbation); None for a method that only makes a map.
    failed : Tensor
        ``(N,)`` bool: the method found no explanation for that image (an inverse that
        vanished or blew up); always False for map-only methods.
    extra : dict of str to Tensor
        ``(N,)`` per-image choices a method made (``chosen_mask_weight``, ``chosen_area``).
    postprocessed : bool
        The map has already been clipped, weighted and filled as the default inverse's
        (:func:`invnb.inverse.postprocess_map`); a benchmark then does not apply that again.
    """

    attribution: Tensor
    kept: Tensor | None = None
    failed: Tensor | None = None
    extra: dict = field(default_factory=dict)
    postprocessed: bool = False

    def __post_init__(self):
        if self.failed is None:
            self.failed = torch.zeros(len(self.attribution), dtype=torch.bool, device=self.attribution.device)


class AttributionMethod:
    """Base class: one call shape for every attribution method.

    Parameters
    ----------
    model : nn.Module
        Classifier (N, C, H, W) -> logits (N, K), in eval mode.
    batch_size : int, optional
        Images per call of the underlying method (all at once when None).

    Notes
    -----
    Subclasses implement ``_attribute(x, classes) -> (B, H, W)`` for one
    batch of images and their (B,) long classes.
    """

    name = "base"

    def __init__(self, model: nn.Module, batch_size: int | None = None):
        if batch_size is not None and (not isinstance(batch_size, numbers.Integral) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}.")
        self.model = model
        self.batch_size = batch_size

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    def attribute(self, x: Tensor, target=None) -> Tensor:
        """Attribution map for each image.

        Parameters
        ----------
        x : Tensor
            Images, (N, C, H, W), in the model's (normalised) input space.
        target : None, int, sequence of int or Tensor
            Class to explain: None for the predicted class, an int for all
            images, or N ints.

        Returns
        -------
        Tensor
            (N, H, W) float, non-negative, raw (not normalised), on ``x.device``.
        """
        check_images(x)
        x = x.detach()
        classes = resolve_classes(self.model, x, target, self.batch_size)
        parts = [self._attribute(x[s], classes[s]) for s in chunks(x.shape[0], self.batch_size)]
        out = torch.cat(parts).detach()
        return out.to(x.device)

    def explain(self, x: Tensor, target=None) -> Explanation:
        """The map of :meth:`attribute` and, for a method that has one, its own kept input.

        Parameters and target as :meth:`attribute`. Subclasses with a kept input
        (the inverse, extremal perturbation) override this; the rest return their
        map with ``kept=None``.
        """
        return Explanation(self.attribute(x, target))

    def _attribute(self, x: Tensor, classes: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


_REGISTRY: dict[str, Callable[..., AttributionMethod]] = {}


def register(name: str) -> Callable:
    """Decorator: make a method class (or factory ``(model, **kw) -> AttributionMethod``) available by `name`.

    The table order of :func:`available_methods` is the order of registration
    (the modules of :mod:`invnb.attribution` are imported in table order).
    """
    def decorate(factory):
        if name in _REGISTRY:
            raise ValueError(f"attribution method {name!r} is registered twice")
        _REGISTRY[name] = factory
        return factory

    return decorate


def available_methods() -> list[str]:
    """Names accepted by :func:`make_method`, in table order."""
    return list(_REGISTRY)


def make_method(name: str, model: nn.Module, **kw) -> AttributionMethod:
    """Build an attribution method by name.

    Parameters
    ----------
    name : str
        One of :func:`available_methods`.
    model : nn.Module
        Classifier in eval mode.
    **kw
        Passed to the method's constructor (e.g. ``batch_size``, ``n_masks``,
        ``seed``, ``layer``, ``mask_weight``).

    Returns
    -------
    AttributionMethod
        An object with ``.name`` and ``.attribute(x, target) -> (N, H, W)``.

    Examples
    --------
    >>> methods = {n: make_method(n, model) for n in ("saliency", "rise", "sobel")}
    >>> maps = {n: m.attribute(x) for n, m in methods.items()}
    """
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; choose one of {available_methods()}.") from None
    return factory(model, **kw)
