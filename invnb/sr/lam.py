"""Local Attribution Maps (LAM) for super-resolution networks (Gu & Dong, CVPR 2021).

LAM asks which input pixels make an SR network put edges and texture into one small window of its output.
It is integrated gradients with two choices made for SR:

- **target**: the sum of the output's gradient magnitude ``sqrt(dh^2 + dw^2)`` (forward differences) over a
  ``window x window`` patch of the output: "is there an edge or texture here", not a pixel's intensity;
- **path**: progressive blurring. The baseline is the input blurred by an isotropic Gaussian of standard
  deviation ``sigma`` (truncated to ``kernel_size x kernel_size``); the path ``gamma(a)`` blurs the input
  with standard deviation ``sigma (1 - a)``, from the baseline at ``a = 0`` to the input at ``a = 1``.

The attribution of pixel ``i`` is ``int_0^1 dT(F(gamma(a)))/d gamma_i * d gamma_i/d a  da``. This module
evaluates it with the midpoint rule on ``steps`` equal steps of ``a``: the gradient at each step's midpoint
times the exact change of the path over the step, so the attributions sum to
``T(F(x)) - T(F(baseline))`` up to an ``O(1 / steps^2)`` error (reported as :attr:`LAMResult.delta`). The
**Diffusion Index** summarises how widely the attribution spreads: ``DI = 100 (1 - G)`` with ``G`` the
Gini coefficient of ``|attribution|`` (a single pixel: ``DI = 100 / n``; uniform: 100).

What the blur path can see in frequency: the path only moves the parts of the input that the baseline
removed. A sinusoid at wave vector ``(fx, fy)`` keeps the fraction ``H(fx) H(fy)`` of its amplitude in the
baseline (``H``: the frequency response of the sampled, truncated 1-D Gaussian); only ``1 - H(fx) H(fy)``
(:func:`blur_path_visibility`) travels along the path and can receive attribution. With the published
``sigma = 1.2`` that is under 5 % below about 0.04 cycles/px, half near 0.16 and nearly all above
0.3: content below that is part of the baseline, so LAM cannot attribute the output to it, however much
the network relies on it.

References
----------
Gu, Dong, "Interpreting Super-Resolution Networks with Local Attribution Maps", CVPR 2021,
https://arxiv.org/abs/2011.11036 (defaults: window 16, sigma 1.2, 50 steps, kernel 9).
Sundararajan et al., "Axiomatic Attribution for Deep Networks", ICML 2017 (integrated gradients).

Examples
--------
LAM of the 16x16 output window with top-left pixel (8, 8) for a small convolutional "SR network":

>>> net = torch.nn.Conv2d(1, 1, 3, padding=1).double()
>>> lr = torch.rand(1, 1, 40, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
>>> res = LocalAttributionMap(net, steps=8).attribute(lr, target=(8, 8))
>>> tuple(res.attributions.shape), diffusion_index(res.attributions).shape
((1, 1, 40, 40), (1,))
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "LAMResult",
    "LocalAttributionMap",
    "blur",
    "blur_path_visibility",
    "diffusion_index",
    "gaussian_kernel",
    "gradient_magnitude",
    "whole_image_target",
    "window_target",
]

#: Added under the square root of the gradient magnitude: keeps its derivative finite where the output is
#: flat (``sqrt(1e-12)`` = 1e-6 per pixel, far below an 8-bit grey level of 1 / 255).
_EPS = 1e-12


def gaussian_kernel(sigma: float, kernel_size: int = 9) -> np.ndarray:
    """The isotropic Gaussian kernel of the blur path, sampled on ``kernel_size x kernel_size`` pixels.

    Parameters
    ----------
    sigma : float
        Standard deviation in pixels (>= 0; 0 is the identity kernel).
    kernel_size : int, default 9
        Odd side.

    Returns
    -------
    numpy.ndarray
        ``(kernel_size, kernel_size)`` float64 summing to 1.

    Examples
    --------
    >>> k = gaussian_kernel(1.2)
    >>> k.shape, round(float(k.sum()), 12), bool(k[4, 4] == k.max())
    ((9, 9), 1.0, True)
    """
    kernel_size = _check_kernel_size(kernel_size)
    if not np.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma must be a non-negative number of pixels, got {sigma!r}")
    r = np.arange(kernel_size, dtype=np.float64) - kernel_size // 2
    if sigma < 1e-6:  # the limit sigma -> 0: all weight on the centre (exp would underflow to 0 / 0)
        g = (r == 0).astype(np.float64)
    else:
        g = np.exp(-0.5 * (r / sigma) ** 2)
        g /= g.sum()
    return np.outer(g, g)


def _check_kernel_size(kernel_size) -> int:
    if isinstance(kernel_size, bool) or int(kernel_size) != kernel_size or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be an odd positive integer such as 9, got {kernel_size!r}")
    return int(kernel_size)


def blur(x: torch.Tensor, sigma: float, kernel_size: int = 9) -> torch.Tensor:
    """Blur every channel with :func:`gaussian_kernel`, reflecting the image at its borders.

    Parameters
    ----------
    x : torch.Tensor
        ``(N, C, H, W)``; ``H`` and ``W`` larger than ``kernel_size // 2``.
    sigma : float
        Standard deviation in pixels (0 returns ``x`` unchanged).
    kernel_size : int, default 9
        Odd side of the kernel.

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device as ``x``.

    Examples
    --------
    >>> flat = torch.full((1, 1, 12, 12), 0.3, dtype=torch.float64)
    >>> bool(torch.allclose(blur(flat, 1.2), flat))  # a constant image is its own blur
    True
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"x must be an (N, C, H, W) tensor, got {getattr(x, 'shape', type(x).__name__)}")
    k = gaussian_kernel(sigma, kernel_size)
    pad = kernel_size // 2
    if min(x.shape[-2:]) <= pad:
        raise ValueError(f"an image of size {tuple(x.shape[-2:])} is too small for a {kernel_size}x{kernel_size} "
                         f"blur (needs more than {pad} pixels per side)")
    if pad == 0 or sigma < 1e-6:
        return x.clone()
    c = x.shape[1]
    weight = torch.as_tensor(k, dtype=x.dtype, device=x.device).expand(c, 1, kernel_size, kernel_size)
    return F.conv2d(F.pad(x, (pad, pad, pad, pad), mode="reflect"), weight, groups=c)


