"""The layer-wise inverse of a CNN (Kwon et al., IEEE TNNLS 2021).

Starting from a target at the top (a class, or an output tensor to match), the
inverse walks the network down one layer at a time. Each Conv2d/Linear layer
is inverted by a small constrained optimisation (`invnb.solver`): find the
input that reproduces the target through the layer, stays inside the box the
forward pass allows (``0 <= x <= max(0, x_l)`` in hidden layers, a pixel-wise
attenuation of the image at the input) and activates as little as possible.
Max pooling is undone with the forward pass's switches. The result is an
"inverse feature" at every layer and, at the bottom, an inverse input whose
ratio to the real input is the attribution map.

See ``METHOD.md``/the book's method chapter for the exact rules, and
`LayerwiseInverse.paper` for the original code's setting.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from .layers import LayerStack
from .solver import LayerProblem, _avgpool_init, operator_norm, solve_fista, solve_paper

__all__ = ["LayerwiseInverse", "InverseResult", "LayerStats", "attribution_map",
           "DEFAULT_MASK_WEIGHT"]

#: Default ``mask_weight`` of the default (L1) setting: the largest of the swept
#: values (0.3, 0.5, 1, 2) at which at least 99% of inverse inputs were
#: re-identified on the embedded model (99.5% of 200 held-out images; 0.5 gave
#: 98.5%). Measured with ``python benchmarks/bench_mask_weight.py``; larger
#: weights localise better but re-identify less (see the book).
DEFAULT_MASK_WEIGHT = 0.3

Target = Union[None, int, Sequence[int], torch.Tensor]


def attribution_map(x_hat: torch.Tensor, x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """The paper's attribution: ``sum_c |x_hat| / (|x| + eps)``, max-normalised per image.

    Parameters
    ----------
    x_hat, x : torch.Tensor
        Inverse input and real input, ``(N, C, H, W)`` (normalised space).

    Returns
    -------
    torch.Tensor
        ``(N, H, W)`` in [0, 1] (all zeros where the inverse is zero).
    """
    if x_hat.shape != x.shape or x.dim() != 4:
        raise ValueError(f"expected two (N, C, H, W) tensors of one shape, got {tuple(x_hat.shape)} "
                         f"and {tuple(x.shape)}")
    a = (x_hat.abs() / (x.abs() + eps)).sum(dim=1)
    return a / a.flatten(1).amax(dim=1).clamp_min(1e-30).reshape(-1, 1, 1)


@dataclass
class LayerStats:
    """What one solved layer cost. Tensors are ``(N,)``."""

    index: int
    name: str
    iterations: torch.Tensor
    cost: torch.Tensor
    seconds: float


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
        One entry per optimised layer, top first.
    """

    features: list
    attribution: Optional[torch.Tensor]
    classes: Optional[torch.Tensor]
    failed: torch.Tensor
    stats: list = field(default_factory=list)

    @property
    def input(self) -> torch.Tensor:
        """The inverse input ``(N, C, H, W)`` (``features[0]``)."""
        return self.features[0]


