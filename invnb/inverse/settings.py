"""Named settings of the layer-wise inverse: one registry of constructor keywords.

``LayerwiseInverse.from_setting(model, name, **overrides)`` builds the inverse
of a named setting; :func:`setting_names` lists them. Why each default has
the value it has, with the measurements, is in the book's method pages
(``book/method.md``, "Paper setting vs default"; ``book/method_evidence.md``).

=================  ==========================================================================
``"default"``      the constructor's defaults: L1 mask penalty, batched FISTA, ``mask_weight``
                   chosen per image (``"auto"``), dilated unpooled masks, the clipped and
                   weighted ``|x_hat| * |x|`` map
``"paper"``        the released code's VGG setting (``inv_vgg.py``): L2 penalty, weight 0.7,
                   its projected-gradient solver, one image at a time, the ratio map
``"vdsr"``         the default for VDSR's output target: a fixed weight, few iterations, then a
                   fit of the network's output (:mod:`invnb.inverse.output_fit`)
``"vdsr_paper"``   the released code's VDSR setting (``inv_vdsr.py``): weight 0.15, the box
                   scaled with the target, a ReLU after every layer (its flaw at the last one)
=================  ==========================================================================

Examples
--------
>>> from invnb.inverse.settings import setting_kwargs
>>> setting_kwargs("paper")["mask_weight"]
0.7
"""

from __future__ import annotations

import math
import numbers

from invnb.inverse.maps import ATTRIBUTIONS, SMOOTHINGS, check_clip, check_sigma

__all__ = [
    "CHUNK_ELEMENTS", "DEFAULT_ATTRIBUTION", "DEFAULT_AUTO_EMPTY", "DEFAULT_AUTO_MAX_ITER", "DEFAULT_AUTO_WEIGHTS", "DEFAULT_MAP_CLIP", "DEFAULT_MAP_FILL_SIGMA",
    "DEFAULT_MAP_SIGMA", "DEFAULT_MAP_SMOOTHING", "DEFAULT_MASK_DILATION", "RESIDUAL_AUTO_MAX_ITER", "SETTINGS", "VDSR_MASK_WEIGHT",
    "VDSR_MAX_ITER", "VDSR_OUTPUT_FIT", "VDSR_OUTPUT_FIT_EVALS", "check_options", "register_setting",
    "setting_kwargs", "setting_names",
]

#: Candidates of ``mask_weight="auto"``: per image, the largest whose inverse input keeps the class.
DEFAULT_AUTO_WEIGHTS = (0.25, 0.5, 1.0, 2.0, 4.0)
#: FISTA iterations per layer below the margin layer in each candidate's walk of ``mask_weight="auto"``
#: (with ``max_iter=None``; the margin layer runs to ``tol``). "auto" calibrates the weight to the
#: class-keeping boundary, so the walks need not converge.
DEFAULT_AUTO_MAX_ITER = 4
#: The same for a stack with residual sums (:class:`invnb.inverse.residual.CompositeLayer`): on the
#: embedded SmallResNet, 4 iterations leave the map nearly the same for any explained class
#: (``book/method_evidence.md``, "How each default was chosen").
RESIDUAL_AUTO_MAX_ITER = 20
#: Elements per tensor of the chunks in which a batch-invariant (CPU) run solves a layer: the same
#: numbers as the whole batch, with the solver's element-wise passes in the cache. 0: no chunks.
CHUNK_ELEMENTS = 2 ** 20
#: ``auto_empty``: an inverse that vanished may be chosen when the model still gives the class on it.
DEFAULT_AUTO_EMPTY = True
#: Side of the max filter applied to a max-unpooled target before its spatial mask is built (1: none).
DEFAULT_MASK_DILATION = 3
#: The default map's kind (see :func:`invnb.inverse.attribution_map`): ``sum_c |x_hat| * |x|``.
DEFAULT_ATTRIBUTION = "abs_x"
#: Gaussian (pixels) of the default map's weighting ``a * G_6(a)``.
DEFAULT_MAP_SIGMA = 6.0
#: How the default map uses that Gaussian.
DEFAULT_MAP_SMOOTHING = "weight"
#: Gaussian (pixels) of the default map's faint secondary key, which ranks the pixels kept at zero.
DEFAULT_MAP_FILL_SIGMA = 12.0
#: Quantile of the kept pixels' values at which the default map is clipped before its weighting.
DEFAULT_MAP_CLIP = 0.9
#: Iterations per layer of the ``"vdsr"`` setting.
VDSR_MAX_ITER = 4
#: ``mask_weight`` of the ``"vdsr"`` setting (its walk keeps about the paper setting's amount of activation).
VDSR_MASK_WEIGHT = 0.8
#: Relative output error ``||F(x_hat) - y|| / ||y||`` at which the ``"vdsr"`` setting's output fit stops.
VDSR_OUTPUT_FIT = 0.25
#: Network evaluations (forward + backward) per image the ``"vdsr"`` setting's output fit may use.
VDSR_OUTPUT_FIT_EVALS = 100