def blur_path_visibility(fx, fy=0.0, sigma: float = 1.2, kernel_size: int = 9) -> np.ndarray:
    """Fraction of a sinusoid's amplitude that the blur path moves (and LAM can therefore attribute).

    ``1 - H(fx) H(fy)``, with ``H`` the frequency response of the sampled, truncated, normalised 1-D
    Gaussian of :func:`gaussian_kernel` (the 2-D kernel is its outer product): the baseline keeps
    ``H(fx) H(fy)`` of the sinusoid, the path carries the rest.

    Parameters
    ----------
    fx, fy : float or array-like
        Frequencies in cycles per pixel (broadcast together).
    sigma : float, default 1.2
        The baseline's blur.
    kernel_size : int, default 9

    Returns
    -------
    numpy.ndarray
        In [0, 1] for ``sigma > 0``: 0 at frequency 0 (invisible), near 1 where the baseline kept nothing.

    Examples
    --------
    >>> [round(float(v), 2) for v in blur_path_visibility([0.02, 0.1, 0.25])]
    [0.01, 0.25, 0.83]
    """
    k = gaussian_kernel(sigma, kernel_size)
    g = k[kernel_size // 2] / k[kernel_size // 2].sum()
    r = np.arange(kernel_size) - kernel_size // 2

    def h(f):
        f = np.asarray(f, dtype=np.float64)
        return (g[None, :] * np.cos(2 * np.pi * f.reshape(-1, 1) * r[None, :])).sum(axis=1).reshape(f.shape)

    fx, fy = np.broadcast_arrays(np.asarray(fx, dtype=np.float64), np.asarray(fy, dtype=np.float64))
    return 1.0 - h(fx) * h(fy)


def gradient_magnitude(out: torch.Tensor) -> torch.Tensor:
    """LAM's edge detector: ``sqrt(dh^2 + dw^2)`` of forward differences, per pixel and channel.

    Parameters
    ----------
    out : torch.Tensor
        ``(N, C, H, W)`` network output.

    Returns
    -------
    torch.Tensor
        ``(N, C, H - 1, W - 1)``: entry ``(i, j)`` uses pixels ``(i, j)``, ``(i + 1, j)``, ``(i, j + 1)``.

    Examples
    --------
    >>> ramp = 2.0 * torch.arange(4.0).expand(1, 1, 3, 4)  # 2 per column, 0 per row
    >>> gradient_magnitude(ramp).squeeze().tolist()
    [[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]]
    """
    if out.ndim != 4:
        raise ValueError(f"the model output must be (N, C, H, W), got shape {tuple(out.shape)}")
    dh = out[:, :, 1:, :-1] - out[:, :, :-1, :-1]
    dw = out[:, :, :-1, 1:] - out[:, :, :-1, :-1]
    return torch.sqrt(dh * dh + dw * dw + _EPS)


def window_target(h: int, w: int, window: int = 16) -> Callable[[torch.Tensor], torch.Tensor]:
    """LAM's target: the gradient magnitude summed over one output window.

    Parameters
    ----------
    h, w : int
        Top-left pixel of the window in the output (row, column).
    window : int, default 16
        Side of the window.

    Returns
    -------
    callable
        ``out (N, C, H, W) -> (N,)``; raises ValueError when the window does not fit in ``(H - 1, W - 1)``.

    Examples
    --------
    >>> ramp = 2.0 * torch.arange(8.0).expand(1, 1, 8, 8)
    >>> window_target(1, 1, window=4)(ramp).tolist()  # 16 pixels of gradient magnitude 2
    [32.0]
    """
    h, w, window = int(h), int(w), int(window)
    if window < 1 or h < 0 or w < 0:
        raise ValueError(f"need window >= 1 and a non-negative position, got window {window} at ({h}, {w})")

    def target(out: torch.Tensor) -> torch.Tensor:
        g = gradient_magnitude(out)
        if h + window > g.shape[-2] or w + window > g.shape[-1]:
            raise ValueError(f"the {window}x{window} window at ({h}, {w}) does not fit in an output of size "
                             f"{tuple(out.shape[-2:])} (its gradient map is one pixel smaller per axis)")
        return g[:, :, h:h + window, w:w + window].sum(dim=(1, 2, 3))

    return target


def whole_image_target(margin: int = 0) -> Callable[[torch.Tensor], torch.Tensor]:
    """The gradient magnitude summed over the whole output (less ``margin`` pixels per side).

    Because LAM is linear in its target, its map for this target is the sum of the maps of every window
    of a tiling of that area: a dense version of LAM.

    Parameters
    ----------
    margin : int, default 0
        Pixels left out along every side of the gradient map.

    Returns
    -------
    callable
        ``out (N, C, H, W) -> (N,)``.

    Examples
    --------
    >>> ramp = 2.0 * torch.arange(8.0).expand(1, 1, 8, 8)
    >>> whole_image_target(margin=1)(ramp).tolist()  # the 7x7 gradient map less a pixel per side: 25 pixels
    [50.0]
    """
    margin = int(margin)
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")

    def target(out: torch.Tensor) -> torch.Tensor:
        g = gradient_magnitude(out)
        if 2 * margin >= min(g.shape[-2:]):
            raise ValueError(f"margin {margin} leaves nothing of an output of size {tuple(out.shape[-2:])}")
        if margin:
            g = g[:, :, margin:-margin, margin:-margin]
        return g.sum(dim=(1, 2, 3))

    return target


@dataclasses.dataclass
class LAMResult:
    """LAM's attributions and the numbers to check them by.

    Attributes
    ----------
    attributions : torch.Tensor
        ``(N, C, H, W)`` raw (signed) attributions, in the input's dtype and device.
    target_input, target_baseline : torch.Tensor
        ``(N,)`` float64 target at the input and at the blurred baseline.
    delta : torch.Tensor
        ``(N,)`` float64 ``attributions.sum() - (target_input - target_baseline)`` per image: the
        integration error (0 for an exact integral).
    """

    attributions: torch.Tensor
    target_input: torch.Tensor
    target_baseline: torch.Tensor
    delta: torch.Tensor


class LocalAttributionMap:
    """Local Attribution Maps: integrated gradients of a window's edge content along a blur path.

    Parameters
    ----------
    model : callable
        Maps an input ``(N, C, h, w)`` to the SR output ``(N, C', H, W)`` (for a residual network such as
        VDSR: input plus residual, :func:`invnb.sr.with_residual`). Batch items must not interact
        (eval mode). Put in eval mode when it is an ``nn.Module``.
    sigma : float, default 1.2
        Blur of the baseline, pixels of the input.
    steps : int, default 50
        Integration steps.
    kernel_size : int, default 9
        Odd side of the blur kernel.
    window : int, default 16
        Side of the output window of a ``(h, w)`` target.
    receptive_radius : int, optional
        For a model whose output has its input's size and whose output pixel depends only on input pixels
        within this many pixels (VDSR: 20, one per 3x3 convolution): a ``(h, w)`` target is then computed
        on the crop of the input that the window can depend on, plus the blur kernel's reach - the same
        attributions (zero outside the crop) at a fraction of the cost on a large image.

    Notes
    -----
    Gu & Dong, CVPR 2021 (the published defaults above). See the module docstring for the path, the
    quadrature and what the path can see in frequency.

    Examples
    --------
    >>> lam = LocalAttributionMap(nn.Identity(), steps=8)
    >>> res = lam.attribute(torch.rand(1, 1, 32, 32, dtype=torch.float64), target=(8, 8))
    >>> tuple(res.attributions.shape), bool(res.delta.abs().max() < 1e-2 * res.target_input.abs().max())
    ((1, 1, 32, 32), True)
    """

    def __init__(self, model: Callable[[torch.Tensor], torch.Tensor], sigma: float = 1.2, steps: int = 50,
                 kernel_size: int = 9, window: int = 16, receptive_radius: int | None = None) -> None:
        if not callable(model):
            raise TypeError(f"model must be callable (an nn.Module or a function), got {type(model).__name__}")
        if not np.isfinite(sigma) or sigma <= 0:
            raise ValueError(f"sigma must be a positive number of pixels (the baseline's blur), got {sigma!r}")
        if isinstance(steps, bool) or int(steps) != steps or steps < 1:
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        if isinstance(window, bool) or int(window) != window or window < 1:
            raise ValueError(f"window must be a positive integer, got {window!r}")
        self.model = model
        self.sigma = float(sigma)
        self.steps = int(steps)
        self.kernel_size = _check_kernel_size(kernel_size)
        self.window = int(window)
        if receptive_radius is not None and (isinstance(receptive_radius, bool)
                                             or int(receptive_radius) != receptive_radius or receptive_radius < 0):
            raise ValueError(f"receptive_radius must be a non-negative integer or None, got {receptive_radius!r}")
        self.receptive_radius = None if receptive_radius is None else int(receptive_radius)
        if isinstance(model, nn.Module):
            model.eval()

    def baseline(self, x: torch.Tensor) -> torch.Tensor:
        """The start of the path: ``x`` blurred with ``sigma`` (``(N, C, H, W)``)."""
        return blur(x, self.sigma, self.kernel_size)

    def _target(self, target) -> Callable[[torch.Tensor], torch.Tensor]:
        if callable(target):
            return target
        if isinstance(target, Sequence) and len(target) == 2 and all(isinstance(v, (int, np.integer)) for v in target):
            return window_target(int(target[0]), int(target[1]), self.window)
        raise TypeError(f"target must be an (h, w) pair of ints (the window's top-left output pixel) or a "
                        f"callable output -> (N,) scores, got {target!r}")

    def _scores(self, fn, z: torch.Tensor) -> torch.Tensor:
        s = fn(self.model(z))
        if not isinstance(s, torch.Tensor) or s.shape != (z.shape[0],):
            raise ValueError(f"the target must give one score per image, shape ({z.shape[0]},); got "
                             f"{tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__}")
        return s

    def attribute(self, x: torch.Tensor, target, batch_size: int | None = None,
                  progress: bool = False) -> LAMResult:
        """LAM of every image of a batch.

        Parameters
        ----------
        x : torch.Tensor
            ``(N, C, H, W)`` network input (floating point), on the model's device.
        target : (int, int) or callable
            ``(h, w)``: the ``window x window`` output window with top-left pixel ``(h, w)``
            (:func:`window_target`); or a callable ``output -> (N,)`` score (e.g. :func:`whole_image_target`).
        batch_size : int, optional
            Path images per forward/backward call; default all ``steps`` of one image at once. The result
            does not depend on it.
        progress : bool, default False
            Progress bar over images.

        Returns
        -------
        LAMResult
        """
        if not isinstance(x, torch.Tensor) or x.ndim != 4:
            raise ValueError(f"x must be an (N, C, H, W) tensor, got {getattr(x, 'shape', type(x).__name__)}")
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
        if not torch.isfinite(x).all():
            raise ValueError("x contains NaN or inf")
        bs = self.steps if batch_size is None else int(batch_size)
        if bs < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if self.receptive_radius is not None and not callable(target):
            return self._attribute_crop(x, target, bs, progress)
        fn = self._target(target)
        x = x.detach()
        m = self.steps
        sig_nodes = [self.sigma * (1 - i / m) for i in range(m + 1)]
        sig_mid = [self.sigma * (1 - (i + 0.5) / m) for i in range(m)]
        attrs = torch.zeros(x.shape, dtype=torch.float64, device=x.device)
        t_in = torch.zeros(x.shape[0], dtype=torch.float64)
        t_base = torch.zeros(x.shape[0], dtype=torch.float64)
        items = range(x.shape[0])
        if progress:
            from tqdm.auto import tqdm

            items = tqdm(items, desc="LAM", leave=False)
        for n in items:
            xn = x[n:n + 1]
            with torch.no_grad():
                nodes = [blur(xn, s, self.kernel_size) for s in sig_nodes]
                t_in[n] = self._scores(fn, xn).double().cpu()[0]
                t_base[n] = self._scores(fn, nodes[0]).double().cpu()[0]
            for start in range(0, m, bs):
                idx = range(start, min(m, start + bs))
                with torch.no_grad():
                    z = torch.cat([blur(xn, sig_mid[i], self.kernel_size) for i in idx])
                    step = torch.cat([nodes[i + 1] - nodes[i] for i in idx]).double()
                z.requires_grad_(True)
                (grad,) = torch.autograd.grad(self._scores(fn, z).sum(), z)
                attrs[n] += (grad.double() * step).sum(dim=0)
        attributions = attrs.to(x.dtype)
        delta = attrs.sum(dim=(1, 2, 3)).cpu() - (t_in - t_base)
        return LAMResult(attributions=attributions, target_input=t_in, target_baseline=t_base, delta=delta)

    def _attribute_crop(self, x: torch.Tensor, target, batch_size: int, progress: bool) -> LAMResult:
        """:meth:`attribute` of a window target on the part of the input it can depend on."""
        self._target(target)  # validates the (h, w) pair
        h, w = int(target[0]), int(target[1])
        reach = self.receptive_radius + self.kernel_size // 2
        H, W = x.shape[-2:]
        if h + self.window > H - 1 or w + self.window > W - 1:
            raise ValueError(f"the {self.window}x{self.window} window at ({h}, {w}) does not fit in an output of "
                             f"size {(H, W)} (its gradient map is one pixel smaller per axis)")
        top, left = max(0, h - reach), max(0, w - reach)
        bottom, right = min(H, h + self.window + 1 + reach), min(W, w + self.window + 1 + reach)
        crop = x[..., top:bottom, left:right]
        out = self.model(crop[:1].detach())
        if out.shape[-2:] != crop.shape[-2:]:
            raise ValueError("receptive_radius needs a model whose output has its input's size; got "
                             f"{tuple(out.shape[-2:])} for {tuple(crop.shape[-2:])}")
        inner = LocalAttributionMap(self.model, self.sigma, self.steps, self.kernel_size, self.window)
        res = inner.attribute(crop, (h - top, w - left), batch_size=batch_size, progress=progress)
        full = torch.zeros_like(x)
        full[..., top:bottom, left:right] = res.attributions
        return dataclasses.replace(res, attributions=full)


def diffusion_index(attributions) -> np.ndarray:
    """LAM's Diffusion Index: ``100 (1 - Gini(|attribution|))`` per image.

    Parameters
    ----------
    attributions : torch.Tensor or array-like
        ``(N, C, H, W)`` (or ``(N, H, W)``) attributions; channels are summed after taking ``|.|``.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` in ``(0, 100]``: higher means the attribution spreads over more pixels (a single pixel
        gives ``100 / n`` for ``n`` pixels, a uniform map 100); NaN for an all-zero map.

    Examples
    --------
    >>> a = np.zeros((1, 1, 4, 4)); a[0, 0, 1, 2] = 3.0
    >>> diffusion_index(a).round(3).tolist(), diffusion_index(np.ones((1, 1, 4, 4))).tolist()
    ([6.25], [100.0])
    """
    a = attributions.detach().double().cpu().numpy() if isinstance(attributions, torch.Tensor) else np.asarray(
        attributions, dtype=np.float64)
    if a.ndim == 4:
        a = np.abs(a).sum(axis=1)
    elif a.ndim == 3:
        a = np.abs(a)
    else:
        raise ValueError(f"attributions must be (N, C, H, W) or (N, H, W), got shape {a.shape}")
    g = np.sort(a.reshape(a.shape[0], -1), axis=1)
    n = g.shape[1]
    total = g.sum(axis=1)
    rank = 2 * np.arange(1, n + 1) - n - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        gini = (g * rank).sum(axis=1) / (n * total)
    return np.where(total > 0, 100.0 * (1.0 - gini), np.nan)
