"""Per-layer optimisation problems of the layer-wise inverse, and two solvers.

One layer's inverse solves, independently for each sample n of a batch,

    minimise_x   D_n(x) + lam * R_n(x)    subject to   lo_n <= x <= hi_n

where D is either the target-matching term ``||t - act(A x + b)||_2`` (``act``
is a ReLU where the network has one) or, at the logits, the class margin
``max_{j != c} z_j - z_c``; and R is the mask-weighted sparsity penalty,
``||m * x||_2`` (the paper) or ``||m * x||_1 / sqrt(size)``.

`solve_paper` reproduces the authors' projected-gradient iteration exactly
(step and stopping rules included); `solve_fista` is the default: an
accelerated proximal-gradient method with a per-sample backtracking step,
monotone restarts and a scale-free stopping rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable, Optional, Union

import torch
import torch.nn.functional as F

from invnb.inverse.operators import Affine, operator_norm

__all__ = ["LayerProblem", "SolveResult", "avgpool_init", "forward_penalty", "solve_fista", "solve_paper"]



def _flat_norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1)


def _per_sample(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape a (N,) tensor to broadcast against `like` (N, ...)."""
    return v.reshape((-1,) + (1,) * (like.dim() - 1))


@dataclass
class LayerProblem:
    """One layer's inverse problem for a batch of N independent samples.

    Parameters
    ----------
    forward : callable
        ``x -> z``: the layer's affine map (before any activation), batch-wise.
    lo, hi : torch.Tensor
        Box bounds shaped like `x` ``(N, ...)``, with ``lo <= 0 <= hi``.
    x0 : torch.Tensor
        Starting point ``(N, ...)`` (need not be feasible).
    target : torch.Tensor, optional
        Output target ``t`` shaped like ``forward(x)``; the data term is
        ``||t - act(z)||_2``. Exactly one of `target` and `classes` is given.
    classes : torch.Tensor, optional
        ``(N,)`` class indices; the data term is the margin ``max_{j!=c} z_j - z_c``.
    relu : bool
        Apply a ReLU to ``z`` in the data term.
    mask : torch.Tensor, optional
        Non-negative weights broadcastable to `x` for the penalty (None: all ones).
    lam : float or torch.Tensor
        Penalty weight (``mask_weight``), one number or one per sample ``(N,)``.
    penalty : {"l2", "l1"}
        ``"l2"``: ``||m x||_2`` (the paper); ``"l1"``: ``||m x||_1 / sqrt(size)``.
    smoothing : float or torch.Tensor
        With `classes`: replace the max in the margin by ``tau * logsumexp(. / tau)``
        with ``tau = smoothing``, a number or one per sample ``(N,)`` (0: the
        exact, non-smooth margin).
    """

    forward: Callable[[torch.Tensor], torch.Tensor]
    lo: torch.Tensor
    hi: torch.Tensor
    x0: torch.Tensor
    target: Optional[torch.Tensor] = None
    classes: Optional[torch.Tensor] = None
    relu: bool = False
    mask: Optional[torch.Tensor] = None
    lam: Union[float, torch.Tensor] = 0.0
    penalty: str = "l2"
    smoothing: Union[float, torch.Tensor] = 0.0

    def __post_init__(self):
        if (self.target is None) == (self.classes is None):
            raise ValueError("give exactly one of target and classes")
        if self.penalty not in ("l1", "l2"):
            raise ValueError(f"penalty must be 'l1' or 'l2', got {self.penalty!r}")

    @property
    def size(self) -> int:
        """Number of unknowns per sample."""
        return self.x0[0].numel()

    def subset(self, idx: torch.Tensor) -> "LayerProblem":
        """The same problem restricted to samples `idx`."""
        def pick(t):
            if t is None or t.shape[0] == 1 and len(self.x0) != 1:
                return t  # None, or a mask shared by all samples
            return t[idx]
        smoothing = self.smoothing[idx] if isinstance(self.smoothing, torch.Tensor) else self.smoothing
        lam = self.lam[idx] if isinstance(self.lam, torch.Tensor) else self.lam
        return replace(self, lo=self.lo[idx], hi=self.hi[idx], x0=self.x0[idx], smoothing=smoothing, lam=lam,
                       target=pick(self.target), classes=pick(self.classes), mask=pick(self.mask))

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """Euclidean projection onto the box."""
        return torch.minimum(torch.maximum(x, self.lo), self.hi)

    def data_cost(self, x: torch.Tensor) -> torch.Tensor:
        """Data term per sample, ``(N,)``."""
        z = self.forward(x)
        if self.classes is not None:
            c = self.classes.reshape(-1, 1)
            zc = z.gather(1, c).squeeze(1)
            gaps = z.scatter(1, c, float("-inf")) - zc[:, None]
            if isinstance(self.smoothing, torch.Tensor) or self.smoothing > 0:
                tau = torch.as_tensor(self.smoothing, dtype=z.dtype, device=z.device).reshape(-1, 1)
                return tau[:, 0] * torch.logsumexp(gaps / tau, dim=1)
            return gaps.amax(dim=1)
        if self.relu:
            z = F.relu(z)
        return _flat_norm(self.target - z)

    def penalty_cost(self, x: torch.Tensor) -> torch.Tensor:
        """Penalty term per sample (without `lam`), ``(N,)``."""
        if not self.has_penalty:
            return x.new_zeros(x.shape[0])
        mx = x if self.mask is None else self.mask * x
        if self.penalty == "l2":
            return _flat_norm(mx)
        return mx.abs().flatten(1).sum(dim=1) / math.sqrt(self.size)

    @property
    def has_penalty(self) -> bool:
        """Whether any sample has a positive penalty weight."""
        return bool(torch.as_tensor(self.lam).gt(0).any())

    def cost(self, x: torch.Tensor) -> torch.Tensor:
        """Objective per sample, ``(N,)``."""
        return self.data_cost(x) + self.lam * self.penalty_cost(x)


