"""What an inversion returns: every layer's inverse feature, the map, and the solvers' statistics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch

__all__ = ["LayerStats", "InverseResult"]


@dataclass
class LayerStats:
    """What one solved layer cost. Tensors are ``(N,)``."""

    index: int
    name: str
    iterations: torch.Tensor
    cost: torch.Tensor
    seconds: float
    #: ``(N,)`` iterations summed over every walk that solved the layer for the image (the
    #: candidates of ``mask_weight="auto"``); None: one walk, ``iterations``.
    iterations_total: Optional[torch.Tensor] = None


@dataclass
class InverseResult:
    """Inverse features of every layer for a batch.

    Attributes
    ----------
    features : list of torch.Tensor
        ``len(stack) + 1`` tensors; ``features[k]`` is the inverse of the input
        of layer ``k`` (shaped like it), ``features[-1]`` the top target.
    attribution : torch.Tensor
        ``(N, H, W)`` in [0, 1] (`attribution_map` of the inverse input).
    classes : torch.Tensor or None
        ``(N,)`` explained classes, None for an output-tensor target.
    failed : torch.Tensor
        ``(N,)`` bool: a layer's inverse was NaN or all zero for that sample.
    stats : list of LayerStats
        One entry per optimised layer, top first; with ``output_fit``, the
        output fit's last (index -1, name ``"output_fit"``).
    mask_weight : torch.Tensor or None
        ``(N,)`` the ``mask_weight`` used per image (the chosen candidate with
        ``mask_weight="auto"``, else the fixed weight).
    kept_class : torch.Tensor or None
        With ``mask_weight="auto"``: ``(N,)`` bool, the model gives the
        explained class on the chosen inverse input. False where no candidate
        kept it: that image got the smallest candidate (and may be `failed`).
        None for a fixed weight.
    candidates_tried : torch.Tensor or None
        ``(N,)`` how many ``mask_weight`` candidates were walked for each image
        (1 for a fixed weight).
    """

    features: list
    attribution: Optional[torch.Tensor]
    classes: Optional[torch.Tensor]
    failed: torch.Tensor
    stats: list = field(default_factory=list)
    mask_weight: Optional[torch.Tensor] = None
    kept_class: Optional[torch.Tensor] = None
    candidates_tried: Optional[torch.Tensor] = None

    @property
    def input(self) -> torch.Tensor:
        """The inverse input ``(N, C, H, W)`` (``features[0]``)."""
        return self.features[0]


def concat_results(parts: list) -> InverseResult:
    """The results of consecutive batches as one."""
    if len(parts) == 1:
        return parts[0]
    feats = [None if parts[0].features[k] is None else torch.cat([p.features[k] for p in parts])
             for k in range(len(parts[0].features))]
    attr = None if parts[0].attribution is None else torch.cat([p.attribution for p in parts])
    classes = None if parts[0].classes is None else torch.cat([p.classes for p in parts])
    stats = []
    for j, s in enumerate(parts[0].stats):
        total = None if s.iterations_total is None else torch.cat([p.stats[j].iterations_total for p in parts])
        stats.append(LayerStats(s.index, s.name, torch.cat([p.stats[j].iterations for p in parts]),
                                torch.cat([p.stats[j].cost for p in parts]),
                                sum(p.stats[j].seconds for p in parts), total))
    def cat(name):
        vals = [getattr(p, name) for p in parts]
        return None if vals[0] is None else torch.cat(vals)

    return InverseResult(feats, attr, classes, torch.cat([p.failed for p in parts]), stats,
                         cat("mask_weight"), cat("kept_class"), cat("candidates_tried"))
