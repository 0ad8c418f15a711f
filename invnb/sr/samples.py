"""One SR test image made the paper's way (HR, LR, bicubic luminance), and its readers."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import numpy as np
import scipy.io
import torch
from PIL import Image

from invnb.sr.matlab import check_scale, imresize, modcrop, rgb2ycbcr

__all__ = ["SRSample", "make_sr_sample", "y_to_tensor", "read_image", "load_sr_mat"]


# --------------------------------------------------------------------------
# SR samples
# --------------------------------------------------------------------------
@dataclasses.dataclass
class SRSample:
    """One SR test image in the format of the paper's MAT files.

    Attributes
    ----------
    name : str
        Image name (file stem).
    scale : int
        Upscaling factor.
    im_gt_y : numpy.ndarray
        ``(H, W)`` float64, ground-truth luminance in 0..255 (MATLAB Y range
        16..235).
    im_b_y : numpy.ndarray
        ``(H, W)`` float64, bicubic down- then up-scaled luminance, 0..255.
    im_l_y : numpy.ndarray or None
        ``(H / scale, W / scale)`` float64, low-resolution luminance, 0..255.
    im_b_ycbcr : numpy.ndarray or None
        ``(H, W, 3)`` float64, bicubic YCbCr in MATLAB's [0, 1] scaling
        (to colourise a super-resolved Y channel).
    im_gt : numpy.ndarray or None
        ``(H, W, 3)`` uint8 RGB ground truth after cropping.
    """

    name: str
    scale: int
    im_gt_y: np.ndarray
    im_b_y: np.ndarray
    im_l_y: np.ndarray | None = None
    im_b_ycbcr: np.ndarray | None = None
    im_gt: np.ndarray | None = None


def make_sr_sample(
    hr: np.ndarray,
    scale: int,
    cumulative_crop: bool = False,
    name: str = "",
) -> SRSample:
    """Make an :class:`SRSample` from a high-resolution RGB image.

    The steps of the paper's MATLAB script: modcrop, ``rgb2ycbcr`` of the
    image in [0, 1], bicubic ``imresize`` by ``1 / scale`` and back by
    ``scale`` on all three YCbCr channels, Y multiplied by 255.

    Parameters
    ----------
    hr : numpy.ndarray
        ``(H, W, 3)`` uint8 RGB (a ``(H, W)`` grey image is replicated to
        three channels).
    scale : int
        Upscaling factor (2, 3, 4, ...).
    cumulative_crop : bool, default False
        Reproduce the reference MATLAB script (pytorch-vdsr's
        ``generate_test_mat.m`` and the paper's ``make_artificial_img.m``),
        which crops the same image successively for x2, then x3, then x4:
        the image is modcropped by every factor of ``(2, 3, 4)`` up to
        ``scale`` in turn (a 256-pixel side is 256 at x2, 255 at x3, 252 at
        x4). Default: plain ``modcrop(hr, scale)``.
    name : str, optional
        Stored in the sample.

    Returns
    -------
    SRSample
        With ``im_gt_y``, ``im_l_y``, ``im_b_y`` (0..255), ``im_b_ycbcr``
        ([0, 1]) and ``im_gt``.

    Examples
    --------
    >>> s = make_sr_sample(read_image("butterfly_GT.bmp"), 4, cumulative_crop=True)  # doctest: +SKIP
    >>> s.im_b_y.shape  # doctest: +SKIP
    (252, 252)
    """
    scale = check_scale(scale)
    hr = as_rgb_uint8(hr)
    if cumulative_crop:
        for s in (2, 3, 4):
            if s > scale:
                break
            hr = modcrop(hr, s)
        if scale > 4:  # pragma: no mutate (>= is equivalent: modcrop is idempotent)
            hr = modcrop(hr, scale)
    else:
        hr = modcrop(hr, scale)
    if hr.shape[0] < scale or hr.shape[1] < scale:
        raise ValueError(f"image {name!r} of size {hr.shape[:2]} is too small for scale {scale}")
    gt_ycbcr = rgb2ycbcr(hr.astype(np.float64) / 255.0)
    l_ycbcr = imresize(gt_ycbcr, 1.0 / scale)
    b_ycbcr = imresize(l_ycbcr, float(scale))
    return SRSample(
        name=name,
        scale=scale,
        im_gt_y=gt_ycbcr[..., 0] * 255.0,
        im_b_y=b_ycbcr[..., 0] * 255.0,
        im_l_y=l_ycbcr[..., 0] * 255.0,
        im_b_ycbcr=b_ycbcr,
        im_gt=np.ascontiguousarray(hr),
    )


def as_rgb_uint8(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise TypeError(
            f"expected a uint8 image (0..255), got dtype {img.dtype}; "
            "load files with invnb.sr.read_image"
        )
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=2)
    if img.ndim == 3 and img.shape[2] == 3:
        return img
    raise ValueError(f"expected an (H, W, 3) RGB or (H, W) grey image, got shape {img.shape}")


def y_to_tensor(y255: np.ndarray, device: str | torch.device | None = None) -> torch.Tensor:
    """Turn a 0..255 luminance array into the network input.

    Parameters
    ----------
    y255 : numpy.ndarray
        ``(H, W)`` luminance in 0..255.
    device : str or torch.device, optional
        Where to put the tensor (default CPU).

    Returns
    -------
    torch.Tensor
        ``(1, 1, H, W)`` float32 in [0, 1] (``y255 / 255``).
    """
    y255 = np.asarray(y255)
    if y255.ndim != 2:
        raise ValueError(f"expected an (H, W) luminance image, got shape {y255.shape}")
    return torch.from_numpy(y255.astype(np.float64) / 255.0).float()[None, None].to(device)


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------
def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as uint8 RGB.

    Parameters
    ----------
    path : str or os.PathLike
        Any format Pillow reads (bmp, png, jpg, ...). Grey images are
        replicated to three channels, alpha is dropped. 16-bit images
        (e.g. 16-bit grey PNG) are scaled to 0..255 (``round(v * 255 / 65535)``).

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8.

    Raises
    ------
    ValueError
        The file is not an image Pillow can read, or its pixels have no known
        range (floating-point or 32-bit images); the message names the file.
    """
    from PIL import UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode.startswith("I;16") or mode == "I":
                arr = np.asarray(im).astype(np.int64)
                if mode == "I" and (arr.min() < 0 or arr.max() > 65535):
                    raise ValueError(
                        f"{path} is a 32-bit integer image (values {arr.min()}..{arr.max()}); "
                        "only 8- and 16-bit images are supported"
                    )
                grey = np.round(arr * (255.0 / 65535.0)).astype(np.uint8)
                return np.repeat(grey[..., None], 3, axis=2)
            if mode == "F":
                raise ValueError(
                    f"{path} is a floating-point image (mode F) with no known value range; "
                    "save it as 8- or 16-bit"
                )
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError) as err:  # Pillow's errors for bad files
        if isinstance(err, FileNotFoundError):
            raise
        raise ValueError(f"{path} is not a readable image ({type(err).__name__}: {err})") from err