@dataclass
class SolveResult:
    """Solution of a batch of layer problems.

    Attributes
    ----------
    x : torch.Tensor
        Solutions ``(N, ...)``, inside the box.
    iterations : torch.Tensor
        ``(N,)`` gradient evaluations used per sample.
    cost : torch.Tensor
        ``(N,)`` final objective.
    history : torch.Tensor or None
        ``(iterations, N)`` objective after each iteration (frozen once a sample
        stops), when requested.
    """

    x: torch.Tensor
    iterations: torch.Tensor
    cost: torch.Tensor
    history: Optional[torch.Tensor] = field(default=None, repr=False)


def _value_and_grad(fn, x):
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        v = fn(x)
        (g,) = torch.autograd.grad(v.sum(), x)
    return v.detach(), g


def forward_penalty(lam, penalty: str, above: torch.Tensor, bound: torch.Tensor):
    """The penalty weight in units of the data term: ``lam * ||y_l|| / R(x_l)`` per sample.

    The penalty ``lam * R(x)`` becomes ``lam * ||y_l|| * R(x) / R(x_l)`` (``penalty_scale="forward"``).

    Parameters
    ----------
    lam : float or torch.Tensor
        The weight, a number or one per sample ``(N,)``.
    penalty : {"l1", "l2"}
        The penalty ``R``: ``||x||_2``, or ``||x||_1 / sqrt(size)`` as in :class:`LayerProblem`.
    above, bound : torch.Tensor
        ``(N, ...)`` the layer's forward output ``y_l`` and the bound ``x_l`` of its box.

    Returns
    -------
    torch.Tensor
        ``(N,)`` weights.
    """
    out_norm = above.flatten(1).norm(dim=1)
    if penalty == "l2":
        return lam * out_norm / bound.flatten(1).norm(dim=1).clamp_min(1e-12)
    size = bound[0].numel()
    return lam * out_norm * math.sqrt(size) / bound.flatten(1).abs().sum(dim=1).clamp_min(1e-12)


