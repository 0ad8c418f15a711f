"""``mask_weight="auto"``: per image, the largest candidate weight whose inverse input keeps the class.

The candidates are walked from the largest down, each on the images that lost
their class at every larger one. That makes the same choice as walking every
candidate for every image, for fewer walks; each image's choice depends on
that image alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from invnb.inverse.result import LayerStats

__all__ = ["AutoChoice", "choose_weights"]


@dataclass
class AutoChoice:
    """What the candidate search chose for a batch of ``N`` images.

    Attributes
    ----------
    features : dict
        Layer index ``k`` -> ``(N, ...)`` the chosen walk's inverse feature of layer ``k``'s input.
    chosen : torch.Tensor
        ``(N,)`` the chosen ``mask_weight``.
    kept : torch.Tensor
        ``(N,)`` bool: the model gives the explained class on the chosen inverse input.
    failed : torch.Tensor
        ``(N,)`` bool: the chosen walk's inverse vanished or was not finite.
    tried : torch.Tensor
        ``(N,)`` how many candidates were walked for each image.
    stats : list of LayerStats
        The walked layers, top first: the chosen walk's iterations and cost, the
        iterations summed over all walks (``iterations_total``) and the time of all walks.
    """

    features: dict
    chosen: torch.Tensor
    kept: torch.Tensor
    failed: torch.Tensor
    tried: torch.Tensor
    stats: list


def choose_weights(walk: Callable, forward: Callable, weights: Sequence[float], classes: torch.Tensor,
                   like: torch.Tensor, keep_empty: bool = True) -> AutoChoice:
    """Walk the candidate `weights` from the largest down until each image keeps its class.

    Parameters
    ----------
    walk : callable
        ``walk(idx, w) -> (walk, inverse_input)`` walks the images `idx` (``(M,)`` indices into the
        batch; None: all ``N``) at weight `w`; ``walk.features``, ``walk.failed`` (``(M,)``) and
        ``walk.stats`` as `LayerwiseInverse`'s walks give them, ``inverse_input`` ``(M, C, H, W)``.
    forward : callable
        The model: ``(M, C, H, W)`` -> logits ``(M, K)``.
    weights : sequence of float
        The candidates.
    classes : torch.Tensor
        ``(N,)`` the explained classes.
    like : torch.Tensor
        A tensor of the batch's float dtype and device.
    keep_empty : bool
        Whether an inverse that vanished may be chosen when the model still gives the class on it.

    Returns
    -------
    AutoChoice
        Images that keep their class at no candidate get the smallest.
    """
    n, dev = classes.shape[0], classes.device
    pending = torch.arange(n, device=dev)
    chosen = torch.empty(n, dtype=like.dtype, device=dev)
    kept = torch.zeros(n, dtype=torch.bool, device=dev)
    failed = torch.zeros(n, dtype=torch.bool, device=dev)
    tried = torch.zeros(n, dtype=torch.long, device=dev)
    features, stats = {}, {}  # stats: k -> [name, iterations, cost, seconds, iterations over all walks]
    weights = sorted(weights, reverse=True)
    for j, w in enumerate(weights):
        tried[pending] += 1
        result, inp = walk(None if len(pending) == n else pending, w)  # the first walk takes the batch as it is
        ok = forward(inp).argmax(dim=1) == classes[pending]
        if not keep_empty:
            ok &= ~result.failed
        take = torch.ones_like(ok) if j == len(weights) - 1 else ok
        rows, where = pending[take], take.nonzero().squeeze(1)
        chosen[rows], kept[rows], failed[rows] = w, ok[take], result.failed[take]
        for k, f in result.features.items():
            if k not in features:
                features[k] = f.new_zeros((n,) + f.shape[1:])
            features[k][rows] = f[where]
        for s in result.stats:
            entry = stats.setdefault(s.index, [s.name, torch.zeros_like(tried), like.new_zeros(n), 0.0,
                                               torch.zeros_like(tried)])
            entry[1][rows], entry[2][rows] = s.iterations[where], s.cost[where]
            entry[3] += s.seconds
            entry[4][pending] += s.iterations
        pending = pending[~take]
        if len(pending) == 0:
            break
    layer_stats = [LayerStats(k, *v) for k, v in sorted(stats.items(), reverse=True)]
    return AutoChoice(features, chosen, kept, failed, tried, layer_stats)
