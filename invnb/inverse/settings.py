"""Named settings of the layer-wise inverse: one registry of constructor keywords.

``LayerwiseInverse.from_setting(model, name, **overrides)`` builds the inverse
of a named setting; :func:`setting_names` lists them. Why each default has
the value it has, with the measurements, is in the book's method page
(``book/method.md``, "The default setting").

=================  ==========================================================================
``"default"``      the constructor's defaults: L1 mask penalty, batched FISTA, ``mask_weight``
                   chosen per image (``"auto"``), dilated unpooled masks, the clipped and
                   weighted ``|x_hat| * |x|`` map
``"paper"``        the released code's VGG setting (``inv_vgg.py``): L2 penalty, weight 0.7,
                   its projected-gradient solver, one image at a time, the ratio map
``"vdsr"``         the default for VDSR's output target: a fixed weight, few iterations
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

__all__ = [
    "DEFAULT_ATTRIBUTION", "DEFAULT_AUTO_EMPTY", "DEFAULT_AUTO_WEIGHTS", "DEFAULT_MAP_CLIP", "DEFAULT_MAP_FILL_SIGMA",
    "DEFAULT_MAP_SIGMA", "DEFAULT_MAP_SMOOTHING", "DEFAULT_MASK_DILATION", "SETTINGS", "VDSR_MASK_WEIGHT",
    "VDSR_MAX_ITER", "register_setting", "setting_kwargs", "setting_names",
]

#: Candidates of ``mask_weight="auto"``: per image, the largest whose inverse input keeps the class.
DEFAULT_AUTO_WEIGHTS = (0.25, 0.5, 1.0, 2.0, 4.0)
#: ``auto_empty``: an inverse that vanished may be chosen when the model still gives the class on it.
DEFAULT_AUTO_EMPTY = True
#: Side of the max filter applied to a max-unpooled target before its spatial mask is built (1: none).
DEFAULT_MASK_DILATION = 3
#: The default map's kind (see :func:`invnb.inverse.attribution_map`): ``sum_c |x_hat| * |x|``.
DEFAULT_ATTRIBUTION = "abs_x_input"
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
#: ``mask_weight`` of the ``"vdsr"`` setting (about the paper setting's amount of activation).
VDSR_MASK_WEIGHT = 1.0

_PAPER = dict(penalty="l2", solver="paper", max_iter=3000, relu_in_objective="always", batch_size=1,
              mask_dilation=1, attribution="ratio", map_sigma=0.0, map_fill_sigma=0.0, map_clip=1.0)

#: Every named setting: the keyword arguments of :class:`~invnb.inverse.LayerwiseInverse` it sets.
SETTINGS: dict[str, dict] = {
    "default": {},
    "paper": {**_PAPER, "mask_weight": 0.7},
    "vdsr": {"max_iter": VDSR_MAX_ITER, "mask_weight": VDSR_MASK_WEIGHT},
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
