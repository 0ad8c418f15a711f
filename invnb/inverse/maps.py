"""The attribution map of an inverse input: ratio, magnitude or kept input, clipped, weighted and filled."""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F

__all__ = ["ATTRIBUTIONS", "FILL_SHARE", "SMOOTHINGS", "attribution_map", "gaussian_kernel1d", "gaussian_smooth",
           "kept_ratio", "postprocess_map", "raw_map"]


def gaussian_kernel1d(sigma: float, truncate: float = 4.0, dtype=torch.float32, device=None) -> torch.Tensor:
    """Normalised 1-D Gaussian of standard deviation `sigma` (pixels).

    Radius ``int(truncate * sigma + 0.5)`` as ``scipy.ndimage.gaussian_filter``;
    returns ``(2 * radius + 1,)`` summing to 1.
    """
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a finite number > 0, got {sigma!r}")
    radius = int(truncate * float(sigma) + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / float(sigma)) ** 2)
    return (k / k.sum()).to(dtype=dtype, device=device)


def _reflect_index(n: int, radius: int, device) -> torch.Tensor:
    """Indices of a row of length n padded by `radius` with half-sample symmetry (d c b a | a b c d)."""
    i = torch.arange(-radius, n + radius, device=device) % (2 * n)
    return torch.where(i >= n, 2 * n - 1 - i, i)


