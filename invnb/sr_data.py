"""Super-resolution test data, made the way the paper's MATLAB scripts made it.

The VDSR experiments of Kwon et al. (IEEE TNNLS 2021) read MAT files with the
luminance of the ground truth (``im_gt_y``), of the low-resolution image
(``im_l_y``) and of its bicubic upscaling (``im_b_y``), all in 0..255
float64. MATLAB made them with ``modcrop``, ``rgb2ycbcr`` and the antialiased
bicubic ``imresize``. This module reproduces that pipeline in Python
(validated against the reference files to ~1e-12 grey levels), reads
existing MAT files, loads folders of high-resolution images, builds the
paper's "Artificial" chirp image and downloads the benchmark sets.

References
----------
Kwon et al., "Inverse-Based Approach to Explaining and Visualizing
Convolutional Neural Networks", IEEE TNNLS 2021. Kim et al., "Accurate Image
Super-Resolution Using Very Deep Convolutional Networks", CVPR 2016.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
import numpy as np
import scipy.io
import torch
from PIL import Image
from resize_right import interp_methods, resize

from .download import default_data_dir, download, extract_archive

__all__ = [
    "SR_DATASETS",
    "SRDataset",
    "SRSample",
    "artificial_hr",
    "artificial_image",
    "EMBEDDED_SR_IMAGES",
    "download_sr_dataset",
    "embedded_hr_images",
    "hr_image_paths",
    "imresize",
    "load_embedded_sr_set",
    "load_sr_folder",
    "load_sr_mat",
    "make_sr_sample",
    "modcrop",
    "read_image",
    "rgb2ycbcr",
    "y_to_tensor",
    "ycbcr2rgb",
]

# ITU-R BT.601 matrix and offsets exactly as MATLAB's rgb2ycbcr writes them
# (for RGB in 0..255 and YCbCr in 0..255).
_YCBCR_T = np.array(
    [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]]
)
_YCBCR_OFFSET = np.array([16.0, 128.0, 128.0])
_IMAGE_EXTS = {".bmp", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".ppm", ".pgm"}


# --------------------------------------------------------------------------
# Elementary operations
# --------------------------------------------------------------------------
def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so that height and width are multiples of ``scale``.

    Parameters
    ----------
    img : numpy.ndarray
        ``(H, W)`` or ``(H, W, C)`` image.
    scale : int
        Positive integer.

    Returns
    -------
    numpy.ndarray
        ``img[:H - H % scale, :W - W % scale]`` (a view).
    """
    scale = _check_scale(scale)
    img = np.asarray(img)
    if img.ndim not in (2, 3):
        raise ValueError(f"modcrop expects an (H, W) or (H, W, C) image, got shape {img.shape}")
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def rgb2ycbcr(rgb: np.ndarray) -> np.ndarray:
    """RGB to YCbCr exactly as MATLAB's ``rgb2ycbcr``.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``(H, W, 3)`` image, either ``uint8`` in 0..255 or floating point in
        [0, 1].

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` YCbCr of the same kind: for floating input float64
        with Y in [16/255, 235/255] and Cb, Cr in [16/255, 240/255]; for
        ``uint8`` input ``uint8`` (rounded half away from zero and
        saturated, as MATLAB's ``imlincomb``).
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb2ycbcr expects an (H, W, 3) image, got shape {rgb.shape}")
    if rgb.dtype == np.uint8:
        t, offset = _YCBCR_T * (1 / 255), _YCBCR_OFFSET
    elif np.issubdtype(rgb.dtype, np.floating):
        t, offset = _YCBCR_T * (1 / 255), _YCBCR_OFFSET * (1 / 255)
    else:
        raise TypeError(
            f"rgb2ycbcr supports uint8 (0..255) or float ([0, 1]) images, got dtype {rgb.dtype}; "
            "convert with img.astype(np.float64) / 255 first"
        )
    x = rgb.astype(np.float64)
    out = np.empty(x.shape, dtype=np.float64)
    for p in range(3):  # same summation order as MATLAB's imlincomb
        out[..., p] = t[p, 0] * x[..., 0] + t[p, 1] * x[..., 1] + t[p, 2] * x[..., 2] + offset[p]
    if rgb.dtype == np.uint8:
        return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)
    return out


def ycbcr2rgb(ycbcr: np.ndarray) -> np.ndarray:
    """YCbCr to RGB as MATLAB's ``ycbcr2rgb`` for floating-point input.

    Parameters
    ----------
    ycbcr : numpy.ndarray
        ``(H, W, 3)`` float YCbCr in MATLAB's [0, 1] scaling (Y in
        [16/255, 235/255]).

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` float64 RGB clipped to [0, 1].
    """
    ycbcr = np.asarray(ycbcr, dtype=np.float64)
    if ycbcr.ndim != 3 or ycbcr.shape[2] != 3:
        raise ValueError(f"ycbcr2rgb expects an (H, W, 3) image, got shape {ycbcr.shape}")
    t_inv = np.linalg.inv(_YCBCR_T) * 255.0
    shifted = ycbcr - _YCBCR_OFFSET / 255.0
    out = np.empty_like(ycbcr)
    for p in range(3):
        out[..., p] = t_inv[p, 0] * shifted[..., 0] + t_inv[p, 1] * shifted[..., 1] + t_inv[p, 2] * shifted[..., 2]
    return np.clip(out, 0.0, 1.0)


def imresize(
    img: np.ndarray,
    scale: float | None = None,
    output_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """Bicubic resize matching MATLAB's ``imresize(img, scale, 'bicubic')``.

    Uses the cubic kernel (a = -0.5) with MATLAB's antialiasing when
    downscaling (the kernel is stretched by ``1 / scale``) and symmetric
    border handling, through ``resize_right``. On the Set5 reference files
    the result matches MATLAB to ~1e-12 grey levels.

    Parameters
    ----------
    img : numpy.ndarray
        ``(H, W)`` or ``(H, W, C)`` image, float (any range) or ``uint8``.
    scale : float, optional
        Zoom factor for both axes (``1 / 3`` shrinks by three). The output
        size is ``ceil(H * scale)``, as in MATLAB.
    output_shape : tuple of int, optional
        ``(H_out, W_out)`` instead of ``scale``.

    Returns
    -------
    numpy.ndarray
        Float64 image (``uint8`` input gives ``uint8`` output, rounded and
        saturated as MATLAB does).
    """
    img = np.asarray(img)
    if img.ndim not in (2, 3):
        raise ValueError(f"imresize expects an (H, W) or (H, W, C) image, got shape {img.shape}")
    if (scale is None) == (output_shape is None):
        raise ValueError("give exactly one of scale or output_shape")
    is_uint8 = img.dtype == np.uint8
    x = img.astype(np.float64)
    extra = [1] * (img.ndim - 2)
    if scale is not None:
        if not np.isfinite(scale) or scale <= 0:
            raise ValueError(f"scale must be a positive number, got {scale}")
        out = resize(
            x,
            scale_factors=[scale, scale, *extra],
            interp_method=interp_methods.cubic,
            antialiasing=True,
            pad_mode="symmetric",
        )
    else:
        h, w = (int(v) for v in output_shape)
        if h <= 0 or w <= 0:
            raise ValueError(f"output_shape must be positive, got {output_shape}")
        out = resize(
            x,
            out_shape=[h, w, *img.shape[2:]],
            interp_method=interp_methods.cubic,
            antialiasing=True,
            pad_mode="symmetric",
        )
    if is_uint8:
        return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)
    return out


def _check_scale(scale) -> int:
    if isinstance(scale, bool) or int(scale) != scale or int(scale) < 1:
        raise ValueError(f"scale must be a positive integer such as 2, 3 or 4, got {scale!r}")
    return int(scale)


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
    scale = _check_scale(scale)
    hr = _as_rgb_uint8(hr)
    if cumulative_crop:
        for s in (2, 3, 4):
            if s > scale:
                break
            hr = modcrop(hr, s)
        if scale > 4:
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


def _as_rgb_uint8(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise TypeError(
            f"expected a uint8 image (0..255), got dtype {img.dtype}; "
            "load files with invnb.sr_data.read_image"
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
        replicated to three channels, alpha is dropped.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8.
    """
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


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
        head = fh.read(512)
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
        scale=_check_scale(scale),
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


def hr_image_paths(folder: str | os.PathLike, scale: int | None = None) -> list[Path]:
    """High-resolution image files of a benchmark folder, sorted by name.

    Layouts understood:

    * a flat folder of images (Set5 ``baby_GT.bmp``, a plain folder of
      ``.png``), also nested one level (``Set14/HR/*.png``);
    * the SelfExSR layout of Set14, BSDS100 and Urban100
      (``image_SRF_<k>/img_001_SRF_<k>_HR.png``; the HR files of the
      ``image_SRF_<scale>`` folder are used, or of the lowest scale).

    Files whose name marks them as low-resolution or generated
    (``_LR``, ``_bicubic``, ``_scale_``, ``_SRF_<k>_<method>``) and hidden
    files (``.*``, ``__MACOSX``) are skipped.

    Parameters
    ----------
    folder : str or os.PathLike
        Root of the data set.
    scale : int, optional
        Preferred ``image_SRF_<scale>`` sub-folder for the SelfExSR layout.

    Returns
    -------
    list of pathlib.Path

    Raises
    ------
    FileNotFoundError
        No image file found.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder; download the data set first")
    srf = sorted(p for p in folder.rglob("image_SRF_*") if p.is_dir())
    if srf:
        by_scale = {int(m.group(1)): p for p in srf if (m := re.search(r"image_SRF_(\d+)$", p.name))}
        pick = by_scale.get(scale) if scale in by_scale else by_scale[min(by_scale)]
        files = [p for p in pick.iterdir() if p.suffix.lower() in _IMAGE_EXTS and p.stem.endswith("_HR")]
    else:
        files = [
            p
            for p in folder.rglob("*")
            if p.is_file() and p.suffix.lower() in _IMAGE_EXTS and not _is_derived(p, folder)
        ]
    if not files:
        raise FileNotFoundError(f"no high-resolution images found under {folder}")
    return sorted(files, key=lambda p: str(p.relative_to(folder)).lower())


def _is_derived(path: Path, root: Path) -> bool:
    parts = path.relative_to(root).parts
    if any(p.startswith(".") or p == "__MACOSX" for p in parts):  # hidden files, macOS archive debris
        return True
    rel = str(path.relative_to(root))
    return bool(re.search(r"(_LR|LR_|_bicubic|bicubic_|_scale_\d|_x\d+\.)", rel, flags=re.IGNORECASE)) or bool(
        re.search(r"_SRF_\d+_(?!HR)", path.stem)
    )


def load_sr_folder(
    folder: str | os.PathLike,
    scale: int,
    cumulative_crop: bool = False,
    limit: int | None = None,
) -> list[SRSample]:
    """Load every high-resolution image of a folder as an :class:`SRSample`.

    Parameters
    ----------
    folder : str or os.PathLike
        Benchmark folder (see :func:`hr_image_paths`).
    scale : int
        Upscaling factor.
    cumulative_crop : bool, default False
        See :func:`make_sr_sample`.
    limit : int, optional
        Only the first ``limit`` images (sorted by name).

    Returns
    -------
    list of SRSample
    """
    paths = hr_image_paths(folder, scale)[:limit]
    return [
        make_sr_sample(read_image(p), scale, cumulative_crop=cumulative_crop, name=p.stem) for p in paths
    ]


# --------------------------------------------------------------------------
# The "Artificial" image
# --------------------------------------------------------------------------
def artificial_image(size: int = 512) -> np.ndarray:
    """The paper's chirp test image ``sin(x^2/1024) sin(y^2/1024)``.

    Parameters
    ----------
    size : int, default 512
        Side length; ``x, y = 1..size`` (1-based, as in the MATLAB script).

    Returns
    -------
    numpy.ndarray
        ``(size, size)`` float64 min-max normalised to [0, 1]; rows follow
        ``y``, columns ``x``. Its local frequency grows linearly from the
        top-left corner, so low and high frequencies sit at known places.
    """
    if int(size) != size or size < 2:
        raise ValueError(f"size must be an integer >= 2, got {size!r}")
    t = np.arange(1, int(size) + 1, dtype=np.float64)
    s = np.sin(t * t / 1024.0)
    img = np.outer(s, s)
    return (img - img.min()) / (img.max() - img.min())


def artificial_hr(size: int = 512) -> np.ndarray:
    """The chirp image as the MATLAB script saved it: grey uint8 RGB.

    Parameters
    ----------
    size : int, default 512
        Side length.

    Returns
    -------
    numpy.ndarray
        ``(size, size, 3)`` uint8, ``round(255 * artificial_image(size))``
        (MATLAB's ``im2uint8`` rounding), replicated to three channels.
        Feed it to :func:`make_sr_sample` with ``cumulative_crop=True`` to
        get the paper's x2/x3/x4 files.
    """
    g = np.floor(artificial_image(size) * 255.0 + 0.5).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=2)


# --------------------------------------------------------------------------
# Images that need no download
# --------------------------------------------------------------------------
#: The embedded SR test set: the paper's "Artificial" chirp (generated) and
#: photographs that scikit-image's wheel itself carries in ``skimage/data/``
#: (not the ones it fetches on demand). Name -> file name (None: generated).
EMBEDDED_SR_IMAGES: dict[str, str | None] = {
    "artificial": None,
    "astronaut": "astronaut.png",
    "camera": "camera.png",
    "chelsea": "chelsea.png",
    "coffee": "coffee.png",
    "rocket": "rocket.jpg",
}


def _skimage_data_file(file_name: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the embedded SR photographs come with scikit-image: pip install scikit-image")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / file_name
    if not path.is_file():
        raise FileNotFoundError(
            f"{file_name} is not in the installed scikit-image ({path.parent}); "
            "it ships in scikit-image's wheel since 0.14, so reinstall scikit-image"
        )
    return path


def embedded_hr_images(names: list[str] | tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """High-resolution RGB images that need no download.

    Parameters
    ----------
    names : sequence of str, optional
        Keys of :data:`EMBEDDED_SR_IMAGES` (default: all, in that order).

    Returns
    -------
    dict of str to numpy.ndarray
        ``(H, W, 3)`` uint8 each: the 512x512 chirp of :func:`artificial_hr`
        and scikit-image's bundled photographs read from its package folder
        (grey ones replicated to three channels).
    """
    names = list(EMBEDDED_SR_IMAGES) if names is None else list(names)
    unknown = [n for n in names if n not in EMBEDDED_SR_IMAGES]
    if unknown:
        raise ValueError(f"unknown embedded image(s) {unknown}; choose from {list(EMBEDDED_SR_IMAGES)}")
    return {
        n: artificial_hr() if EMBEDDED_SR_IMAGES[n] is None else read_image(_skimage_data_file(EMBEDDED_SR_IMAGES[n]))
        for n in names
    }


def load_embedded_sr_set(
    scale: int,
    names: list[str] | tuple[str, ...] | None = None,
    limit: int | None = None,
    cumulative_crop: bool = False,
) -> list[SRSample]:
    """The embedded images as :class:`SRSample` s, made like the benchmark sets.

    The same MATLAB-compatible pipeline as :func:`load_sr_folder`
    (:func:`make_sr_sample`: modcrop, ``rgb2ycbcr``, bicubic down- and
    up-scaling), on :func:`embedded_hr_images`.

    Parameters
    ----------
    scale : int
        Upscaling factor.
    names : sequence of str, optional
        Keys of :data:`EMBEDDED_SR_IMAGES` (default: all).
    limit : int, optional
        Only the first ``limit`` of them.
    cumulative_crop : bool, default False
        See :func:`make_sr_sample`.

    Returns
    -------
    list of SRSample
    """
    names = (list(EMBEDDED_SR_IMAGES) if names is None else list(names))[:limit]
    return [
        make_sr_sample(img, scale, cumulative_crop=cumulative_crop, name=name)
        for name, img in embedded_hr_images(names).items()
    ]


# --------------------------------------------------------------------------
# Downloads
# --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SRDataset:
    """Where a benchmark set comes from.

    Attributes
    ----------
    name : str
        Folder name under ``<data_dir>/sr``.
    files : tuple of (str, str, str or None)
        ``(url, file name, sha256)``; ``sha256`` None means no checksum is
        known (the download then needs ``allow_unverified=True``).
    archive : bool
        The files are archives to unpack into the folder.
    origin : str
        Human-readable provenance.
    """

    name: str
    files: tuple[tuple[str, str, str | None], ...]
    archive: bool
    origin: str


_PYTORCH_VDSR = "https://raw.githubusercontent.com/twtygqyy/pytorch-vdsr/514b021044018baf909e79f48392783daa592888/Set5/"
_SET5_SHA256 = {
    "baby_GT.bmp": "199806aa411249a8f179fe5598bed0766d92bf7fe5ff388522e4d8d997bd2fd4",
    "bird_GT.bmp": "498f50e8907f2421969d893aff61ee1a7c4aae23cb76452728a90e97c2889fb3",
    "butterfly_GT.bmp": "43534bd9f59f06ac7b0d6c8b991137baa4c764b8241a5bd1136b9dd810f4dba2",
    "head_GT.bmp": "959f9ac5ceacfd7648e7f0bfa6fbbd626b141d3e61e41dddd3e2593acfd3ac0b",
    "woman_GT.bmp": "2ab3c594c057d80c2f339c9be0bf6fb81487ce650562b60c2ad8cd816d509f56",
}
_HF = "https://huggingface.co/datasets/eugenesiow/{0}/resolve/{1}/data/{0}_HR.tar.gz"

#: Public origins of the SR benchmark sets. Set5: the five ground-truth BMPs
#: of pytorch-vdsr at a pinned commit (checksums computed from those files).
#: BSDS100: the HR archive of the ``eugenesiow/BSD100`` Hugging Face data set
#: (checksum as published by the host's LFS record, not re-computed here).
#: Set14 and Urban100: ``eugenesiow`` HR archives whose checksums we could
#: not obtain offline (``allow_unverified=True`` needed; the digest is then
#: printed so that it can be pinned). The paper's own MAT archives are on
#: Google Drive (ids in its ``get_data.py``) and need a browser-style
#: confirmation; :func:`load_sr_mat` reads them once fetched by hand.
SR_DATASETS: dict[str, SRDataset] = {
    "Set5": SRDataset(
        "Set5",
        tuple((_PYTORCH_VDSR + f, f, h) for f, h in _SET5_SHA256.items()),
        archive=False,
        origin="github.com/twtygqyy/pytorch-vdsr @514b021, folder Set5/",
    ),
    "Set14": SRDataset(
        "Set14",
        ((_HF.format("Set14", "main"), "Set14_HR.tar.gz", None),),
        archive=True,
        origin="huggingface.co/datasets/eugenesiow/Set14, data/Set14_HR.tar.gz",
    ),
    "BSDS100": SRDataset(
        "BSDS100",
        (
            (
                _HF.format("BSD100", "600666e"),
                "BSD100_HR.tar.gz",
                "333495ccded04a0db52b33361140821ea7e0d8af8dfb54b58df79a00010858d6",
            ),
        ),
        archive=True,
        origin="huggingface.co/datasets/eugenesiow/BSD100 @600666e, data/BSD100_HR.tar.gz",
    ),
    "Urban100": SRDataset(
        "Urban100",
        ((_HF.format("Urban100", "57309de"), "Urban100_HR.tar.gz", None),),
        archive=True,
        origin="huggingface.co/datasets/eugenesiow/Urban100 @57309de, data/Urban100_HR.tar.gz",
    ),
}


def download_sr_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    progress: bool = True,
    allow_unverified: bool = False,
) -> Path:
    """Download one SR benchmark set into ``<data_dir>/sr/<name>``.

    Resumable and checksum-verified (see :func:`invnb.download.download`);
    a second call finds the verified files and fetches nothing.

    Parameters
    ----------
    name : {"Set5", "Set14", "BSDS100", "Urban100"}
        Data set (see :data:`SR_DATASETS` for the origins).
    data_dir : str or os.PathLike, optional
        Data directory (default :func:`invnb.download.default_data_dir`).
    progress : bool, default True
        Progress bars.
    allow_unverified : bool, default False
        Also fetch files for which no checksum is known (a warning then
        prints the digest).

    Returns
    -------
    pathlib.Path
        The data set folder, ready for :func:`load_sr_folder`.

    Examples
    --------
    >>> folder = download_sr_dataset("Set5")  # doctest: +SKIP
    >>> samples = load_sr_folder(folder, scale=2)  # doctest: +SKIP
    """
    if name not in SR_DATASETS:
        raise ValueError(f"unknown SR data set {name!r}; choose one of {sorted(SR_DATASETS)}")
    spec = SR_DATASETS[name]
    unverified = [f for _, f, h in spec.files if h is None]
    if unverified and not allow_unverified:
        raise ValueError(
            f"no checksum is known for {unverified} of {name} ({spec.origin}); "
            "pass allow_unverified=True to fetch it anyway (its sha256 is then printed)"
        )
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    folder = root / "sr" / name
    archives = root / "sr" / "_archives"
    for url, fname, sha in spec.files:
        if spec.archive:
            path = download(url, archives / fname, sha, progress=progress)
            marker = folder / f".extracted-{fname}"
            if not marker.is_file():
                extract_archive(path, folder)
                marker.write_text(str(path))
        else:
            download(url, folder / fname, sha, progress=progress)
    return folder