_PAPER = dict(penalty="l2", solver="paper", max_iter=3000, relu_in_objective="always", batch_size=1,
              mask_dilation=1, attribution="ratio", map_sigma=0.0, map_fill_sigma=0.0, map_clip=1.0)

#: Every named setting: the keyword arguments of :class:`~invnb.inverse.LayerwiseInverse` it sets.
SETTINGS: dict[str, dict] = {
    "default": {},
    "paper": {**_PAPER, "mask_weight": 0.7},
    "vdsr": {"max_iter": VDSR_MAX_ITER, "mask_weight": VDSR_MASK_WEIGHT, "output_fit": VDSR_OUTPUT_FIT,
             "output_fit_evals": VDSR_OUTPUT_FIT_EVALS},
    "vdsr_paper": {**_PAPER, "mask_weight": 0.15, "scale_bound": True},
}


def setting_names() -> list[str]:
    """The names :meth:`LayerwiseInverse.from_setting` accepts."""
    return list(SETTINGS)


def setting_kwargs(name: str) -> dict:
    """A copy of the constructor keywords of setting `name`.

    Raises
    ------
    ValueError
        For an unknown name, listing the known ones.
    """
    try:
        return dict(SETTINGS[name])
    except (KeyError, TypeError):
        raise ValueError(f"unknown inverse setting {name!r}; choose one of {setting_names()}") from None


def register_setting(name: str, **kwargs) -> None:
    """Add a named setting (keyword arguments of :class:`~invnb.inverse.LayerwiseInverse`).

    Raises
    ------
    ValueError
        If `name` is taken: settings are never silently redefined.
    """
    if name in SETTINGS:
        raise ValueError(f"inverse setting {name!r} exists already; pick another name")
    SETTINGS[name] = dict(kwargs)


def check_options(*, mask_weight, auto_weights, mask_dilation, attribution, map_sigma, map_smoothing, map_fill_sigma,
                  map_clip, penalty, penalty_scale, solver, max_iter, tol, relu_in_objective, target_scale,
                  batch_size, batch_invariant, output_fit=None, output_fit_evals=100) -> None:
    """Raise a ValueError (TypeError) naming the first constructor keyword of
    :class:`~invnb.inverse.LayerwiseInverse` that has no valid value, and what it takes."""
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
    if batch_invariant is not None and not isinstance(batch_invariant, bool):
        raise TypeError(f"batch_invariant must be None, True or False, got {batch_invariant!r}")
    if output_fit is not None and (isinstance(output_fit, bool) or not isinstance(output_fit, numbers.Real)
                                   or not math.isfinite(output_fit) or output_fit < 0):
        raise ValueError(f"output_fit must be None (no output fit) or a relative output error >= 0 to reach, "
                         f"e.g. 0.25; got {output_fit!r}")
    if isinstance(output_fit_evals, bool) or not isinstance(output_fit_evals, numbers.Integral) \
            or output_fit_evals < 1:
        raise ValueError(f"output_fit_evals must be an integer >= 1 (network evaluations per image), "
                         f"got {output_fit_evals!r}")