def avgpool_init(bound: torch.Tensor) -> torch.Tensor:
    """The paper's starting point: the bound smoothed by a width-5 average pool."""
    if bound.dim() == 4:
        return F.avg_pool2d(bound, 5, stride=1, padding=2)
    if bound.dim() == 2:
        return F.avg_pool1d(bound.unsqueeze(1), 5, stride=1, padding=2).squeeze(1)
    return bound.clone()


@torch.no_grad()
def solve_paper(problem: LayerProblem, max_iter: int = 3000, window: int = 10,
                std_threshold: float = 0.1, record_history: bool = False) -> SolveResult:
    """The authors' projected gradient with extrapolation, sample by sample.

    Reproduces the released code (METHOD.md §3): gradient at ``x_n``, step
    ``s = 0.5 / (max|2 grad f| + 1e-6)`` halved at the first iteration and
    whenever the bound falls below it, extrapolation ``(n-1)/(n+2)`` from the
    previous iteration (so -1/2 at the second step), stop when the unbiased
    standard deviation of the last `window` costs is below `std_threshold`
    (absolute) or after `max_iter` iterations. Samples do not interact, so a
    batch gives the same result as one call per image.
    """
    x = problem.x0.clone()
    xp = x.clone()
    n_samples = x.shape[0]
    beta = 0.0
    step = None
    buf = x.new_zeros(n_samples, window)
    active = torch.ones(n_samples, dtype=torch.bool, device=x.device)
    out = x.clone()
    iters = torch.zeros(n_samples, dtype=torch.long, device=x.device)
    final_cost = x.new_zeros(n_samples)
    history = []
    n = 0
    while True:
        _, g = _value_and_grad(problem.cost, x)
        crit = 0.5 / (_per_sample((2 * g).abs().flatten(1).amax(dim=1), g) + 1e-6)
        step = 0.5 * crit if step is None else torch.where(step > crit, 0.5 * crit, step)
        xl = problem.project(x + beta * (x - xp) - step * g)
        fxl = problem.cost(xl)
        beta = (n - 1) / (n + 2)
        done = torch.zeros_like(active)
        if n < window:
            buf[:, n] = fxl
        else:
            done = active & ((buf.std(dim=1) < std_threshold) | (n > max_iter))
            buf = torch.cat([buf[:, 1:], fxl[:, None]], dim=1)
        iters[active] = n + 1
        final_cost = torch.where(active, fxl, final_cost)
        out[done] = xl[done]
        active &= ~done
        if record_history:
            history.append(final_cost.clone())
        if not active.any():
            break
        xp, x = x, xl
        n += 1
    return SolveResult(out, iters, final_cost, torch.stack(history) if record_history else None)