def gaussian_smooth(maps: torch.Tensor, sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """Separable Gaussian blur of maps, borders mirrored (scipy's ``mode="reflect"``).

    Parameters
    ----------
    maps : torch.Tensor
        ``(N, H, W)`` floating-point maps.
    sigma : float
        Standard deviation in pixels, > 0 (0 is handled by the caller: no blur).
    truncate : float
        Kernel radius in standard deviations (4, as scipy).

    Returns
    -------
    torch.Tensor
        ``(N, H, W)``, equal to ``scipy.ndimage.gaussian_filter(maps[i], sigma)``
        per image up to float rounding. Each image is blurred on its own
        (no batch mixing); a constant map stays constant.
    """
    if not isinstance(maps, torch.Tensor) or maps.dim() != 3 or not maps.is_floating_point():
        raise ValueError(f"maps must be a floating-point (N, H, W) tensor, got "
                         f"{getattr(maps, 'shape', type(maps).__name__)}")
    k = gaussian_kernel1d(sigma, truncate, maps.dtype, maps.device)
    r = (k.numel() - 1) // 2
    n, h, w = maps.shape
    a = maps.unsqueeze(1)  # (N, 1, H, W)
    a = a.index_select(2, _reflect_index(h, r, maps.device))
    a = F.conv2d(a, k.reshape(1, 1, -1, 1))
    a = a.index_select(3, _reflect_index(w, r, maps.device))
    a = F.conv2d(a, k.reshape(1, 1, 1, -1))
    return a.squeeze(1)


#: Height of the map's faint secondary key relative to its maximum: below the pointing
#: game's tolerance (`invnb.eval.POINTING_RTOL`, 1e-3), so it never decides a
#: maximum, and too faint to move the mass in the object (< 0.1%).
FILL_SHARE = 1e-4

#: Kinds of map a kept input gives (:func:`raw_map`).
ATTRIBUTIONS = ("ratio", "abs", "abs_x")


def kept_ratio(x_hat: torch.Tensor, x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """The share of the input a kept input keeps, ``|x_hat| / (|x| + eps)``, element-wise.

    The paper's ratio (``eps`` 1e-6 as its code): about 1 wherever the input is fully kept,
    whatever its contrast. Tensors or numpy arrays of any one shape.
    """
    return abs(x_hat) / (abs(x) + eps)


def raw_map(x_hat: torch.Tensor, x: torch.Tensor, kind: str = "ratio", eps: float = 1e-6) -> torch.Tensor:
    """The un-normalised map of a kept input ``(N, C, H, W)``: ``(N, H, W)``, >= 0.

    ``"ratio"``: ``sum_c |x_hat| / (|x| + eps)`` (:func:`kept_ratio`, the paper's map);
    ``"abs"``: ``sum_c |x_hat|``, the kept input's magnitude; ``"abs_x"``: ``sum_c |x_hat| * |x|``,
    which also weighs a kept pixel by the input's magnitude there. Non-finite values of
    `x_hat` count as 0.
    """
    if x_hat.shape != x.shape or x.dim() != 4:
        raise ValueError(f"expected two (N, C, H, W) tensors of one shape, got {tuple(x_hat.shape)} "
                         f"and {tuple(x.shape)}")
    x_hat = torch.nan_to_num(x_hat, nan=0.0, posinf=0.0, neginf=0.0)
    if kind == "ratio":
        return kept_ratio(x_hat, x, eps).sum(dim=1)
    if kind == "abs":
        return x_hat.abs().sum(dim=1)
    if kind == "abs_x":
        return (x_hat.abs() * x.abs()).sum(dim=1)
    raise ValueError(f"attribution kind must be one of {ATTRIBUTIONS}, got {kind!r}")


#: Ways `attribution_map` uses its Gaussian (``sigma > 0``).
SMOOTHINGS = ("weight", "blur")


def attribution_map(x_hat: torch.Tensor, x: torch.Tensor, kind: str = "ratio",
                    eps: float = 1e-6, sigma: float = 0.0, smoothing: str = "weight",
                    fill_sigma: float = 0.0, clip: float = 1.0) -> torch.Tensor:
    """Attribution map of an inverse input, max-normalised per image.

    Parameters
    ----------
    x_hat, x : torch.Tensor
        Inverse input and real input, ``(N, C, H, W)`` (normalised space).
    kind : {"ratio", "abs", "abs_x"}
        See :func:`raw_map` (``"ratio"`` is the paper's).
    eps : float
        Guard of the ratio (1e-6 as the paper).
    sigma : float
        Standard deviation (pixels) of the Gaussian ``G_sigma`` used by
        `smoothing` (`invnb.inverse.gaussian_smooth`, borders mirrored as
        ``scipy.ndimage.gaussian_filter``); 0 (default): the map as it is (the paper).
    smoothing : {"weight", "blur"}
        With ``sigma > 0``: ``"weight"``: ``a * G_sigma(a)``, each pixel
        weighted by the mean of the map around it, so a dense kept region
        outweighs an isolated kept pixel of the same value while the map stays
        zero where nothing is kept; ``"blur"``: ``G_sigma(a)``.
    clip : float
        Quantile in (0, 1] of the kept pixels' values (``a > 0``, per image)
        above which ``a`` is clipped to that value before `smoothing` and the
        fill, so that a few very bright pixels cannot hold the maximum. 1
        (default): no clipping (the paper).
    fill_sigma : float
        With ``fill_sigma > 0``, a secondary key: ``FILL_SHARE * G_fill(a) / max G_fill(a)``
        is added to the (smoothed, max-normalised) map before it is normalised
        again, so pixels where nothing is kept are ranked by their nearness to
        what is kept instead of tying at zero; ``FILL_SHARE`` (1e-4) keeps it
        below every kept pixel that matters. 0 (default): none (the paper).

    Returns
    -------
    torch.Tensor
        ``(N, H, W)`` in [0, 1] (all zeros where the inverse is zero).

    Examples
    --------
    >>> x = torch.rand(2, 3, 8, 8) + 0.5
    >>> a = attribution_map(0.5 * x, x)          # half of every pixel kept: a constant map
    >>> bool(torch.allclose(a, torch.ones(2, 8, 8), atol=1e-5))
    True
    """
    return postprocess_map(raw_map(x_hat, x, kind, eps), sigma=sigma, smoothing=smoothing, fill_sigma=fill_sigma,
                           clip=clip)


def postprocess_map(a: torch.Tensor, sigma: float = 0.0, smoothing: str = "weight", fill_sigma: float = 0.0,
                    clip: float = 1.0) -> torch.Tensor:
    """Clip, weight and fill any non-negative map the way the default inverse's map is, then max-normalise.

    The steps of :func:`attribution_map` after the raw map, applicable to any method's map (the
    benchmark scores every baseline with and without them, so a comparison is about the
    explanation and not about this smoothing).

    Parameters
    ----------
    a : torch.Tensor
        ``(N, H, W)`` non-negative maps.
    sigma, smoothing, fill_sigma, clip
        As :func:`attribution_map`; the default inverse uses ``sigma=6``, ``smoothing="weight"``,
        ``fill_sigma=12``, ``clip=0.9`` (:mod:`invnb.inverse.settings`).

    Returns
    -------
    torch.Tensor
        ``(N, H, W)`` in [0, 1] (an all-zero map stays zero).

    Examples
    --------
    >>> a = torch.zeros(1, 16, 16)
    >>> a[0, 4:8, 4:8] = 1.0                      # a dense block
    >>> a[0, 12, 12] = 1.0                        # and an isolated pixel of the same value
    >>> b = postprocess_map(a, sigma=2.0)
    >>> bool(b[0, 5, 5] > b[0, 12, 12])           # the weighting prefers the block
    True
    """
    if smoothing not in SMOOTHINGS:
        raise ValueError(f"smoothing must be one of {SMOOTHINGS}, got {smoothing!r}")
    check_clip(clip)
    if clip < 1:
        a = clip_at_quantile(a, float(clip))
    raw = a
    if sigma:
        check_sigma(sigma)
        blurred = gaussian_smooth(a, float(sigma))
        a = a * blurred if smoothing == "weight" else blurred
    if fill_sigma:
        check_sigma(fill_sigma, "map_fill_sigma")
        a = max_normalised(a) + FILL_SHARE * max_normalised(gaussian_smooth(raw, float(fill_sigma)))
    return max_normalised(a)


def clip_at_quantile(a: torch.Tensor, q: float) -> torch.Tensor:
    """``(N, H, W)`` non-negative maps, each clipped at the `q` quantile of its positive values
    (``torch.quantile``, linear interpolation); an all-zero map stays zero."""
    out = a.clone()
    for i in range(len(a)):  # per image: the number of kept pixels differs
        kept = a[i][a[i] > 0]
        if len(kept):
            out[i] = a[i].clamp(max=torch.quantile(kept.double(), q).to(a.dtype))
    return out


def max_normalised(a: torch.Tensor) -> torch.Tensor:
    """``(N, H, W)`` maps divided by their per-image maximum (all-zero maps stay zero)."""
    return a / a.flatten(1).amax(dim=1).clamp_min(1e-30).reshape(-1, 1, 1)


def check_sigma(sigma, name: str = "map_sigma") -> None:
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real) or not math.isfinite(sigma) or sigma < 0:
        raise ValueError(f"{name} must be a finite number >= 0 (0: no smoothing), got {sigma!r}")


def check_clip(clip) -> None:
    if isinstance(clip, bool) or not isinstance(clip, numbers.Real) or not 0 < clip <= 1:
        raise ValueError(f"map_clip must be a quantile in (0, 1] (1: no clipping), got {clip!r}")
