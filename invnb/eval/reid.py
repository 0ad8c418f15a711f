"""Re-identification of the class from inverse features, and the amount of activation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from invnb._utils.checks import check_images, chunks
from invnb.inverse.maps import kept_ratio

__all__ = ["Reidentification", "reid_rates", "amount_of_activation"]


# --------------------------------------------------------------------------- re-identification
@dataclass
class Reidentification:
    """Per-layer agreement of the rest of the network with the original classes.

    Attributes
    ----------
    layers : list of int
        Index k of each feature evaluated (``features[k]`` is fed to ``layers[k:]``).
    names : list of str
        Name of the layer that receives ``features[k]``.
    topk : tuple of int
        The k of each top-k agreement, e.g. (1, 5).
    hits : Tensor
        (n_layers, len(topk), N) bool: class within the top k for each image.
    rates : Tensor
        (n_layers, len(topk)) float in [0, 1], mean of ``hits`` over the counted
        images (those not marked failed). Higher is better.
    """

    layers: list[int]
    names: list[str]
    topk: tuple[int, ...]
    hits: Tensor
    rates: Tensor

    def rate(self, k: int = 1) -> Tensor:
        """Return the top-``k`` rate per layer, (n_layers,)."""
        if k not in self.topk:
            raise KeyError(f"top-{k} was not measured; measured: {self.topk}.")
        return self.rates[:, self.topk.index(k)]

    def as_rows(self) -> list[dict]:
        """Return one dict per layer: ``layer``, ``name``, ``top1``, ``top5``, ..."""
        rows = []
        for i, (k, name) in enumerate(zip(self.layers, self.names)):
            row = {"layer": k, "name": name}
            row.update({f"top{t}": float(self.rates[i, j]) for j, t in enumerate(self.topk)})
            rows.append(row)
        return rows


def topk_hits(out: Tensor, classes: Tensor, topk: Sequence[int]) -> Tensor:
    """(len(topk), B) bool; rows with non-finite outputs never hit."""
    out = out.reshape(out.shape[0], -1).float()
    finite = torch.isfinite(out).all(dim=1)
    kmax = min(max(topk), out.shape[1])
    top = out.nan_to_num(0.0).topk(kmax, dim=1).indices  # (B, kmax)
    match = top == classes.unsqueeze(1)
    return torch.stack([match[:, : min(k, kmax)].any(dim=1) & finite for k in topk])


@torch.no_grad()
def reid_rates(
    stack,
    features: Sequence[Tensor | None],
    classes: Tensor,
    layers: Sequence[int] | None = None,
    topk: Sequence[int] = (1, 5),
    failed: Tensor | None = None,
    batch_size: int | None = None,
) -> Reidentification:
    """Re-identify the class from each layer's inverse feature.

    For each k, ``stack.forward_from(k, features[k])`` runs the rest of the
    network on the inverse feature, and its top-k classes are compared with
    ``classes`` (the class the inverse explains).

    Parameters
    ----------
    stack : LayerStack
        The network as a layer stack (``invnb.inverse.LayerStack``); anything
        with ``forward_from(k, h)``, ``layers`` and ``names`` works.
    features : sequence of Tensor
        ``features[k]`` shaped like the forward activation entering layer k
        (``res.features`` of ``LayerwiseInverse.invert``); None entries are skipped.
    classes : Tensor
        (N,) long, the class to re-identify (``res.classes``).
    layers : sequence of int, optional
        Which k to evaluate; default every k < len(stack.layers) with a feature.
    topk : sequence of int
        Ranks to check. k larger than the number of classes counts as all classes.
    failed : Tensor, optional
        (N,) bool; failed images are left out of ``rates`` (as the paper's
        script skips them) but still have ``hits`` (False where non-finite).
    batch_size : int, optional
        Images per forward pass.

    Returns
    -------
    Reidentification
        ``rates`` (n_layers, len(topk)) in [0, 1]; higher is better.

    Examples
    --------
    >>> from invnb.inverse import LayerStack, LayerwiseInverse
    >>> res = LayerwiseInverse(model).invert(x)
    >>> reid = reid_rates(LayerStack(model), res.features, res.classes)
    >>> float(reid.rate(1)[0])   # top-1 re-identification from the inverse input
    1.0
    """
    topk = tuple(int(k) for k in topk)
    if not topk or min(topk) < 1:
        raise ValueError(f"topk must be positive integers, got {topk}.")
    classes = torch.as_tensor(classes).long()
    n = classes.shape[0]
    n_layers = len(stack.layers)
    if layers is None:
        layers = [k for k in range(min(n_layers, len(features))) if features[k] is not None]
    layers = [int(k) for k in layers]
    for k in layers:
        if not 0 <= k < len(features) or features[k] is None:
            raise ValueError(f"no inverse feature for layer {k}: features has {len(features)} entries.")
    names = list(getattr(stack, "names", []))
    hits = torch.zeros(len(layers), len(topk), n, dtype=torch.bool)
    for i, k in enumerate(layers):
        feat = features[k]
        if feat.shape[0] != n:
            raise ValueError(f"features[{k}] has {feat.shape[0]} images but classes has {n}.")
        cls = classes.to(feat.device)
        for s in chunks(n, batch_size):
            out = stack.forward_from(k, feat[s])
            hits[i, :, s] = topk_hits(out, cls[s], topk).cpu()
    counted = torch.ones(n, dtype=torch.bool) if failed is None else ~torch.as_tensor(failed).bool().cpu()
    denom = max(int(counted.sum()), 1)
    rates = (hits & counted).sum(dim=2).float() / denom
    layer_names = [names[k] if k < len(names) else "output" for k in layers]
    return Reidentification(layers=layers, names=layer_names, topk=topk, hits=hits, rates=rates)


# --------------------------------------------------------------------------- amount of activation
def amount_of_activation(x_hat: Tensor, x: Tensor, eps: float = 1e-6) -> Tensor:
    """The paper's "amount of activation" ("mean L1 norm") of a kept input.

    Per image: ``r = |x_hat| / (|x| + eps)``, minus each channel's minimum,
    summed over channels, divided by its maximum, then averaged over the H*W
    pixels (``METHOD.md`` section 4, ``compute_mean_l1_norm`` of the paper's code).

    Parameters
    ----------
    x_hat : Tensor
        (N, C, H, W) the kept input (the inverse input, or a masked image).
    x : Tensor
        (N, C, H, W) the original input, same (normalised) space.
    eps : float
        Guard against division by zero (1e-6 in the paper).

    Returns
    -------
    Tensor
        (N,) in [0, 1]; the paper's number is ``.mean()`` over images. Lower
        means less of the input is kept. An image whose normalised map is all
        zero (e.g. ``x_hat == 0``) gets 0, where the paper's code gives NaN.

    Notes
    -----
    The measure is meant for attenuated inputs (``|x_hat| <= |x|`` with
    zeros somewhere, as the inverse input or a masked image). For
    ``x_hat = x`` the ratio is 1 up to ``eps``, the channel minimum removes
    it, and what is left is rounding noise: the result is arbitrary.

    Examples
    --------
    >>> keep = torch.zeros_like(x)
    >>> keep[..., :32] = 1                       # the left half of every image kept, the rest zeroed
    >>> amount_of_activation(x * keep, x).round(decimals=2)
    tensor([0.5000, 0.5000])
    """
    check_images(x_hat, "x_hat")
    check_images(x)
    if x_hat.shape != x.shape:
        raise ValueError(f"x_hat {tuple(x_hat.shape)} and x {tuple(x.shape)} must have the same shape.")
    r = kept_ratio(x_hat, x, eps)
    r = r - r.flatten(2).amin(dim=2)[:, :, None, None]
    s = r.sum(dim=1).flatten(1)  # (N, H*W)
    peak = s.amax(dim=1)
    safe = torch.where(peak > 0, peak, torch.ones_like(peak))
    return torch.where(peak > 0, s.sum(dim=1) / safe / s.shape[1], torch.zeros_like(peak))