@torch.no_grad()
def solve_fista(problem: LayerProblem, max_iter: int = 300, tol: float = 1e-3, window: int = 5,
                min_iter: int = 5, growth: float = 1.25, op_norm: Optional[float] = None,
                record_history: bool = False, chunk: Optional[int] = None) -> SolveResult:
    """Batched accelerated proximal gradient (FISTA) with backtracking and restart.

    The smooth part is the data term (plus the L2 penalty, which is smooth away
    from zero); the L1 penalty and the box are handled exactly by their joint
    proximal map, a soft threshold followed by clipping (valid because every box
    contains 0). Each sample has its own step, found by backtracking from a
    Lipschitz estimate ``||A||^2 / ||r||`` and grown by `growth` after each
    accepted step; a step that would raise the objective by more than 100 ulp
    (the rounding of a flat objective must not decide) restarts the momentum
    (monotone FISTA). A sample stops when its objective fell by less than a
    fraction `tol` of its value over the last `window` iterations (scale-free),
    or after `max_iter` iterations. Converged samples leave the batch. Every
    test is per sample; for results independent of the batch's rounding too,
    wrap the layer in `RowWise`.

    Parameters
    ----------
    op_norm : float, optional
        Operator norm of the layer's linear part; estimated when omitted.
    chunk : int, optional
        Solve the samples in consecutive chunks of this many (None or 0: all at once); for a
        row-wise layer (`RowWise`) the numbers are the same, and small chunks stay in the cache.

    Notes
    -----
    The class margin is piecewise linear, where proximal gradient stalls at the
    kinks; it is solved by continuation on a log-sum-exp smoothing
    (``tau = 0.1, 0.01, 0.001, 1e-4`` times the spread of the logits at the
    start), each stage warm-started from the last, with a 100 times tighter
    tolerance (the logit layer is cheap). `cost` is the exact margin.
    """
    if problem.classes is not None and not isinstance(problem.smoothing, torch.Tensor) \
            and problem.smoothing == 0:
        with torch.no_grad():
            z = problem.forward(problem.project(problem.x0))
        spread = (z.amax(dim=1) - z.amin(dim=1)).clamp_min(1e-6)  # per sample
        x, iters, hist = problem.x0, 0, []
        stage_iter = max(1, max_iter // 4)
        for tau in (0.1, 0.01, 1e-3, 1e-4):
            res = solve_fista(replace(problem, x0=x, smoothing=tau * spread), max_iter=stage_iter,
                              tol=tol * 1e-2, window=window, min_iter=max(min_iter, 20), growth=growth,
                              record_history=record_history)
            x, iters = res.x, iters + res.iterations
            if record_history:
                hist.append(res.history)
        exact = problem.cost(x)
        return SolveResult(x, iters, exact, torch.cat(hist) if record_history else None)
    n_samples = problem.x0.shape[0]
    if chunk and chunk < n_samples and problem.classes is None and not record_history:
        kw = dict(max_iter=max_iter, tol=tol, window=window, min_iter=min_iter, growth=growth, op_norm=op_norm)
        return concat_solves([solve_fista(problem.subset(slice(i, i + chunk)), **kw)
                              for i in range(0, n_samples, chunk)])
    x = problem.project(problem.x0)
    dev = x.device
    l1 = problem.penalty == "l1" and problem.has_penalty
    aff = Affine.of(problem.forward) if problem.classes is None else None
    smooth_penalty = not l1 and problem.has_penalty  # an L2 penalty, smooth away from 0

    def lin(z):
        """``A z`` on the fast path, else None."""
        return aff.apply(z) if aff is not None else None

    def residual(p, pre):
        """``t - act(A z + b)`` from the pre-activation."""
        return p.target - (F.relu(pre) if p.relu else pre)

    def with_penalty(p, v, z):
        """``v`` plus the penalty where it is smooth (L2); an L1 penalty is left to the prox."""
        return v + p.lam * p.penalty_cost(z) if smooth_penalty else v

    def smooth(p, z):
        return with_penalty(p, p.data_cost(z), z)

    def smooth_at(p, z, az):
        """Smooth part's value per sample, from ``A z`` when known."""
        if az is None:
            return smooth(p, z)
        pre = aff.bias(az)
        if p.relu:  # t - relu(pre) in one buffer (the numbers of `residual`); `az` itself is kept
            r = F.relu(pre, inplace=pre is not az)
            r = torch.sub(p.target, r, out=r)
        else:
            r = p.target - pre
        return with_penalty(p, _flat_norm(r), z)

    def smooth_grad_at(p, z, az):
        """Smooth part's value and gradient, from ``A z`` when known (one adjoint)."""
        if az is None:
            return _value_and_grad(lambda u: smooth(p, u), z)
        pre = aff.bias(az)
        if p.relu:
            r = F.relu(pre)
            r = torch.sub(p.target, r, out=r)
        else:
            r = p.target - pre
        v = _flat_norm(r)
        g_out = r.mul_(_per_sample(-1.0 / v.clamp_min(1e-30), r))  # d||r||/d(act) = -r / ||r||
        if p.relu:
            g_out = g_out.masked_fill_(pre <= 0, 0.0)
        grad = aff.adjoint(g_out, z)
        if smooth_penalty:
            pv, pg = _value_and_grad(lambda u: p.lam * p.penalty_cost(u), z)
            v, grad = v + pv, grad + pg
        return v, grad

    def nonsmooth(p, z):
        return p.lam * p.penalty_cost(z) if l1 else z.new_zeros(z.shape[0])

    nonneg = bool((problem.lo == 0).all())  # hidden layers: the box is [0, hi]

    def prox(p, v, s):
        """The proximal map of the L1 penalty and the box at `v` (overwritten)."""
        if l1:
            thr = _per_sample(s * p.lam / math.sqrt(p.size), v)
            if p.mask is not None:
                thr = thr * p.mask
            if nonneg:  # soft threshold and clip in one go: clip(v - thr, 0, hi)
                return torch.minimum(v.sub_(thr).clamp_(min=0), p.hi, out=v)
            v = torch.sign(v) * F.relu(v.abs() - thr)
        return p.project(v)

    def trial(p, y, grad, step):
        """The proximal gradient step from `y` with steps ``(N,)``, its ``A z`` and smooth value."""
        v = grad * _per_sample(step, y)
        z = prox(p, torch.sub(y, v, out=v), step)
        az = lin(z)
        return z, az, smooth_at(p, z, az)

    # Initial step per sample from a Lipschitz estimate of the smooth part.
    ax = lin(x)
    if problem.classes is not None:
        fx, g0 = _value_and_grad(lambda z: smooth(problem, z), x)
        # Piecewise-linear margin: a step that can cross the box in one go.
        step = _flat_norm(problem.hi - problem.lo) / _flat_norm(g0).clamp_min(1e-12)
    else:
        # one pass through the layer gives both the objective and the residual of the step estimate
        resid = _flat_norm(residual(problem, problem.forward(x) if ax is None else aff.bias(ax)))
        fx = with_penalty(problem, resid, x)
        if op_norm is None:
            op_norm = operator_norm(problem.forward, x[:1])
        lip = op_norm ** 2 / resid.clamp_min(1e-12)
        if smooth_penalty:
            m = problem.mask if problem.mask is not None else torch.ones_like(x)
            m2 = (m * m).flatten(1).amax(dim=1) if m.shape[0] == n_samples else (m * m).max().expand(n_samples)
            lip = lip + problem.lam * m2 / problem.penalty_cost(x).clamp_min(1e-12)
        step = 1.0 / lip.clamp_min(1e-12)
    fx = fx + nonsmooth(problem, x)

    # out, out_cost and iters get each sample's row when it stops
    out = x.clone()
    out_cost = fx.clone()
    iters = torch.zeros(n_samples, dtype=torch.long, device=dev)
    idx = torch.arange(n_samples, device=dev)  # samples still running
    p = problem
    y = x
    ay = ax
    t = torch.ones(n_samples, dtype=x.dtype, device=dev)
    hist = fx[:, None].repeat(1, window + 1)
    history = [out_cost.clone()] if record_history else None

    slack = 100 * torch.finfo(x.dtype).eps
    for it in range(1, max_iter + 1):
        gy, grad = smooth_grad_at(p, y, ay)
        # Backtracking on the quadratic upper model, at most 40 trials. A sample whose step
        # was too long has it halved and is tried again; on the fast path only those samples
        # are recomputed (the others' trial stands, and each sample's numbers are its own).
        z, az, gz = trial(p, y, grad, step)
        bad = _too_long(gz, gy, grad, z, y, step)
        for _ in range(39):
            if not bad.any():
                break
            step = torch.where(bad, 0.5 * step, step)
            if aff is None:  # a generic layer: the whole batch again, as its rounding may depend on it
                z, az, gz = trial(p, y, grad, step)
                bad = _too_long(gz, gy, grad, z, y, step)
                continue
            r = bad.nonzero().squeeze(1)
            pr, yr, gr, sr = p.subset(r), y[r], grad[r], step[r]
            zr, azr, gzr = trial(pr, yr, gr, sr)
            z[r], az[r], gz[r] = zr, azr, gzr
            bad = torch.zeros_like(bad)
            bad[r] = _too_long(gzr, gy[r], gr, zr, yr, sr)
        else:
            step = torch.where(bad, 0.5 * step, step)
        fz = gz + nonsmooth(p, z)
        # Monotone test with a slack of 100 ulp: where the objective is flat (a non-unique
        # solution) fz - fx is 0 up to rounding, and an exact ``fz <= fx`` would accept or
        # reject a long step by a coin flip of the rounding (measured: 0.007 relative change of
        # a layer's inverse from a 1-ulp difference of the cost).
        better = fz <= fx + slack * fx.abs()
        t_next = 0.5 * (1 + torch.sqrt(1 + 4 * t * t))
        momentum = _per_sample((t - 1) / t_next, z)
        y = torch.sub(z, x).mul_(momentum).add_(z)  # z + momentum * (z - x)
        if aff is not None:  # A y by linearity, no forward pass
            ay = torch.sub(az, ax).mul_(momentum).add_(az)
        if not bool(better.all()):  # a restart: those samples stay at x, without momentum
            r = (~better).nonzero().squeeze(1)
            y[r] = z[r] = x[r]
            if aff is not None:
                ay[r] = az[r] = ax[r]
        x, ax = z, az
        t = torch.where(better, t_next, torch.ones_like(t))
        fx = torch.where(better, fz, fx)
        step = torch.where(better, step * growth, step)

        hist = torch.cat([hist[:, 1:], fx[:, None]], dim=1)
        scale = torch.maximum(fx.abs(), hist[:, 0].abs()).clamp_min(1e-12)
        stop = (it >= max(min_iter, window)) & ((hist[:, 0] - fx) <= tol * scale)
        if it == max_iter:
            stop = torch.ones_like(stop)
        if record_history:
            iters[idx], out[idx], out_cost[idx] = it, x, fx
            history.append(out_cost.clone())
        if stop.all():
            iters[idx], out[idx], out_cost[idx] = it, x, fx
            break
        if stop.any():
            done = idx[stop]
            iters[done], out[done], out_cost[done] = it, x[stop], fx[stop]
            keep = ~stop
            idx, p = idx[keep], p.subset(keep.nonzero().squeeze(1))
            x, y, t, fx, step, hist = x[keep], y[keep], t[keep], fx[keep], step[keep], hist[keep]
            if aff is not None:
                ax, ay = ax[keep], ay[keep]
    return SolveResult(out, iters, out_cost, torch.stack(history) if record_history else None)


def concat_solves(parts: list) -> SolveResult:
    """The solves of consecutive chunks of a batch as one `SolveResult` (without histories)."""
    if len(parts) == 1:
        return parts[0]
    return SolveResult(torch.cat([q.x for q in parts]), torch.cat([q.iterations for q in parts]),
                       torch.cat([q.cost for q in parts]))


def _too_long(gz: torch.Tensor, gy: torch.Tensor, grad: torch.Tensor, z: torch.Tensor, y: torch.Tensor,
              step: torch.Tensor) -> torch.Tensor:
    """Per sample ``(N,)``: the smooth value `gz` at `z` lies above its quadratic model around `y`
    (value `gy`, gradient `grad`, curvature ``1 / step``), i.e. the step was too long."""
    d = (z - y).flatten(1)
    linear = (grad.flatten(1) * d).sum(1)
    model = gy + linear + d.mul_(d).sum(1) / (2 * step)
    return gz > model + 1e-6 * gy.abs() + 1e-12