class LayerwiseInverse:
    """Layer-wise inverse of a feed-forward CNN.

    Parameters
    ----------
    model : nn.Module
        A torchvision VGG or any plain stack of Conv2d/ReLU/pooling/Flatten/
        Dropout/BatchNorm2d/Linear layers (see `invnb.layers.LayerStack`).
    mask_weight : float
        Weight ``lam`` of the sparsity penalty (the paper: 0.7 for VGG, 0.15 for VDSR).
    penalty : {"l1", "l2"}
        ``"l2"``: the paper's ``||m * x||_2``; ``"l1"`` (default):
        ``||m * x||_1 / sqrt(size)``, which favours sparse inverses and
        localises objects far better (see the book's trade-off chapter).
    solver : {"fista", "paper"}
        ``"fista"`` (default): batched accelerated proximal gradient with a
        scale-free stopping rule; ``"paper"``: the original iteration.
    penalty_scale : {"none", "forward"}
        ``"none"``: the penalty as written (the paper); ``"forward"``: measure
        it relative to the forward pass, ``lam * ||y_l|| * R(x) / R(x_l)``, so
        that `mask_weight` means the same in every layer whatever its gain.
    max_iter : int, optional
        Iteration cap per layer (default 300 for fista, 3000 for paper).
    tol : float
        Relative stopping tolerance of the fista solver.
    relu_in_objective : {"mirror", "always"}
        ``"mirror"``: the data term applies a ReLU only where the network has
        one after the layer; ``"always"``: after every Conv2d/Linear, as the
        original code (wrong for VDSR's last layer).
    scale_bound : bool
        Scale the box bound by the target's rescaling factor (the original VDSR script).
    target_scale : {"forward", "none"}
        How an output target (regression) is rescaled before each layer is
        solved: ``"forward"`` (default, the original code) to the norm of the
        forward output of that layer; ``"none"``: left as the layer above
        produced it; ``"active"``: to the norm of the forward output as the
        next layer sees it (after the ReLU that follows, if any; the target
        lives there, so ``"forward"`` inflates it by the norm of the negative
        pre-activations).
    batch_size : int, optional
        Images inverted at once (None: all). The paper setting uses 1.
    progress : bool
        Show a progress bar over layers.
    check_model : bool
        Verify that the layer stack reproduces the model's output (on two
        inputs, again whenever the input shape or the model's parameters change).
    keep_features : bool
        Keep every layer's inverse feature (default). False keeps only the
        inverse input and the top target (``features[k]`` is None in between),
        which saves memory on large images (a 512x512 VDSR input has 41
        feature maps of 64 MB each).

    Examples
    --------
    >>> inv = LayerwiseInverse(model)
    >>> res = inv.invert(x)                 # explain the predicted classes
    >>> res.attribution.shape               # (N, H, W)
    """

    def __init__(self, model: nn.Module, *, mask_weight: float = DEFAULT_MASK_WEIGHT,
                 penalty: str = "l1", penalty_scale: str = "none", solver: str = "fista",
                 max_iter: Optional[int] = None,
                 tol: float = 1e-3, relu_in_objective: str = "mirror", scale_bound: bool = False,
                 target_scale: str = "forward",
                 batch_size: Optional[int] = None, progress: bool = False, check_model: bool = True,
                 keep_features: bool = True):
        if penalty not in ("l1", "l2"):
            raise ValueError(f"penalty must be 'l1' or 'l2', got {penalty!r}")
        if penalty_scale not in ("none", "forward"):
            raise ValueError(f"penalty_scale must be 'none' or 'forward', got {penalty_scale!r}")
        if solver not in ("fista", "paper"):
            raise ValueError(f"solver must be 'fista' or 'paper', got {solver!r}")
        if relu_in_objective not in ("mirror", "always"):
            raise ValueError(f"relu_in_objective must be 'mirror' or 'always', got {relu_in_objective!r}")
        if target_scale not in ("forward", "none", "active"):
            raise ValueError(f"target_scale must be 'forward', 'none' or 'active', got {target_scale!r}")
        if mask_weight < 0 or not math.isfinite(mask_weight):
            raise ValueError(f"mask_weight must be a finite number >= 0, got {mask_weight}")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be None or >= 1, got {batch_size}")
        self.model = model
        self.stack = LayerStack(model)
        self.mask_weight = float(mask_weight)
        self.penalty = penalty
        self.penalty_scale = penalty_scale
        self.solver = solver
        self.max_iter = max_iter if max_iter is not None else (3000 if solver == "paper" else 300)
        self.tol = tol
        self.relu_in_objective = relu_in_objective
        self.scale_bound = scale_bound
        self.target_scale = target_scale
        self.batch_size = batch_size
        self.progress = progress
        self.check_model = check_model
        self.keep_features = keep_features
        self._op_norms: dict = {}

    @classmethod
    def paper(cls, model: nn.Module, variant: str = "vgg", **overrides) -> "LayerwiseInverse":
        """The released code's setting: L2 mask penalty, the original solver, one image at a time.

        Parameters
        ----------
        variant : {"vgg", "vdsr"}
            ``"vgg"``: ``mask_weight`` 0.7 (``inv_vgg.py``); ``"vdsr"``: 0.15, the
            box bound scaled with the target, ReLU applied after every layer
            (``inv_vdsr.py``, including its flaw at the last layer).
        """
        if variant == "vgg":
            kw = dict(mask_weight=0.7)
        elif variant == "vdsr":
            kw = dict(mask_weight=0.15, scale_bound=True)
        else:
            raise ValueError(f"variant must be 'vgg' or 'vdsr', got {variant!r}")
        kw.update(penalty="l2", solver="paper", max_iter=3000, relu_in_objective="always",
                  batch_size=1)
        kw.update(overrides)
        return cls(model, **kw)

    # ------------------------------------------------------------------ API
    def attribute(self, x: torch.Tensor, target: Target = None) -> torch.Tensor:
        """Attribution map ``(N, H, W)`` in [0, 1] of the inverse input."""
        return self.invert(x, target).attribution

    def invert(self, x: torch.Tensor, target: Target = None) -> InverseResult:
        """Invert the model for a batch.

        Parameters
        ----------
        x : torch.Tensor
            Inputs ``(N, C, H, W)`` as the model sees them (normalised), or
            ``(N, D)`` for a network of Linear layers.
        target : None, int, sequence of int, or torch.Tensor
            None: each image's predicted class; an int or ``(N,)`` integers: the
            classes to explain (margin objective at the logits); a float tensor
            shaped like the model's output: the output to reproduce
            (regression, multi-label).

        Returns
        -------
        InverseResult
        """
        x = self._check_input(x)
        self.stack.to(x.device)
        n = x.shape[0]
        bs = self.batch_size or n
        # one batch: the forward record serves both the target and the walk down
        acts = self.stack.record(x) if bs >= n else None
        with torch.no_grad():
            out = acts[-1] if acts is not None else self.stack(x)
        if self.check_model:
            self._check_model(x)
        classes, out_target = self._parse_target(target, out)
        parts = []
        for start in range(0, n, bs):
            sl = slice(start, start + bs)
            parts.append(self._invert_batch(
                x[sl], None if classes is None else classes[sl],
                None if out_target is None else out_target[sl], acts))
        return _concat(parts)

    # ------------------------------------------------------------ internals
    def _check_model(self, x: torch.Tensor) -> None:
        """`LayerStack.check_matches` on a sample of `x`, once per input shape and parameter state."""
        params = list(self.model.parameters()) + list(self.model.buffers())
        key = (tuple(x.shape[1:]), x.dtype, x.device,
               tuple(id(p) for p in params), tuple(p._version for p in params))
        if key != getattr(self, "_checked_key", None):
            self.stack.check_matches(self.model, x[:2])
            self._checked_key = key
    @staticmethod
    def _check_input(x) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() not in (2, 4):
            raise ValueError(f"x must be a batch (N, C, H, W) of images (or (N, D) vectors); got shape "
                             f"{tuple(x.shape)}. Add a batch dimension with x.unsqueeze(0).")
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor, got {x.dtype}")
        if x.shape[0] == 0:
            raise ValueError("x is an empty batch")
        if not torch.isfinite(x).all():
            raise ValueError("x contains NaN or infinite values")
        return x.detach()

    @staticmethod
    def _parse_target(target, out):
        n = out.shape[0]
        if isinstance(target, torch.Tensor) and target.is_floating_point():
            if target.shape != out.shape:
                raise ValueError(f"an output target must have the model output's shape {tuple(out.shape)}, "
                                 f"got {tuple(target.shape)}")
            if not torch.isfinite(target).all():
                raise ValueError("target contains NaN or infinite values")
            return None, target.to(out.device, out.dtype)
        if out.dim() != 2:
            raise ValueError(f"class targets need a classifier with (N, K) output; this model outputs "
                             f"{tuple(out.shape)}: pass the output tensor to reproduce as target")
        if target is None:
            classes = out.argmax(dim=1)
        else:
            classes = torch.as_tensor(target, device=out.device).long().reshape(-1)
            if classes.numel() == 1:
                classes = classes.expand(n)
            if classes.numel() != n:
                raise ValueError(f"got {classes.numel()} class targets for {n} inputs")
            if classes.min() < 0 or classes.max() >= out.shape[1]:
                raise ValueError(f"class targets must lie in 0..{out.shape[1] - 1}")
        return classes.clone(), None

    def _top_affine(self) -> int:
        """Index of the layer producing the logits (only Dropout/Flatten above it)."""
        layers = self.stack.layers
        for k in range(len(layers) - 1, -1, -1):
            if isinstance(layers[k], (nn.Linear, nn.Conv2d)):
                return k
            if not isinstance(layers[k], (nn.Dropout, nn.Flatten)):
                break
        return -1

    def _op_norm(self, k, layer, like):
        """Operator norm of layer k (cached); only a starting step, backtracking corrects it."""
        like = like[:1]
        if isinstance(layer, nn.Conv2d) and like.dim() == 4:
            # a convolution's norm barely depends on the image size: estimate it on a crop
            like = like[..., :48, :48]
        key = (k, tuple(like.shape[1:]), like.device, like.dtype)
        if key not in self._op_norms:
            self._op_norms[key] = operator_norm(layer, like, n_iter=8)
        return self._op_norms[key]

    @torch.no_grad()
    def _invert_batch(self, x, classes, out_target, acts=None) -> InverseResult:
        layers, names = self.stack.layers, self.stack.names
        acts = self.stack.record(x) if acts is None else acts  # freed in place as the walk goes down
        n_layers = len(layers)
        if classes is not None:
            t = F.one_hot(classes, acts[-1].shape[1]).to(x.dtype)
        else:
            t = out_target.clone()
        features = [None] * (n_layers + 1)
        features[-1] = t
        failed = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        top = self._top_affine() if classes is not None else -1
        if classes is not None and top < 0:
            raise ValueError("class targets need a Linear/Conv2d layer producing the logits at the top")
        stats = []
        order = range(n_layers - 1, -1, -1)
        if self.progress:
            from tqdm.auto import tqdm
            order = tqdm(order, desc="layers", leave=False)
        for k in order:
            layer, below = layers[k], acts[k]
            if isinstance(layer, (nn.Dropout,)):
                pass
            elif isinstance(layer, nn.Flatten):
                t = t.reshape(below.shape)
            elif isinstance(layer, nn.ReLU):
                t = t * (below > 0)
            elif isinstance(layer, (nn.MaxPool2d, nn.AdaptiveMaxPool2d)):
                t = _unpool(layer, t, below)
            elif _is_identity_pool(layer, below, acts[k + 1]):
                t = t.reshape(below.shape)
            elif isinstance(layer, (nn.Conv2d, nn.Linear, nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
                t0 = time.perf_counter()
                t, st = self._solve_layer(k, layer, t, below, acts[k + 1],
                                          classes if k == top else None)
                stats.append(LayerStats(k, names[k], st.iterations, st.cost, time.perf_counter() - t0))
            else:  # LayerStack admits nothing else
                raise AssertionError(f"unhandled layer {names[k]}")
            bad = ~torch.isfinite(t).flatten(1).all(dim=1) | (t.flatten(1).abs().sum(dim=1) == 0)
            failed |= bad
            if failed.any():
                # As the original, a sample whose inverse vanished (or blew up) has failed;
                # its features below stay zero rather than inverting an empty target.
                t = torch.nan_to_num(t, nan=0.0, posinf=0.0, neginf=0.0)
                t = t * (~failed).reshape((-1,) + (1,) * (t.dim() - 1))
            if self.keep_features or k == 0:
                features[k] = t
            acts[k + 1] = None  # no longer needed: free it as the walk goes down
        attribution = attribution_map(features[0], x) if x.dim() == 4 else None
        return InverseResult(features, attribution, classes, failed, stats)

    def _solve_layer(self, k, layer, t, below, above, classes):
        n = below.shape[0]
        bound = below
        if classes is None and self.target_scale != "none":
            # Rescale the target to the norm of the forward output of this layer.
            ref = above
            if self.target_scale == "active" and k + 1 < len(self.stack.layers) and isinstance(
                    self.stack.layers[k + 1], nn.ReLU):
                ref = above.clamp(min=0)
            factor = ref.flatten(1).norm(dim=1) / (t.flatten(1).norm(dim=1) + 1e-10)
            t = t * factor.reshape((-1,) + (1,) * (t.dim() - 1))
            if self.scale_bound:
                bound = below * factor.reshape((-1,) + (1,) * (below.dim() - 1))
        if k == 0:  # the image: |x| <= |x_l| with the sign of x_l
            lo, hi = bound.clamp(max=0), bound.clamp(min=0)
        else:
            lo, hi = torch.zeros_like(bound), bound.clamp(min=0)
        mask = None
        if classes is None and t.dim() == 4:
            s = t.abs().sum(dim=1, keepdim=True)
            mask = 1 - s / s.flatten(1).amax(dim=1).clamp_min(1e-30).reshape(-1, 1, 1, 1)
            if mask.shape[-2:] != below.shape[-2:]:
                mask = F.interpolate(mask, size=below.shape[-2:], mode="nearest")
        relu = isinstance(layer, (nn.Conv2d, nn.Linear)) and (
            self.relu_in_objective == "always"
            or (k + 1 < len(self.stack.layers) and isinstance(self.stack.layers[k + 1], nn.ReLU)))
        lam = 0.0 if classes is not None else self.mask_weight
        if classes is None and self.penalty_scale == "forward":
            # lam * ||y_l|| * R(x) / R(x_l): the penalty in units of the data term
            out_norm = above.flatten(1).norm(dim=1)
            if self.penalty == "l2":
                lam = lam * out_norm / bound.flatten(1).norm(dim=1).clamp_min(1e-12)
            else:  # R = ||m x||_1 / sqrt(size) in the solver
                size = bound[0].numel()
                lam = lam * out_norm * math.sqrt(size) / bound.flatten(1).abs().sum(dim=1).clamp_min(1e-12)
        problem = LayerProblem(
            forward=layer, lo=lo, hi=hi, x0=_avgpool_init(bound),
            target=None if classes is not None else t, classes=classes, relu=relu, mask=mask,
            lam=lam, penalty=self.penalty)
        if self.solver == "paper":
            res = solve_paper(problem, max_iter=self.max_iter)
        else:
            res = solve_fista(problem, max_iter=self.max_iter, tol=self.tol,
                              op_norm=None if classes is not None else self._op_norm(k, layer, below))
        return res.x, res


def _unpool(layer, t, below):
    """Put the target back at the forward pass's max locations (zeros elsewhere)."""
    if isinstance(layer, nn.MaxPool2d):
        _, idx = F.max_pool2d(below, layer.kernel_size, layer.stride, layer.padding,
                              layer.dilation, layer.ceil_mode, return_indices=True)
    else:
        _, idx = F.adaptive_max_pool2d(below, layer.output_size, return_indices=True)
    n, c, h, w = below.shape
    flat = t.new_zeros(n, c, h * w)
    # scatter_add: overlapping windows that share a maximum add their targets
    flat.scatter_add_(2, idx.flatten(2), t.reshape(idx.shape).flatten(2))
    return flat.reshape(below.shape)


def _is_identity_pool(layer, below, above) -> bool:
    """An average pool that leaves its input unchanged (VGG's adaptive pool at 224 px)."""
    if isinstance(layer, nn.AdaptiveAvgPool2d):
        return below.shape == above.shape
    if isinstance(layer, nn.AvgPool2d):
        k, s, p = (nn.modules.utils._pair(v) for v in (layer.kernel_size, layer.stride or 1, layer.padding))
        return k == (1, 1) and s == (1, 1) and p == (0, 0)
    return False


def _concat(parts: list) -> InverseResult:
    if len(parts) == 1:
        return parts[0]
    feats = [None if parts[0].features[k] is None else torch.cat([p.features[k] for p in parts])
             for k in range(len(parts[0].features))]
    attr = None if parts[0].attribution is None else torch.cat([p.attribution for p in parts])
    classes = None if parts[0].classes is None else torch.cat([p.classes for p in parts])
    stats = []
    for j, s in enumerate(parts[0].stats):
        stats.append(LayerStats(s.index, s.name, torch.cat([p.stats[j].iterations for p in parts]),
                                torch.cat([p.stats[j].cost for p in parts]),
                                sum(p.stats[j].seconds for p in parts)))
    return InverseResult(feats, attr, classes, torch.cat([p.failed for p in parts]), stats)
