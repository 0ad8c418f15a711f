"""A last step of the layer-wise inverse for output targets: fit the network's output.

The walk solves one layer at a time, each against the target the layer above
produced, so nothing in it checks the whole network: on a deep regression
network such as VDSR its inverse input ``x_hat`` can be a good attenuation of
the input whose output ``F(x_hat)`` is still far from the target, because the
network amplifies small, structured deviations of its input. This step starts
from the walk's ``x_hat`` and moves it, inside the same box (a pixel-wise
attenuation of the real input: ``|z| <= |x|`` with the sign of ``x``), until
the network's output is within a relative error ``rtol`` of the target::

    minimise_z  0.5 * ||F(z) - t||^2 / ||t||^2   subject to  min(x, 0) <= z <= max(x, 0)

by L-BFGS-B (``scipy.optimize.minimize``), stopped at the first evaluated
point with ``||F(z) - t|| / ||t|| <= rtol`` or after ``max_evals`` network
evaluations (each one forward and one backward pass). There is no sparsity
term: the real input itself is a minimiser, so the step depends on its start
and stops as soon as the output is reproduced; what the walk kept and dropped
stays, up to the corrections the output needs.

Each sample is fitted alone (a batch of one), so a sample's result does not
depend on the rest of its batch.

References
----------
Byrd, Lu, Nocedal, Zhu, "A limited memory algorithm for bound constrained
optimization", SIAM J. Sci. Comput. 16 (1995) (L-BFGS-B).
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from invnb.inverse.result import LayerStats

__all__ = ["OutputFit", "check_output_target", "fit_output", "fit_walk"]


@dataclass
class OutputFit:
    """What :func:`fit_output` returned.

    Attributes
    ----------
    x : torch.Tensor
        ``(N, ...)`` fitted inputs, inside the box, with the start's dtype and device.
    evaluations : torch.Tensor
        ``(N,)`` network evaluations (forward + backward) used per sample, the
        start's included (1: the start met `rtol` already); 0 for skipped samples.
    start_error, relative_error : torch.Tensor
        ``(N,)`` float64 ``||F(z) - t|| / ||t||`` at the start and at the result
        (NaN for skipped samples and all-zero targets).
    seconds : float
        Wall time of the whole batch.
    """

    x: torch.Tensor
    evaluations: torch.Tensor
    start_error: torch.Tensor
    relative_error: torch.Tensor
    seconds: float


class _Reached(Exception):
    """Raised inside the objective to stop L-BFGS-B: the tolerance is met or the evaluations are spent."""


def check_output_target(output_fit: Optional[float], classes) -> None:
    """Raise a ValueError when an output fit is asked for class targets (it fits an output tensor)."""
    if output_fit is not None and classes is not None:
        raise ValueError("output_fit fits the model's output to an output target (regression, VDSR); "
                         "with class targets pass output_fit=None")


def fit_output(forward: Callable[[torch.Tensor], torch.Tensor], x_hat: torch.Tensor, x: torch.Tensor,
               target: torch.Tensor, rtol: float = 0.25, max_evals: int = 100,
               skip: Optional[torch.Tensor] = None, memory: int = 10) -> OutputFit:
    """Move inverse inputs inside their box until the network reproduces its target.

    Parameters
    ----------
    forward : callable
        The network, ``(1, ...) -> (1, ...)`` (called on one sample at a time).
    x_hat : torch.Tensor
        ``(N, ...)`` starting points (the walk's inverse inputs).
    x : torch.Tensor
        ``(N, ...)`` the real inputs; the box is ``min(x, 0) <= z <= max(x, 0)``.
    target : torch.Tensor
        ``(N, ...)`` outputs to reproduce, shaped like ``forward``'s output.
    rtol : float, default 0.25
        Stop at the first point with ``||F(z) - t|| / ||t|| <= rtol`` (0: use all `max_evals`).
    max_evals : int, default 100
        Network evaluations per sample at most.
    skip : torch.Tensor, optional
        ``(N,)`` bool: samples returned as they are (e.g. a failed inverse).
    memory : int, default 10
        Correction pairs L-BFGS-B keeps (scipy's ``maxcor``).

    Returns
    -------
    OutputFit
        Per sample the evaluated point with the lowest error (the first that
        met `rtol`, if one did), its error and the evaluations used.

    Raises
    ------
    ValueError
        For a negative or non-finite `rtol`, a `max_evals` below 1, or shapes that do not match.

    Examples
    --------
    A network that doubles its input: the target ``2 * 0.6 * z0`` is reached at ``0.6 * z0``.

    >>> z0 = torch.rand(1, 1, 4, 4, dtype=torch.float64) + 0.5
    >>> fit = fit_output(lambda z: 2 * z, 0.1 * z0, z0, 1.2 * z0, rtol=1e-6)
    >>> bool(torch.allclose(fit.x, 0.6 * z0, atol=1e-5)), float(fit.start_error[0]) > 0.8
    (True, True)
    """
    from scipy.optimize import minimize

    if isinstance(rtol, bool) or not isinstance(rtol, numbers.Real) or not math.isfinite(rtol) or rtol < 0:
        raise ValueError(f"rtol must be a relative error >= 0 to reach, e.g. 0.25; got {rtol!r}")
    if isinstance(max_evals, bool) or not isinstance(max_evals, numbers.Integral) or max_evals < 1:
        raise ValueError(f"max_evals must be an integer >= 1 (network evaluations per sample), got {max_evals!r}")
    if x_hat.shape != x.shape:
        raise ValueError(f"x_hat {tuple(x_hat.shape)} and x {tuple(x.shape)} must have one shape")
    if target.shape[0] != x.shape[0]:
        raise ValueError(f"got {target.shape[0]} targets for {x.shape[0]} inputs")
    start = time.perf_counter()
    n = x.shape[0]
    out = x_hat.detach().clone()
    evals = torch.zeros(n, dtype=torch.long)
    err0 = torch.full((n,), float("nan"), dtype=torch.float64)
    err1 = err0.clone()
    for i in range(n):
        t = target[i:i + 1].detach()
        t_norm2 = float((t.double() ** 2).sum())
        if (skip is not None and bool(skip[i])) or t_norm2 == 0:
            continue
        xi = x[i:i + 1].detach()
        lo = xi.clamp(max=0).double().cpu().numpy().ravel()
        hi = xi.clamp(min=0).double().cpu().numpy().ravel()
        best = {"f": math.inf, "f0": math.nan, "z": None, "n": 0}

        def value_and_grad(v, t=t, t_norm2=t_norm2, xi=xi, best=best):
            z = torch.from_numpy(v).reshape(xi.shape).to(device=xi.device, dtype=xi.dtype).requires_grad_(True)
            with torch.enable_grad():
                f = 0.5 * ((forward(z) - t).double() ** 2).sum() / t_norm2
                (g,) = torch.autograd.grad(f, z)
            f = float(f.detach())
            best["n"] += 1
            if best["n"] == 1:
                best["f0"] = f
            if f < best["f"]:
                best["f"], best["z"] = f, z.detach().clone()
            if math.sqrt(2 * f) <= rtol or best["n"] >= max_evals:
                raise _Reached
            return f, g.double().cpu().numpy().ravel()

        v0 = np.clip(x_hat[i:i + 1].detach().double().cpu().numpy().ravel(), lo, hi)
        try:
            minimize(value_and_grad, v0, jac=True, method="L-BFGS-B", bounds=np.stack([lo, hi], axis=1),
                     options={"maxfun": max_evals, "maxiter": max_evals, "maxcor": memory, "ftol": 0.0, "gtol": 0.0})
        except _Reached:
            pass
        out[i:i + 1] = best["z"].to(out.dtype)
        evals[i] = best["n"]
        err0[i], err1[i] = math.sqrt(2 * best["f0"]), math.sqrt(2 * best["f"])
    return OutputFit(out, evals, err0, err1, time.perf_counter() - start)


def fit_walk(forward: Callable[[torch.Tensor], torch.Tensor], x_hat: torch.Tensor, x: torch.Tensor,
             target: torch.Tensor, rtol: float, max_evals: int,
             failed: torch.Tensor) -> tuple[torch.Tensor, LayerStats]:
    """The output fit as the walk's last step: :func:`fit_output`, and its cost as a :class:`LayerStats`.

    Parameters
    ----------
    forward, x_hat, x, target, rtol, max_evals
        As :func:`fit_output`.
    failed : torch.Tensor
        ``(N,)`` bool: samples whose walk failed, left as they are.

    Returns
    -------
    x_fit : torch.Tensor
        ``(N, ...)`` the fitted inverse inputs.
    stats : LayerStats
        Index -1, name ``"output_fit"``; ``iterations``: network evaluations per sample (forward
        and backward pass each); ``cost``: the relative output error reached (NaN where skipped).

    Examples
    --------
    >>> z0 = torch.rand(2, 1, 4, 4, dtype=torch.float64) + 0.5
    >>> z, st = fit_walk(lambda z: 2 * z, 0.1 * z0, z0, 1.2 * z0, 0.01, 50, torch.tensor([False, True]))
    >>> st.index, st.name, st.iterations[1].item(), bool(torch.equal(z[1], 0.1 * z0[1]))
    (-1, 'output_fit', 0, True)
    """
    fit = fit_output(forward, x_hat, x, target, rtol, max_evals, skip=failed)
    return fit.x, LayerStats(-1, "output_fit", fit.evaluations.to(x.device),
                             fit.relative_error.to(device=x.device, dtype=x.dtype), fit.seconds)
