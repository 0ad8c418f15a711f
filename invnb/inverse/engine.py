"""The layer-wise inverse of a CNN (Kwon et al., IEEE TNNLS 2021): the top-down walk."""

from __future__ import annotations

import copy
import math
import numbers
import time
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from invnb._utils.precision import full_precision
from invnb.inverse.layers import LayerStack
from invnb.inverse.maps import (
    ATTRIBUTIONS,
    SMOOTHINGS,
    attribution_map,
    check_clip,
    check_sigma,
)
from invnb.inverse.result import InverseResult, LayerStats, concat_results
from invnb.inverse.settings import (
    DEFAULT_ATTRIBUTION,
    DEFAULT_AUTO_EMPTY,
    DEFAULT_AUTO_WEIGHTS,
    DEFAULT_MAP_CLIP,
    DEFAULT_MAP_FILL_SIGMA,
    DEFAULT_MAP_SIGMA,
    DEFAULT_MAP_SMOOTHING,
    DEFAULT_MASK_DILATION,
    setting_kwargs,
)
from invnb.inverse.solver import (
    LayerProblem,
    RowWise,
    avgpool_init,
    operator_norm,
    solve_fista,
    solve_paper,
)

__all__ = ["LayerwiseInverse"]


Target = Union[None, int, Sequence[int], torch.Tensor]


