"""The layer-wise inverse of a CNN (Kwon et al., IEEE TNNLS 2021): the top-down walk."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from invnb._utils.precision import full_precision
from invnb.inverse.auto import choose_weights
from invnb.inverse.layers import LayerStack
from invnb.inverse.maps import (
    attribution_map,
)
from invnb.inverse.operators import RowWise, operator_norm
from invnb.inverse.output_fit import check_output_target, fit_walk
from invnb.inverse.residual import CompositeLayer
from invnb.inverse.result import InverseResult, LayerStats, concat_results
from invnb.inverse.settings import (
    CHUNK_ELEMENTS, DEFAULT_ATTRIBUTION, DEFAULT_AUTO_EMPTY, DEFAULT_AUTO_MAX_ITER, DEFAULT_AUTO_WEIGHTS,
    DEFAULT_MAP_CLIP, DEFAULT_MAP_FILL_SIGMA, DEFAULT_MAP_SIGMA, DEFAULT_MAP_SMOOTHING, DEFAULT_MASK_DILATION,
    RESIDUAL_AUTO_MAX_ITER, check_options, setting_kwargs,
)
from invnb.inverse.solver import LayerProblem, avgpool_init, forward_penalty, solve_fista, solve_paper
from invnb.inverse.targets import (
    check_input,
    is_identity_pool,
    parse_target,
    rescale_target,
    target_mask,
    top_affine,
    unpool,
)

__all__ = ["LayerwiseInverse"]


Target = Union[None, int, Sequence[int], torch.Tensor]


@dataclass
class _Walk:
    """What a walk over some layers left (see `LayerwiseInverse._walk`)."""

    features: dict
    failed: torch.Tensor
    stats: list
    t: torch.Tensor
    unpooled: bool


class LayerwiseInverse:
    """Layer-wise inverse of a feed-forward CNN (Kwon et al., IEEE TNNLS 2021).

    From a target at the top (a class, or an output to reproduce) the inverse walks the
    network down one layer at a time. Each Conv2d/Linear layer's inverse is a constrained
    problem (:class:`~invnb.inverse.solver.LayerProblem`): reproduce the target through the
    layer, stay in the box the forward pass allows (``0 <= x <= max(0, x_l)`` in hidden
    layers, a pixel-wise attenuation of the image at the input) and activate as little as
    possible (weight `mask_weight`, spatial mask ``m = 1 - S / max S`` of the target).
    Max pooling is undone with the forward pass's switches. The inverse input gives the
    attribution map (:func:`~invnb.inverse.maps.attribution_map`). Named settings:
    :meth:`from_setting`; why each default has its value: ``book/method_evidence.md``.

    Parameters
    ----------
    model : nn.Module
        A torchvision VGG or any plain stack of Conv2d/ReLU/pooling/Flatten/Dropout/
        BatchNorm2d/Linear layers (:class:`~invnb.inverse.layers.LayerStack`), or a residual
        network such as torchvision's ResNet, each residual sum inverted as one problem over
        the block's input (:mod:`invnb.inverse.residual`).
    mask_weight : float or "auto"
        Weight of the sparsity penalty (the paper: 0.7 for VGG, 0.15 for VDSR). ``"auto"``:
        per image, the largest of `auto_weights` whose inverse input the model still assigns
        to the explained class (top-1); where none does, the smallest, flagged in
        ``InverseResult.kept_class``. Needs class targets.
    auto_weights : sequence of float
        Candidates of ``"auto"``.
    auto_empty : bool
        With ``"auto"``: an inverse that vanished may be chosen when the model still gives the
        class on it (a randomised model; its map is then empty).
    mask_dilation : int
        Odd side of a max filter applied to a max-unpooled target before its mask is built
        (1: none, the paper).
    attribution : {"ratio", "abs", "abs_x"}
        Kind of ``InverseResult.attribution`` ("ratio" is the paper's).
    map_sigma, map_smoothing, map_clip, map_fill_sigma
        The map's Gaussian (pixels; 0: none), its use (``"weight"``: ``a * G(a)``,
        ``"blur"``: ``G(a)``), the quantile at which it is clipped first (1: none) and its
        faint secondary key (pixels; 0: none). They change the map only, never the inverse.
    penalty : {"l1", "l2"}
        ``"l2"``: the paper's ``||m * x||_2``; ``"l1"``: ``||m * x||_1 / sqrt(size)``.
    penalty_scale : {"none", "forward"}
        ``"forward"``: the penalty relative to the forward pass, ``lam * ||y_l|| * R(x) / R(x_l)``.
    solver : {"fista", "paper"}
        Batched accelerated proximal gradient with a scale-free stopping rule, or the paper's iteration.
    max_iter : int, optional
        Iteration cap per layer. None: 3000 for the paper solver; 300 for fista, except with
        ``mask_weight="auto"``, whose walks solve each layer below the margin layer in
        `DEFAULT_AUTO_MAX_ITER` iterations, `RESIDUAL_AUTO_MAX_ITER` in a network with residual
        sums (the margin layer runs to `tol`, at most 300).
    tol : float
        Relative stopping tolerance of fista.
    relu_in_objective : {"mirror", "always"}
        A ReLU in a layer's data term only where the network has one, or after every layer
        (the paper's code; wrong for VDSR's last layer).
    scale_bound : bool
        Scale the box bound with the target's rescaling factor (the paper's VDSR script).
    target_scale : {"forward", "none", "active"}
        How an output target is rescaled before each layer: to the norm of the layer's forward
        output (the paper), not at all, or to the norm of what the next layer sees.
    batch_size : int, optional
        Images inverted at once (None: all).
    progress : bool
        A progress bar over layers.
    check_model : bool
        Also check, by running it, that the layer stack reproduces the model's output.
    batch_invariant : bool, optional
        Evaluate layers one sample at a time so that an image's inverse does not depend on its
        batch. None: True on a CPU, False on a GPU.
    keep_features : bool
        Keep every layer's inverse feature (False: only the input's and the top target).
    output_fit, output_fit_evals : float or None, int
        With an output target, a last step: move the inverse input inside its box until the model's
        output is within relative error `output_fit` of the target, with at most `output_fit_evals`
        network evaluations per image (:mod:`invnb.inverse.output_fit`; cost: the last ``stats``). None: none.

    Examples
    --------
    >>> from invnb.models import load_embedded_model
    >>> from invnb.datasets import make_shapes, normalize
    >>> inv = LayerwiseInverse(load_embedded_model())
    >>> res = inv.invert(normalize(make_shapes(2, seed=1).images))   # explain the predicted classes
    >>> tuple(res.attribution.shape), tuple(res.input.shape)
    ((2, 64, 64), (2, 3, 64, 64))
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
                 keep_features: bool = True, batch_invariant: Optional[bool] = None,
                 output_fit: Optional[float] = None, output_fit_evals: int = 100):
        check_options(mask_weight=mask_weight, auto_weights=auto_weights, mask_dilation=mask_dilation,
                      attribution=attribution, map_sigma=map_sigma, map_smoothing=map_smoothing,
                      map_fill_sigma=map_fill_sigma, map_clip=map_clip, penalty=penalty, penalty_scale=penalty_scale,
                      solver=solver, max_iter=max_iter, tol=tol, relu_in_objective=relu_in_objective,
                      target_scale=target_scale, batch_size=batch_size, batch_invariant=batch_invariant,
                      output_fit=output_fit, output_fit_evals=output_fit_evals)
        auto_weights = tuple(float(w) for w in auto_weights)
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
        #: iteration cap of the layers below the margin layer (the candidates' walks of "auto")
        residual = any(isinstance(layer, CompositeLayer) for layer in self.stack.layers)
        self.auto_max_iter = (RESIDUAL_AUTO_MAX_ITER if residual else DEFAULT_AUTO_MAX_ITER) \
            if (max_iter is None and solver == "fista" and mask_weight == "auto") else self.max_iter
        self.tol = tol
        self.relu_in_objective = relu_in_objective
        self.scale_bound = scale_bound
        self.target_scale = target_scale
        self.batch_size = batch_size
        self.progress = progress
        self.check_model = check_model
        self.keep_features = keep_features
        self.batch_invariant = batch_invariant
        self.output_fit = None if output_fit is None else float(output_fit)
        self.output_fit_evals = int(output_fit_evals)
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
        x = check_input(x)
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
        classes, out_target = parse_target(target, out)
        check_output_target(self.output_fit, classes)
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

    def _op_norm(self, k, layer, like):
        """Operator norm of layer k (cached); only a starting step, backtracking corrects it."""
        like = like[:1]
        if isinstance(layer, (nn.Conv2d, CompositeLayer)) and like.dim() == 4:
            # a convolution's norm barely depends on the image size: estimate it on a crop
            like = like[..., :48, :48]
        key = (k, tuple(like.shape[1:]), like.device, like.dtype)
        if key not in self._op_norms:
            # a composite layer (a residual sum): its linear part with every ReLU on, the same for every image
            linear = layer.linear_part if isinstance(layer, CompositeLayer) else layer
            self._op_norms[key] = operator_norm(linear, like, n_iter=8)
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
        top = top_affine(self.stack.layers) if classes is not None else -1
        if classes is not None and top < 0:
            raise ValueError("class targets need a Linear/Conv2d layer producing the logits at the top")
        features = [None] * (n_layers + 1)
        features[-1] = t
        failed = torch.zeros(n, dtype=torch.bool, device=x.device)
        ones = torch.ones(n, dtype=torch.long, device=x.device)
        if self.mask_weight != "auto":
            walk = self._walk(acts, None, t, failed, range(n_layers - 1, -1, -1), classes, top,
                              self.mask_weight, free=True)
            for k, f in walk.features.items():
                features[k] = f
            chosen = torch.full((n,), float(self.mask_weight), dtype=x.dtype, device=x.device)
            stats = walk.stats
            if self.output_fit is not None:  # output targets only (checked in _invert)
                features[0], last = fit_walk(self.stack, features[0], x, features[-1], self.output_fit,
                                             self.output_fit_evals, walk.failed)
                stats = stats + [last]
            attribution = self._map(features[0], x) if x.dim() == 4 else None
            return InverseResult(features, attribution, classes, walk.failed, stats, chosen, None, ones)

        # "auto": the layers above the first penalised one (the margin layer has no penalty)
        # are the same for every candidate: walk them once, then try the candidates from the
        # largest down, each on the images that have not kept their class at a larger one.
        # The choice equals the full grid's (the largest candidate that keeps the class).
        branch = next((k for k in range(n_layers - 1, -1, -1)
                       if k != top and self._solves(k, acts)), -1)
        upper = self._walk(acts, None, t, failed, range(n_layers - 1, branch, -1), classes, top, 0.0)
        for k, f in upper.features.items():
            features[k] = f
        starts = {}  # k -> every candidate's starting point at layer k (it depends on the forward pass only)

        def walk_lower(idx, w):
            def rows(v):
                return v if idx is None else v[idx]
            walk = self._walk(acts, idx, rows(upper.t), rows(upper.failed), range(branch, -1, -1), rows(classes),
                              top, w, unpooled=upper.unpooled, starts=starts)
            return walk, walk.features[0] if branch >= 0 else rows(upper.features[0])

        choice = choose_weights(walk_lower, self._forward, self.auto_weights, classes, upper.t, self.auto_empty)
        for k, f in choice.features.items():
            features[k] = f
        for k in range(n_layers):
            acts[k + 1] = None
        attribution = self._map(features[0], x) if x.dim() == 4 else None
        return InverseResult(features, attribution, classes, choice.failed, upper.stats + choice.stats,
                             choice.chosen, choice.kept, choice.tried)

    def _map(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """This setting's attribution map of inverse inputs `x_hat` of `x` (`attribution_map`)."""
        return attribution_map(x_hat, x, self.attribution, sigma=self.map_sigma, smoothing=self.map_smoothing,
                               fill_sigma=self.map_fill_sigma, clip=self.map_clip)

    def _solves(self, k, acts) -> bool:
        """Whether layer k is solved by optimisation (not a reshape, ReLU or unpooling)."""
        layer = self.stack.layers[k]
        return isinstance(layer, (nn.Conv2d, nn.Linear, nn.AvgPool2d, nn.AdaptiveAvgPool2d, CompositeLayer)) \
            and not is_identity_pool(layer, acts[k], acts[k + 1])

    def _walk(self, acts, idx, t, failed, order, classes, top, lam, unpooled=False, free=False,
              starts=None) -> "_Walk":
        """Walk the layers of `order` (top down) from target `t` for the images `idx` (None: all).

        Returns the kept features (every layer's with ``keep_features``, else
        the input's), the failures, the per-layer stats, the target left at
        the bottom and whether it came through a max-unpooling. With `free`,
        each forward activation is dropped once used. `starts` (a dict) keeps
        each solved layer's starting point for the whole batch, shared by all walks.
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
                t = unpool(layer, t, below)
                unpooled = True
            elif self._solves(k, acts):
                t0 = time.perf_counter()
                above = acts[k + 1] if idx is None else acts[k + 1][idx]
                x0 = None
                if starts is not None and not self.scale_bound and k != top:
                    if k not in starts:  # the bound is the forward input: the same start in every walk
                        starts[k] = avgpool_init(acts[k])
                    x0 = starts[k] if idx is None else starts[k][idx]
                t, st = self._solve_layer(k, layer, t, below, above, classes if k == top else None,
                                          lam, unpooled, x0=x0)
                unpooled = False
                stats.append(LayerStats(k, names[k], st.iterations, st.cost, time.perf_counter() - t0))
            elif isinstance(layer, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):  # an identity pool
                t = t.reshape(below.shape)
            else:  # LayerStack admits nothing else
                raise AssertionError(f"unhandled layer {names[k]}")
            mass = t.flatten(1).abs().sum(dim=1)
            bad = mass == 0
            odd = ~torch.isfinite(mass)
            if odd.any():  # a NaN or infinity in the row, or only a sum too large for the dtype
                bad |= odd & ~torch.isfinite(t).flatten(1).all(dim=1)
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

    def _solve_layer(self, k, layer, t, below, above, classes, lam, unpooled=False, x0=None):
        """Solve layer k's inverse; `lam` is a number or one per sample ``(N,)``; `x0` the start
        (None: the bound smoothed by a 5x5 average, the paper's)."""
        bound = below
        if classes is None and self.target_scale != "none":  # to the norm of this layer's forward output
            relu_above = k + 1 < len(self.stack.layers) and isinstance(self.stack.layers[k + 1], nn.ReLU)
            t, bound = rescale_target(t, below, above, self.target_scale == "active" and relu_above, self.scale_bound)
        if k == 0:  # the image: |x| <= |x_l| with the sign of x_l
            lo, hi = bound.clamp(max=0), bound.clamp(min=0)
        else:
            lo, hi = torch.zeros_like(bound), bound.clamp(min=0)
        mask = None
        if classes is None and t.dim() == 4:
            mask = target_mask(t, below.shape[-2:], self.mask_dilation if unpooled else 1)
        relu = isinstance(layer, (nn.Conv2d, nn.Linear, CompositeLayer)) and (
            self.relu_in_objective == "always"
            or (k + 1 < len(self.stack.layers) and isinstance(self.stack.layers[k + 1], nn.ReLU)))
        lam = 0.0 if classes is not None else lam
        if classes is None and self.penalty_scale == "forward":
            lam = forward_penalty(lam, self.penalty, above, bound)  # the penalty in units of the data term
        forward = RowWise(layer) if self._rowwise else layer
        dtype = bound.dtype
        if classes is not None and self.solver == "fista" and dtype == torch.float32 \
                and bound.device.type in ("cpu", "cuda"):
            # The margin layer (no penalty, a few logits) has many minimisers; in float32 the
            # rounding of the batch picks among them. It is tiny: solve it in float64.
            forward = copy.deepcopy(layer).double()
            lo, hi, bound = lo.double(), hi.double(), bound.double()
        problem = LayerProblem(
            forward=forward, lo=lo, hi=hi, x0=avgpool_init(bound) if x0 is None else x0,
            target=None if classes is not None else t, classes=classes, relu=relu, mask=mask,
            lam=lam, penalty=self.penalty)
        max_iter = self.auto_max_iter if classes is None else self.max_iter
        n = bound.shape[0]
        if self.solver == "paper":
            res = solve_paper(problem, max_iter=max_iter)
        else:  # row-wise, each sample's arithmetic is its own: chunks whose tensors stay in the cache
            chunk = n if classes is not None or not self._rowwise or CHUNK_ELEMENTS <= 0 else \
                max(1, CHUNK_ELEMENTS // max(below[0].numel(), above[0].numel()))
            res = solve_fista(problem, max_iter=max_iter, tol=self.tol, chunk=chunk,
                              op_norm=None if classes is not None else self._op_norm(k, layer, below))
        if res.x.dtype != dtype:
            res.x, res.cost = res.x.to(dtype), res.cost.to(dtype)
        return res.x, res


