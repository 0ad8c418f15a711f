"""One colour per method for every figure of the book and of the bundled results.

The baselines take ``tab20`` colours in the benchmark's order; the inverse is
black and its paper setting red, their extra map kinds (``inverse.abs``, ...)
shades of grey and of red, drawn dashed (:func:`method_linestyle`). :func:`method_color` also resolves labels built on
these names: ``"inverse (paper)"``, ``"Set5 x2 paper"`` (a VDSR setting),
``"inverse (sweep)"``.

Examples
--------
>>> method_color("grad_cam") == METHOD_COLORS["grad_cam"]
True
>>> method_color("inverse (paper)")
'red'
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib import colormaps
from matplotlib.colors import to_hex

__all__ = ["METHOD_COLORS", "SETTING_METHODS", "method_color", "method_colors", "method_linestyle"]


_BASELINES = ("saliency", "input_x_gradient", "integrated_gradients", "guided_backprop", "grad_cam", "occlusion",
              "rise", "extremal_perturbation", "random", "uniform", "sobel")


#: method name -> colour (a matplotlib colour string)
METHOD_COLORS: dict[str, str] = {
    **{m: to_hex(colormaps["tab20"](i)) for i, m in enumerate(_BASELINES)},
    "inverse": "black",
    "inverse.ratio": "dimgray",
    "inverse.abs": "darkgray",
    "inverse_paper": "red",
    "inverse_paper.abs": "darkred",
    "inverse_paper.abs_x": "#e377c2",  # tab:pink, apart from the baselines' reds
    "object_mask": "grey",  # the benchmark's reference row (the object's own mask), grey as the object's marker
}


#: the inverse's named settings (invnb.inverse, invnb.sr.analysis) -> the method they are drawn as
SETTING_METHODS: dict[str, str] = {"default": "inverse", "paper": "inverse_paper"}


_OTHER = "tab:gray"


def method_color(name: str, default: str | None = _OTHER) -> str | None:
    """Colour of a method or of a label naming one.

    Parameters
    ----------
    name : str
        A method (``"saliency"``), a map kind (``"inverse.abs"``), a setting
        (``"paper"``) or a label containing one of these as a word
        (``"inverse (paper)"``, ``"Set5 x2 default"``, ``"inverse (sweep)"``).

    default : str or None
        Returned for a name that matches no method (grey; None lets
        matplotlib pick).

    Returns
    -------
    str or None
        The colour.
    """
    if name in METHOD_COLORS:
        return METHOD_COLORS[name]
    words = name.replace("(", " ").replace(")", " ").replace(",", " ").split()
    for w in reversed(words):  # the most specific word comes last: "inverse (paper)"
        if w in SETTING_METHODS:
            return METHOD_COLORS[SETTING_METHODS[w]]
    for w in words:
        if w in METHOD_COLORS:
            return METHOD_COLORS[w]
    return default


def method_colors(names: Sequence[str]) -> dict[str, str]:
    """``{name: method_color(name)}`` for each name, for the ``colors`` argument of the plot functions.

    Names that match no method get distinct colours of their own (``tab20``
    entries no method uses, in order), so they stay apart in one figure.
    """
    used = {to_hex(c) for c in METHOD_COLORS.values()}
    spare = [c for c in (to_hex(colormaps["tab20"](i)) for i in range(20)) if c not in used]
    out, k = {}, 0
    for n in names:
        c = method_color(n, default=None)
        if c is None:
            c, k = spare[k % len(spare)], k + 1
        out[n] = c
    return out


def method_linestyle(name: str) -> str:
    """``"--"`` for another map kind of a method's kept input (``"inverse.abs"``), ``":"`` for the
    benchmark's reference row ``"object_mask"``, else ``"-"``."""
    if name == "object_mask":
        return ":"
    return "--" if "." in name.split(" ")[0] else "-"
