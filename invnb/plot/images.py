"""Maps as coloured images for widgets and HTML (one colour map, PNG encoding)."""

from __future__ import annotations

import io

import numpy as np

__all__ = ["colorize", "colour_scale_html", "to_png"]


# Anchors of a perceptually ordered colour map (dark blue -> purple -> orange -> light
# yellow), sampled from matplotlib's "inferno" so maps look like the rest of the book.
MAP_CMAP = np.array(
    [[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21],
     [250, 193, 39], [252, 255, 164]], dtype=np.float64) / 255.0


def colorize(a: np.ndarray, vmax: float | None = None) -> np.ndarray:
    """Map values to RGB with a fixed dark-to-bright colour map.

    Parameters
    ----------
    a : numpy.ndarray
        ``(H, W)`` non-negative values.
    vmax : float, optional
        Value drawn brightest (default: the map's maximum; 0 maps stay dark).

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` float in [0, 1].
    """
    a = np.asarray(a, dtype=np.float64)
    top = float(a.max()) if vmax is None else float(vmax)
    v = np.clip(a / top, 0.0, 1.0) if top > 0 else np.zeros_like(a)
    pos = v * (len(MAP_CMAP) - 1)
    lo = np.floor(pos).astype(int).clip(0, len(MAP_CMAP) - 2)
    frac = (pos - lo)[..., None]
    return MAP_CMAP[lo] * (1 - frac) + MAP_CMAP[lo + 1] * frac


def colour_scale_html(width: int = 240) -> str:
    """HTML of the explorer's colour bar: the colour map of :func:`colorize` from 0 to 1, labelled.

    Parameters
    ----------
    width : int
        Width of the bar in pixels.

    Returns
    -------
    str
        A ``<div>`` with the bar and what its ends mean.
    """
    stops = ", ".join(f"rgb({r * 255:.0f},{g * 255:.0f},{b * 255:.0f}) {100 * i / (len(MAP_CMAP) - 1):.0f}%"
                      for i, (r, g, b) in enumerate(MAP_CMAP))
    bar = (f"<span style='display:inline-block;width:{int(width)}px;height:12px;vertical-align:middle;"
           f"border:1px solid #888;background:linear-gradient(to right, {stops})'></span>")
    return ("<div style='font-size:small'>colour scale: 0 " + bar + " 1 &nbsp;(attribution: share of its "
            "maximum; features: share of the forward feature's maximum at that layer)</div>")


def to_png(rgb: np.ndarray, size: int | None = None) -> bytes:
    """Encode an image as PNG bytes, optionally enlarged with nearest-neighbour pixels.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``(H, W, 3)`` or ``(H, W)`` float in [0, 1].
    size : int, optional
        Output width in pixels (height scaled alike); pixels stay sharp.

    Returns
    -------
    bytes
        A PNG file.
    """
    from PIL import Image

    arr = (np.clip(np.asarray(rgb, dtype=np.float64), 0, 1) * 255 + 0.5).astype(np.uint8)
    img = Image.fromarray(arr)
    if size is not None and size != img.width:
        img = img.resize((size, max(1, round(img.height * size / img.width))), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