def target_mask(t: torch.Tensor, size, dilation: int = 1) -> torch.Tensor:
    """The paper's spatial mask ``m = 1 - S / max S`` of a layer's target.

    Parameters
    ----------
    t : torch.Tensor
        Target ``(N, C, h, w)`` of the layer's output.
    size : tuple of int
        ``(H, W)`` of the layer's input; the mask is resized to it (nearest).
    dilation : int
        Odd side of a max filter applied to ``S = sum_c |t|`` first (1: none,
        the paper). Meant for a target that came through a max-unpooling,
        which is zero between the forward pass's switches.

    Returns
    -------
    torch.Tensor
        ``(N, 1, H, W)`` in [0, 1]: 0 where the target is strongest, 1 where it is zero.
    """
    s = t.abs().sum(dim=1, keepdim=True)
    if dilation > 1:
        s = F.max_pool2d(s, dilation, stride=1, padding=dilation // 2)
    mask = 1 - s / s.flatten(1).amax(dim=1).clamp_min(1e-30).reshape(-1, 1, 1, 1)
    if tuple(mask.shape[-2:]) != tuple(size):
        mask = F.interpolate(mask, size=tuple(size), mode="nearest")
    return mask


@dataclass
class _Walk:
    """What a walk over some layers left (see `LayerwiseInverse._walk`)."""

    features: dict
    failed: torch.Tensor
    stats: list
    t: torch.Tensor
    unpooled: bool


class LayerwiseInverse:
    """Layer-wise inverse of a feed-forward CNN.

    Parameters
    ----------
    model : nn.Module
        A torchvision VGG or any plain stack of Conv2d/ReLU/pooling/Flatten/
        Dropout/BatchNorm2d/Linear layers (see `invnb.inverse.LayerStack`).
    mask_weight : float or "auto"
        Weight ``lam`` of the sparsity penalty (the paper: 0.7 for VGG, 0.15
        for VDSR). ``"auto"`` (default): per image, the sparsest inverse that
        keeps the class, i.e. the largest of `auto_weights` whose inverse input
        the model still assigns to the explained class (top-1; see
        `auto_empty` for an inverse that vanished); where none does, the
        smallest candidate, flagged in ``InverseResult.kept_class``. The top
        (margin) layer, whose solve has no penalty, is solved once and shared;
        the candidates are then walked from the largest down, each on the
        images that lost their class at every larger one (the same choice as
        the full grid, for fewer walks). Each
        image's choice depends on that image alone (up to the batch's
        floating-point rounding, as any batched inverse).
        ``"auto"`` needs class targets: with an output target (regression,
        VDSR) `invert` refuses it; pass a number there.
    auto_weights : sequence of float
        Candidates of ``mask_weight="auto"`` (default `DEFAULT_AUTO_WEIGHTS`).
    auto_empty : bool
        With ``"auto"``: whether an inverse that vanished (all zero, `failed`)
        can be chosen when the model still gives the class on it, i.e. when
        the class needs nothing of the image (as on a randomised model,
        whose every input gives one class: its map is then empty). Such an
        image is chosen with ``kept_class`` True and ``failed`` True (its
        inverse is all zero). False: a vanished inverse never keeps the class.
    mask_dilation : int
        Side ``k`` (odd) of a ``k x k`` max filter applied to a target that
        came through a max-unpooling before the spatial mask ``m = 1 - S/max S``
        is built from it. Unpooling leaves the target zero at 3 of every 4
        positions, where the plain mask is 1 even on the object; the filter
        fills them from their neighbours. 1: no filter (the paper). Targets
        that did not come through an unpooling (e.g. all of VDSR's) are used
        as they are.
    attribution : {"ratio", "abs", "abs_x_input"}
        The map in ``InverseResult.attribution`` (see `attribution_map`;
        "ratio" is the paper's).
    map_sigma : float
        Standard deviation in pixels of the Gaussian `map_smoothing` applies
        to that map before it is normalised (`attribution_map`'s ``sigma``;
        0: none, the paper). It changes the map only, never the inverse features.
    map_smoothing : {"weight", "blur"}
        ``"weight"``: ``a * G(a)``, ``"blur"``: ``G(a)`` (`attribution_map`'s ``smoothing``).
    map_clip : float
        Quantile of the kept pixels' values at which the map is clipped
        before its smoothing (`attribution_map`'s ``clip``; 1: none, the paper).
    map_fill_sigma : float
        Standard deviation in pixels of the map's faint secondary key
        (`attribution_map`'s ``fill_sigma``): where the inverse kept nothing,
        pixels rank by nearness to what it kept. 0: none (the paper).
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
    target_scale : {"forward", "none", "active"}
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
        Also verify, by running it, that the layer stack reproduces the model's
        output (on two inputs, again whenever the input shape or the model's
        parameters change). The structure is always checked at construction
        (torch.fx, see `invnb.inverse.LayerStack`); for a model whose forward
        cannot be traced (``stack.traced`` False, e.g. VDSR's input check)
        only this run catches a forward that is not the plain chain of its
        layers, so with ``check_model=False`` such a model may silently give
        the inverse of another network.
    batch_invariant : bool, optional
        Evaluate the layers one sample at a time (in the forward record and
        inside the solvers), so that an image's inverse is exactly what a
        batch of one gives, whatever else is in its batch. A batched
        convolution rounds differently from one image's (about 1e-7 relative
        in float32) and the iterative solvers' step and stopping tests can
        amplify that (issue 12: up to 0.44 in a max-normalised map). None
        (default): True on a CPU, False elsewhere (a GPU needs the batch).
        Cost on one CPU thread (embedded model, 48-100 images): about 0.6 s
        instead of 0.45 s of CPU time per image, since a batched convolution
        is faster per image than one image's; False restores that speed and
        leaves per-image differences from the batch's rounding (measured from
        1e-5 to 0.17 in a max-normalised map; see
        ``benchmarks/bench_batch_independence.py``).
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

    def __init__(self, model: nn.Module, *, mask_weight: Union[float, str] = "auto",
                 auto_weights: Sequence[float] = DEFAULT_AUTO_WEIGHTS,
                 auto_empty: bool = DEFAULT_AUTO_EMPTY,
                 mask_dilation: int = DEFAULT_MASK_DILATION, attribution: str = DEFAULT_ATTRIBUTION,
                 map_sigma: float = DEFAULT_MAP_SIGMA, map_smoothing: str = DEFAULT_MAP_SMOOTHING,
                 map_fill_sigma: float = DEFAULT_MAP_FILL_SIGMA, map_clip: float = DEFAULT_MAP_CLIP,
                 penalty: str = "l1", penalty_scale: str = "none", solver: str = "fista",
                 max_iter: Optional[int] = None,
                 tol: float = 1e-3, relu_in_objective: str = "mirror", scale_bound: bool = False,
                 target_scale: str = "forward",
                 batch_size: Optional[int] = None, progress: bool = False, check_model: bool = True,
                 keep_features: bool = True, batch_invariant: Optional[bool] = None):
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
        if isinstance(mask_weight, str):
            if mask_weight != "auto":
                raise ValueError(f"mask_weight must be a number >= 0 or 'auto', got {mask_weight!r}")
        elif mask_weight < 0 or not math.isfinite(mask_weight):
            raise ValueError(f"mask_weight must be a finite number >= 0 or 'auto', got {mask_weight}")
        auto_weights = tuple(float(w) for w in auto_weights)
        if not auto_weights or any(w < 0 or not math.isfinite(w) for w in auto_weights) \
                or len(set(auto_weights)) != len(auto_weights):
            raise ValueError(f"auto_weights must be distinct finite numbers >= 0, got {auto_weights}")
        if isinstance(mask_dilation, bool) or int(mask_dilation) != mask_dilation or mask_dilation < 1 \
                or mask_dilation % 2 == 0:
            raise ValueError(f"mask_dilation must be an odd integer >= 1 (1: none), got {mask_dilation!r}")
        if attribution not in ATTRIBUTIONS:
            raise ValueError(f"attribution must be one of {ATTRIBUTIONS}, got {attribution!r}")
        check_sigma(map_sigma)
        check_sigma(map_fill_sigma, "map_fill_sigma")
        check_clip(map_clip)
        if map_smoothing not in SMOOTHINGS:
            raise ValueError(f"map_smoothing must be one of {SMOOTHINGS}, got {map_smoothing!r}")
        if max_iter is not None and (isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral)
                                     or max_iter < 1):
            raise ValueError(f"max_iter must be None (the solver's default) or an integer >= 1, got {max_iter!r}")
        if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not math.isfinite(tol) or tol < 0:
            raise ValueError(f"tol must be a finite number >= 0 (0: always run max_iter iterations), got {tol!r}")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be None or >= 1, got {batch_size}")
        self.model = model
        self.stack = LayerStack(model)
        self.mask_weight = mask_weight if mask_weight == "auto" else float(mask_weight)
        self.auto_weights = tuple(sorted(auto_weights))
        self.auto_empty = bool(auto_empty)
        self.mask_dilation = int(mask_dilation)
        self.attribution = attribution
        self.map_sigma = float(map_sigma)
        self.map_smoothing = map_smoothing
        self.map_fill_sigma = float(map_fill_sigma)
        self.map_clip = float(map_clip)
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
        if batch_invariant is not None and not isinstance(batch_invariant, bool):
            raise TypeError(f"batch_invariant must be None, True or False, got {batch_invariant!r}")
        self.batch_invariant = batch_invariant
        self._rowwise = False  # set per call of invert from batch_invariant and the device
        self._op_norms: dict = {}

    @classmethod
    def from_setting(cls, model: nn.Module, setting: str = "default", **overrides) -> "LayerwiseInverse":
        """The inverse of a named setting (:mod:`invnb.inverse.settings`), with keyword `overrides`.

        Parameters
        ----------
        model : nn.Module
            The network to invert.
        setting : {"default", "paper", "vdsr", "vdsr_paper"}
            See :data:`invnb.inverse.settings.SETTINGS`.
        **overrides
            Constructor keywords that replace the setting's (e.g. ``mask_weight=0.3``).

        Examples
        --------
        >>> inv = LayerwiseInverse.from_setting(model, "paper")
        """
        return cls(model, **{**setting_kwargs(setting), **overrides})

    @classmethod
    def paper(cls, model: nn.Module, variant: str = "vgg", **overrides) -> "LayerwiseInverse":
        """The released code's setting: L2 mask penalty, the original solver, one image at a time.

        ``from_setting(model, "paper")`` for ``variant="vgg"`` (``inv_vgg.py``, ``mask_weight``
        0.7), ``from_setting(model, "vdsr_paper")`` for ``variant="vdsr"`` (``inv_vdsr.py``: 0.15,
        the box bound scaled with the target, a ReLU after every layer, its flaw at the last one).
        """
        if variant not in ("vgg", "vdsr"):
            raise ValueError(f"variant must be 'vgg' or 'vdsr', got {variant!r}")
        return cls.from_setting(model, "paper" if variant == "vgg" else "vdsr_paper", **overrides)

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

        Notes
        -----
        On CUDA, TF32 is turned off for convolutions and matrix products
        during the call (and restored after): its 10-bit mantissa changes a
        convolution by about 1e-3 relative, which the solvers' tests amplify,
        so an image's inverse would depend on its batch and the device.
        """
        with full_precision():
            return self._invert(x, target)

    def _invert(self, x: torch.Tensor, target: Target) -> InverseResult:
        x = self._check_input(x)
        self.stack.check_input(x)
        self.stack.to(x.device)
        n = x.shape[0]
        bs = self.batch_size or n
        self._rowwise = self._is_rowwise(x)
        # one batch: the forward record serves both the target and the walk down
        acts = self._record(x) if bs >= n else None
        with torch.no_grad():
            out = acts[-1] if acts is not None else self._forward(x)
        if self.check_model:
            self._check_model(x)
        classes, out_target = self._parse_target(target, out)
        if self.mask_weight == "auto" and classes is None:
            raise ValueError("mask_weight='auto' chooses the sparsest inverse that keeps the explained class "
                             "and needs class targets; for an output target (regression, VDSR) pass a "
                             "number, e.g. LayerwiseInverse(model, mask_weight=0.3)")
        parts = []
        for start in range(0, n, bs):
            sl = slice(start, start + bs)
            parts.append(self._invert_batch(
                x[sl], None if classes is None else classes[sl],
                None if out_target is None else out_target[sl], acts))
        return concat_results(parts)

    # ------------------------------------------------------------ internals
    def _is_rowwise(self, x: torch.Tensor) -> bool:
        return self.batch_invariant if self.batch_invariant is not None else x.device.type == "cpu"

    @torch.no_grad()
    def record(self, x: torch.Tensor) -> list:
        """The forward record (`LayerStack.record`) exactly as `invert` computes it.

        The boxes of the inverse are these activations: with `batch_invariant`
        they are computed one sample at a time, which rounds differently
        from ``self.stack.record(x)`` on the whole batch.
        """
        self._rowwise = self._is_rowwise(x)
        return self._record(x)

    def _record(self, x: torch.Tensor) -> list:
        """`LayerStack.record`, one sample at a time when batch-invariant."""
        if not self._rowwise or x.shape[0] == 1:
            return self.stack.record(x)
        rows = [self.stack.record(x[i:i + 1]) for i in range(x.shape[0])]
        return [torch.cat(parts) for parts in zip(*rows)]

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """The stack's output, one sample at a time when batch-invariant."""
        if not self._rowwise or x.shape[0] == 1:
            return self.stack(x)
        return torch.cat([self.stack(x[i:i + 1]) for i in range(x.shape[0])])

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
            if isinstance(target, (str, bytes)):
                raise TypeError(f"target must be None, a class index, a sequence of them or an output "
                                f"tensor; got the string {target!r}")
            try:
                raw = torch.as_tensor(target)
            except (TypeError, ValueError, RuntimeError) as err:
                raise TypeError(f"target must be None, a class index, a sequence of them or an output "
                                f"tensor; got {target!r} ({err})") from None
            if raw.dtype == torch.bool or raw.is_floating_point() or raw.is_complex():
                raise TypeError(f"class targets must be integers, got {target!r} ({raw.dtype}); to reproduce "
                                f"an output pass a float tensor shaped like the model's output {tuple(out.shape)}")
            classes = raw.to(out.device).long().reshape(-1)
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
        layers = self.stack.layers
        acts = self._record(x) if acts is None else acts  # freed in place as the walk goes down
        n_layers, n = len(layers), x.shape[0]
        if classes is not None:
            t = F.one_hot(classes, acts[-1].shape[1]).to(x.dtype)
        else:
            t = out_target.clone()
        top = self._top_affine() if classes is not None else -1
        if classes is not None and top < 0:
            raise ValueError("class targets need a Linear/Conv2d layer producing the logits at the top")
        features = [None] * (n_layers + 1)
        features[-1] = t
        failed = torch.zeros(n, dtype=torch.bool, device=x.device)
        if self.mask_weight != "auto":
            walk = self._walk(acts, None, t, failed, range(n_layers - 1, -1, -1), classes, top,
                              self.mask_weight, free=True)
            for k, f in walk.features.items():
                features[k] = f
            chosen = torch.full((n,), float(self.mask_weight), dtype=x.dtype, device=x.device)
            attribution = self._map(features[0], x) if x.dim() == 4 else None
            return InverseResult(features, attribution, classes, walk.failed, walk.stats, chosen, None)

        # "auto": the layers above the first penalised one (the margin layer has no penalty)
        # are the same for every candidate: walk them once, then try the candidates from the
        # largest down, each on the images that have not kept their class at a larger one.
        # The choice equals the full grid's (the largest candidate that keeps the class).
        branch = next((k for k in range(n_layers - 1, -1, -1)
                       if k != top and self._solves(k, acts)), -1)
        upper = self._walk(acts, None, t, failed, range(n_layers - 1, branch, -1), classes, top, 0.0)
        for k, f in upper.features.items():
            features[k] = f
        weights = sorted(self.auto_weights, reverse=True)
        pending = torch.arange(n, device=x.device)
        chosen = torch.empty(n, dtype=x.dtype, device=x.device)
        kept = torch.zeros(n, dtype=torch.bool, device=x.device)
        failed = upper.failed.clone()
        lower = {}  # k -> (n, ...) features below the branch point
        low_stats = {}  # k -> (name, iterations (n,), cost (n,), seconds)
        for j, w in enumerate(weights):
            last = j == len(weights) - 1
            walk = self._walk(acts, pending, upper.t[pending], upper.failed[pending],
                              range(branch, -1, -1), classes[pending], top, w, unpooled=upper.unpooled)
            inp = walk.features[0] if branch >= 0 else upper.features[0][pending]
            ok = self._forward(inp).argmax(dim=1) == classes[pending]
            if not self.auto_empty:
                ok &= ~walk.failed
            take = torch.ones_like(ok) if last else ok
            rows, where = pending[take], take.nonzero().squeeze(1)
            chosen[rows], kept[rows], failed[rows] = w, ok[take], walk.failed[take]
            for k, f in walk.features.items():
                if k not in lower:
                    lower[k] = f.new_zeros((n,) + f.shape[1:])
                lower[k][rows] = f[where]
            for s in walk.stats:
                name, it, cost, sec = low_stats.get(s.index, (s.name, torch.zeros_like(kept, dtype=torch.long),
                                                              x.new_zeros(n), 0.0))
                it[rows], cost[rows] = s.iterations[where], s.cost[where]
                low_stats[s.index] = (name, it, cost, sec + s.seconds)
            pending = pending[~take]
            if len(pending) == 0:
                break
        for k, f in lower.items():
            features[k] = f
        stats = upper.stats + [LayerStats(k, *v) for k, v in sorted(low_stats.items(), reverse=True)]
        for k in range(n_layers):
            acts[k + 1] = None
        attribution = self._map(features[0], x) if x.dim() == 4 else None
        return InverseResult(features, attribution, classes, failed, stats, chosen, kept)

    def _map(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """This setting's attribution map of inverse inputs `x_hat` of `x` (`attribution_map`)."""
        return attribution_map(x_hat, x, self.attribution, sigma=self.map_sigma, smoothing=self.map_smoothing,
                               fill_sigma=self.map_fill_sigma, clip=self.map_clip)

    def _solves(self, k, acts) -> bool:
        """Whether layer k is solved by optimisation (not a reshape, ReLU or unpooling)."""
        layer = self.stack.layers[k]
        return isinstance(layer, (nn.Conv2d, nn.Linear, nn.AvgPool2d, nn.AdaptiveAvgPool2d)) \
            and not _is_identity_pool(layer, acts[k], acts[k + 1])

    def _walk(self, acts, idx, t, failed, order, classes, top, lam, unpooled=False, free=False) -> "_Walk":
        """Walk the layers of `order` (top down) from target `t` for the images `idx` (None: all).

        Returns the kept features (every layer's with ``keep_features``, else
        the input's), the failures, the per-layer stats, the target left at
        the bottom and whether it came through a max-unpooling. With `free`,
        each forward activation is dropped once used.
        """
        layers, names = self.stack.layers, self.stack.names
        features, stats = {}, []
        failed = failed.clone()
        if self.progress:
            from tqdm.auto import tqdm
            order = tqdm(order, desc="layers", leave=False)
        for k in order:
            layer = layers[k]
            below = acts[k] if idx is None else acts[k][idx]
            if isinstance(layer, (nn.Dropout,)):
                pass
            elif isinstance(layer, nn.Flatten):
                t = t.reshape(below.shape)
            elif isinstance(layer, nn.ReLU):
                t = t * (below > 0)
            elif isinstance(layer, (nn.MaxPool2d, nn.AdaptiveMaxPool2d)):
                t = _unpool(layer, t, below)
                unpooled = True
            elif self._solves(k, acts):
                t0 = time.perf_counter()
                above = acts[k + 1] if idx is None else acts[k + 1][idx]
                t, st = self._solve_layer(k, layer, t, below, above, classes if k == top else None,
                                          lam, unpooled)
                unpooled = False
                stats.append(LayerStats(k, names[k], st.iterations, st.cost, time.perf_counter() - t0))
            elif isinstance(layer, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):  # an identity pool
                t = t.reshape(below.shape)
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
            if free:
                acts[k + 1] = None  # no longer needed: free it as the walk goes down
        return _Walk(features, failed, stats, t, unpooled)

    def _solve_layer(self, k, layer, t, below, above, classes, lam, unpooled=False):
        """Solve layer k's inverse; `lam` is a number or one per sample ``(N,)``."""
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
            mask = target_mask(t, below.shape[-2:], self.mask_dilation if unpooled else 1)
        relu = isinstance(layer, (nn.Conv2d, nn.Linear)) and (
            self.relu_in_objective == "always"
            or (k + 1 < len(self.stack.layers) and isinstance(self.stack.layers[k + 1], nn.ReLU)))
        lam = 0.0 if classes is not None else lam
        if classes is None and self.penalty_scale == "forward":
            # lam * ||y_l|| * R(x) / R(x_l): the penalty in units of the data term
            out_norm = above.flatten(1).norm(dim=1)
            if self.penalty == "l2":
                lam = lam * out_norm / bound.flatten(1).norm(dim=1).clamp_min(1e-12)
            else:  # R = ||m x||_1 / sqrt(size) in the solver
                size = bound[0].numel()
                lam = lam * out_norm * math.sqrt(size) / bound.flatten(1).abs().sum(dim=1).clamp_min(1e-12)
        forward = RowWise(layer) if self._rowwise else layer
        dtype = bound.dtype
        if classes is not None and self.solver == "fista" and dtype == torch.float32 \
                and bound.device.type in ("cpu", "cuda"):
            # The margin layer (no penalty, a few logits) has many minimisers; in float32 the
            # rounding of the batch picks among them (issue 12). It is tiny: solve it in float64.
            forward = copy.deepcopy(layer).double()
            lo, hi, bound = lo.double(), hi.double(), bound.double()
        problem = LayerProblem(
            forward=forward, lo=lo, hi=hi, x0=avgpool_init(bound),
            target=None if classes is not None else t, classes=classes, relu=relu, mask=mask,
            lam=lam, penalty=self.penalty)
        if self.solver == "paper":
            res = solve_paper(problem, max_iter=self.max_iter)
        else:
            res = solve_fista(problem, max_iter=self.max_iter, tol=self.tol,
                              op_norm=None if classes is not None else self._op_norm(k, layer, below))
        if res.x.dtype != dtype:
            res.x, res.cost = res.x.to(dtype), res.cost.to(dtype)
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