def load_sr_mat(path: str | os.PathLike, scale: int | None = None) -> SRSample:
    """Read a MAT file in the format of the paper's SR test sets.

    Parameters
    ----------
    path : str or os.PathLike
        MAT file with at least ``im_gt_y`` and ``im_b_y`` (0..255); optional
        ``im_l_y``, ``im_b_ycbcr`` and ``im_gt`` are read when present.
        MATLAB v7.3 (HDF5) files need ``h5py``.
    scale : int, optional
        Upscaling factor; by default parsed from a ``_x<k>`` suffix of the
        file name (e.g. ``bird_GT_x2.mat``).

    Returns
    -------
    SRSample
        Arrays as float64 (``im_gt`` as stored).
    """
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(512)  # pragma: no mutate (only the first 10 bytes are looked at)
    if head.startswith(b"MATLAB 7.3") or head.startswith(b"\x89HDF"):
        data = _load_mat_v73(path)
    else:
        try:
            data = scipy.io.loadmat(path)
        except NotImplementedError:  # scipy's answer to v7.3 files
            data = _load_mat_v73(path)
    missing = [k for k in ("im_gt_y", "im_b_y") if k not in data]
    if missing:
        keys = sorted(k for k in data if not k.startswith("__"))
        raise KeyError(f"{path} lacks {missing}; it has {keys}. Is it an SR test MAT file?")
    if scale is None:
        match = re.search(r"_x(\d+)$", path.stem)
        if match is None:
            raise ValueError(f"cannot tell the scale of {path.name}; pass scale=...")
        scale = int(match.group(1))

    def get(key):
        return np.asarray(data[key], dtype=np.float64) if key in data else None

    return SRSample(
        name=re.sub(r"_x\d+$", "", path.stem),
        scale=check_scale(scale),
        im_gt_y=get("im_gt_y"),
        im_b_y=get("im_b_y"),
        im_l_y=get("im_l_y"),
        im_b_ycbcr=get("im_b_ycbcr"),
        im_gt=np.asarray(data["im_gt"]) if "im_gt" in data else None,
    )


def _load_mat_v73(path: Path) -> dict:
    try:
        import h5py
    except ImportError as err:
        raise ImportError(
            f"{path} is a MATLAB v7.3 (HDF5) file, which scipy cannot read; "
            "install h5py (pip install h5py) or re-save it in MATLAB with save(..., '-v7')"
        ) from err
    out = {}
    with h5py.File(path, "r") as fh:
        for key, value in fh.items():
            if isinstance(value, h5py.Dataset):
                # HDF5 stores MATLAB arrays column-major: reverse the axes.
                out[key] = np.asarray(value).T
    return out
