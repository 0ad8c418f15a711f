"""A layer's affine map as the solvers evaluate it: one sample at a time, its adjoint, its operator norm.

:class:`RowWise` evaluates a layer one sample at a time, so that an image's inverse does not
depend on the rounding of its batch; :class:`Affine` gives the solvers ``A x``, ``A^T v`` and the
bias of a plain Conv2d/Linear so that no forward pass is repeated; :func:`operator_norm`
estimates ``||A||`` by power iteration (a starting step; backtracking corrects it).
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F

__all__ = ["Affine", "RowWise", "operator_norm"]


class RowWise(torch.nn.Module):
    """A layer applied to one sample at a time, so that its rounding cannot depend on the batch.

    A convolution (or matrix product) on N samples rounds differently from the
    same samples one by one (the library picks its blocking by shape), by
    about 1e-7 relative in float32. The solvers' stopping, step and restart
    tests can amplify that into a visibly different inverse; evaluating each
    sample alone makes every sample's arithmetic that of a batch of one.
    It costs time: a batched convolution is faster per sample than one
    sample's (on one CPU thread about a third more time per image).
    """

    def __init__(self, layer: torch.nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 1:
            return self.layer(x)
        return torch.cat([self.layer(x[i:i + 1]) for i in range(x.shape[0])])


def _rows(fn, x: torch.Tensor, *rest) -> torch.Tensor:
    """``fn(x, *rest)`` sample by sample (a batch of one each), concatenated."""
    if x.shape[0] == 1:
        return fn(x, *rest)
    return torch.cat([fn(x[i:i + 1], *rest) for i in range(x.shape[0])])


class Affine:
    """A Conv2d/Linear layer as ``x -> A x + b`` with the adjoint ``A^T``.

    The FISTA solver uses it to keep ``A x`` of its iterates: the extrapolated
    point's ``A y`` is then a linear combination, not a new forward pass, and
    the gradient needs one adjoint (one backward convolution). None of this
    changes the iterates; it only saves passes through the layer.
    """

    def __init__(self, layer, rowwise: bool = False):
        self.layer = layer
        self.rowwise = rowwise

    @staticmethod
    def of(forward) -> Optional["Affine"]:
        """The fast path for a plain Conv2d/Linear (or one in `RowWise`), None for anything else."""
        rowwise = isinstance(forward, RowWise)
        if rowwise:
            forward = forward.layer
        if isinstance(forward, torch.nn.Linear):
            return Affine(forward, rowwise)
        if isinstance(forward, torch.nn.Conv2d) and forward.padding_mode == "zeros" \
                and not isinstance(forward.padding, str):
            return Affine(forward, rowwise)
        return None

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """``A x`` (no bias)."""
        return _rows(self._apply, x) if self.rowwise else self._apply(x)

    def _apply(self, x: torch.Tensor) -> torch.Tensor:
        m = self.layer
        if isinstance(m, torch.nn.Linear):
            return F.linear(x, m.weight)
        return F.conv2d(x, m.weight, None, m.stride, m.padding, m.dilation, m.groups)

    def bias(self, az: torch.Tensor) -> torch.Tensor:
        """``A x + b`` from ``A x``."""
        b = self.layer.bias
        if b is None:
            return az
        return az + (b if az.dim() == 2 else b.reshape(1, -1, 1, 1))

    def adjoint(self, v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``A^T v``, shaped like `like` (the input)."""
        if self.rowwise:
            return _rows(lambda vi: self._adjoint(vi, (1,) + tuple(like.shape[1:])), v)
        return self._adjoint(v, like.shape)

    def _adjoint(self, v: torch.Tensor, shape) -> torch.Tensor:
        m = self.layer
        if isinstance(m, torch.nn.Linear):
            return v @ m.weight
        return torch.nn.grad.conv2d_input(shape, m.weight, v, m.stride, m.padding, m.dilation, m.groups)


def operator_norm(forward: Callable[[torch.Tensor], torch.Tensor], like: torch.Tensor,
                  n_iter: int = 15, seed: int = 0) -> float:  # pragma: no mutate (start/length of the power iteration: estimate within ~2%, a step size, not an answer)
    """Largest singular value of the linear part of `forward`, by power iteration.

    Parameters
    ----------
    forward : callable
        Affine map ``x -> A x + b`` acting on batches.
    like : torch.Tensor
        One input ``(1, ...)`` giving shape, dtype and device.
    """
    gen = torch.Generator(device="cpu").manual_seed(seed)
    v = torch.randn(like.shape, generator=gen, dtype=like.dtype).to(like.device)
    zero = torch.zeros_like(like)
    with torch.no_grad():
        b = forward(zero)
    sigma = 0.0
    for _ in range(n_iter):
        v = v / v.norm().clamp_min(1e-30)
        with torch.enable_grad():
            vv = v.detach().requires_grad_(True)
            av = forward(vv) - b
            (atav,) = torch.autograd.grad(0.5 * (av * av).sum(), vv)
        sigma = float(atav.norm().sqrt())
        v = atav.detach()
    return sigma
