"""SR test sets: image folders, the embedded photographs, the paper's MAT files, downloads."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import numpy as np

from invnb.datasets.download import default_data_dir, download, extract_archive
from invnb.sr.chirp import chirp_hr
from invnb.sr.matlab import check_scale
from invnb.sr.samples import SRSample, make_sr_sample, read_image

__all__ = ["hr_image_paths", "load_sr_folder", "EMBEDDED_SR_IMAGES", "embedded_hr_images", "load_embedded_sr_set", "SRDataset", "SR_DATASETS", "download_sr_dataset"]


IMAGE_EXTS = {".bmp", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".ppm", ".pgm"}


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
        files = [p for p in pick.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.stem.endswith("_HR")]
    else:
        files = [
            p
            for p in folder.rglob("*")
            if p.is_file() and p.suffix.lower() in IMAGE_EXTS and not _is_derived(p, folder)
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
    on_error: str = "warn",
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
        Only the first ``limit`` usable images (sorted by name).
    on_error : {"warn", "raise"}, default "warn"
        What to do with an image that cannot be used (unreadable, or too
        small for ``scale``): skip it with a warning naming the file, or raise.

    Returns
    -------
    list of SRSample

    Raises
    ------
    ValueError
        ``on_error="raise"`` and an image is unusable, or no image is usable.
    """
    import warnings

    if on_error not in ("warn", "raise"):
        raise ValueError(f"on_error must be 'warn' or 'raise', got {on_error!r}")
    scale = check_scale(scale)
    samples, skipped = [], []
    for p in hr_image_paths(folder, scale):
        if limit is not None and len(samples) >= limit:
            break
        try:
            samples.append(make_sr_sample(read_image(p), scale, cumulative_crop=cumulative_crop, name=p.stem))
        except ValueError as err:
            if on_error == "raise":
                raise ValueError(f"{p}: {err}") from err
            skipped.append(p)
            warnings.warn(f"skipped {p}: {err}", stacklevel=2)
    if not samples and skipped:
        raise ValueError(f"no usable image in {folder} at scale {scale}; skipped {[q.name for q in skipped]}")
    return samples


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
        ``(H, W, 3)`` uint8 each: the 512x512 chirp of :func:`invnb.sr.chirp_hr`
        and scikit-image's bundled photographs read from its package folder
        (grey ones replicated to three channels).
    """
    names = list(EMBEDDED_SR_IMAGES) if names is None else list(names)
    unknown = [n for n in names if n not in EMBEDDED_SR_IMAGES]
    if unknown:
        raise ValueError(f"unknown embedded image(s) {unknown}; choose from {list(EMBEDDED_SR_IMAGES)}")
    return {
        n: chirp_hr() if EMBEDDED_SR_IMAGES[n] is None else read_image(_skimage_data_file(EMBEDDED_SR_IMAGES[n]))
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


# Set14: the HR images of jbhuang0604/SelfExSR at a pinned commit, one folder per scale (each
# modcropped for its scale). SHA-256 computed from the blobs of that commit (git snapshot).
_SELFEXSR = "https://raw.githubusercontent.com/jbhuang0604/SelfExSR/8f6dd8c1d20cb7e8792a7177b4f6fd677633f598/data/Set14/"


_SET14_SHA256 = {
    "image_SRF_2/img_001_SRF_2_HR.png": "d60c263b88e82f70dccb0112c8e1e5f66ca8be6581d88ceabb353fe4c88feada",
    "image_SRF_2/img_002_SRF_2_HR.png": "282a29a2d82defbda925c01875b765c4c5c33f85f2f5655400a771eb7241d247",
    "image_SRF_2/img_003_SRF_2_HR.png": "ecf4c67660202decfbabf5898ef56a2cd1a88393d48dfc9208d4467ac9a76713",
    "image_SRF_2/img_004_SRF_2_HR.png": "04ae5ef38fc38ec1db20df2842c07226d7684da312fd3bd4cd0bd0401d9f62b0",
    "image_SRF_2/img_005_SRF_2_HR.png": "ca96cdc294c81b1810dab4ba73c3675049cfd127d090a4719ff21f6a9d96b4bd",
    "image_SRF_2/img_006_SRF_2_HR.png": "bd3710be9a2d9efdfa254ac2282dd7eaec0079d7bcd43fcb256517afebbfee58",
    "image_SRF_2/img_007_SRF_2_HR.png": "d72e12d6eb8144ad2420fe91af19bcb51256ac17b8221fa1c8f89f2a3d6b50c0",
    "image_SRF_2/img_008_SRF_2_HR.png": "c49e96409094b390704ec1eeab85a0f1c7660249ca8826ffe468c046758e3ab9",
    "image_SRF_2/img_009_SRF_2_HR.png": "469af940770cb99f92abc82a597388fe07b5eaf7a557c9e20c0094efc2870e01",
    "image_SRF_2/img_010_SRF_2_HR.png": "e62db478accc42370e463ac95f93e691debe751196f5927494cce1bae22df754",
    "image_SRF_2/img_011_SRF_2_HR.png": "44509e5c39eb0a0af5b0cf887ee53194a1f6830d125cff763275e13544ed4614",
    "image_SRF_2/img_012_SRF_2_HR.png": "f727b04ddea2c2ae07784ee9e9dd9db5c6035121d93de933eac3a9a8ad33a0a7",
    "image_SRF_2/img_013_SRF_2_HR.png": "2743edf18619b152bcff0da9383110b4257531a096369a8dcf7e879e43c1e03e",
    "image_SRF_2/img_014_SRF_2_HR.png": "6795235d3a79bbb80f951b199752d2e64882f649c86efe3d94695020f425c11d",
    "image_SRF_3/img_001_SRF_3_HR.png": "b1ffcafc291c8e398c7eea50a8ecbbc4b1a2f526e08431ed6a51d0780ec87197",
    "image_SRF_3/img_002_SRF_3_HR.png": "f08f171318a2697e0c3be22333d885de5c0dc23e50e3d632b18b71fd8e8a97a2",
    "image_SRF_3/img_003_SRF_3_HR.png": "6a765eb61fbe8e88aca5c2a824a2816caf76589ba864d8ba59e8969046f21e9d",
    "image_SRF_3/img_004_SRF_3_HR.png": "abc1b564cf58d3e1753c80bca40012e8d7f96c72703b09334249f9980666a641",
    "image_SRF_3/img_005_SRF_3_HR.png": "11dc4836d06e5fe66e15f0e407d5127237e20aa7e1c064dc57cf8cf89879e0f1",
    "image_SRF_3/img_006_SRF_3_HR.png": "ea1a1eba9a39b8fbfd160f3e872f9cb54f9c4049fc516cdd346672cb94fa4ecb",
    "image_SRF_3/img_007_SRF_3_HR.png": "da3510cb805ee408c3f33022585cf8b0883eec8c77799f6350af9720572811e5",
    "image_SRF_3/img_008_SRF_3_HR.png": "84660d355b26da3a5b30154c367d65e385b4b12955c0f79c8ef6861863766871",
    "image_SRF_3/img_009_SRF_3_HR.png": "d95cd9ece7e5e964e4a992869dd009623c4ea3381c5c9283359820d474e0f3cb",
    "image_SRF_3/img_010_SRF_3_HR.png": "3e46034f1cc73f0b5a9c1b65f80aa88015d5e223715c09f9898be3393ddc4787",
    "image_SRF_3/img_011_SRF_3_HR.png": "f730c76a038edafd69271cf859708b31e2f5cd92a595a67037178677f62c1073",
    "image_SRF_3/img_012_SRF_3_HR.png": "fe27e9554b576dd128b2aab739ff8269fdb7bb2b4be8f79e437d300b7a2e015c",
    "image_SRF_3/img_013_SRF_3_HR.png": "803ad6753b4b7dde906b00cedefe85471dea2cb7f056a34af5c137c7ad9d9ae1",
    "image_SRF_3/img_014_SRF_3_HR.png": "b7ec9cdcd5fa35761efafefdfe3a753e1eaa707e76cab111cc80234ec0c2375c",
    "image_SRF_4/img_001_SRF_4_HR.png": "457712bbc26ecc5cf27a05676bfa87ffc961072e1528bd91d5d682114d48da0d",
    "image_SRF_4/img_002_SRF_4_HR.png": "40a708d97eaa92dc50c2f6f75f311be9e19ab929461326b09ab762932d55ff44",
    "image_SRF_4/img_003_SRF_4_HR.png": "43c69e440a72615c1950247be2d328b61e3e26416e73279b74a93392c6e7c689",
    "image_SRF_4/img_004_SRF_4_HR.png": "4cfc2896b758d7003df528bd844791e2a65b97b21fa22609831b291e91d53986",
    "image_SRF_4/img_005_SRF_4_HR.png": "5bf09299d1aa23249ae02e6537753f55185332c66f2fcbe93bcc0980de568c94",
    "image_SRF_4/img_006_SRF_4_HR.png": "3e5dfb51996f2f40549c91250572c41534a7f2e1b6d7bd2c2f340ff217f7b8d6",
    "image_SRF_4/img_007_SRF_4_HR.png": "40860b285980c1496bc4d5895d31f6fdab3fe437978b241d4d00571e0222b5b4",
    "image_SRF_4/img_008_SRF_4_HR.png": "d5e2489c2f0255cb37c331da240b46e7bca03b4c1de26347e4d5c648a90f04bc",
    "image_SRF_4/img_009_SRF_4_HR.png": "3125a99a492f32b2463b2f13f70c59ebf471cba795985a3cf5758a14f8253f1e",
    "image_SRF_4/img_010_SRF_4_HR.png": "d677c11654040dc29148d2b89ccb5d583e32a059ecd52e64d4c4d67ce81476ba",
    "image_SRF_4/img_011_SRF_4_HR.png": "3bc8541d0ce9699f2770fe02702862959d62374d484d661aa4911c1c2a1a70ef",
    "image_SRF_4/img_012_SRF_4_HR.png": "c40805a5ba47d0da5f480858faa078eb8ba28c4e704ce9f6c3f32338a7fb5b63",
    "image_SRF_4/img_013_SRF_4_HR.png": "550a70ae67b871aabb9538ee832f2a2c59b5d39745670859556542ce62c8c042",
    "image_SRF_4/img_014_SRF_4_HR.png": "501f3e84fd699fc0fb47a425b19e7b5e0207107fe242d03627d4781cd8a26282",
}


#: Public origins of the SR benchmark sets. Set5: the five ground-truth BMPs
#: of pytorch-vdsr at a pinned commit (checksums computed from those files).
#: BSDS100: the HR archive of the ``eugenesiow/BSD100`` Hugging Face data set
#: (checksum as published by the host's LFS record, not re-computed here).
#: Set14: the HR PNGs of jbhuang0604/SelfExSR at a pinned commit (checksums
#: computed from that commit's blobs). Urban100: the ``eugenesiow`` HR archive
#: whose checksum we could not obtain offline (``allow_unverified=True``
#: needed; the digest is then printed so that it can be pinned). The paper's own MAT archives are on
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
        tuple((_SELFEXSR + f, f, h) for f, h in _SET14_SHA256.items()),
        archive=False,
        origin="github.com/jbhuang0604/SelfExSR @8f6dd8c, data/Set14/image_SRF_{2,3,4}/*_HR.png",
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

    Resumable and checksum-verified (see :func:`invnb.datasets.download`);
    a second call finds the verified files and fetches nothing.

    Parameters
    ----------
    name : {"Set5", "Set14", "BSDS100", "Urban100"}
        Data set (see :data:`SR_DATASETS` for the origins).
    data_dir : str or os.PathLike, optional
        Data directory (default :func:`invnb.datasets.default_data_dir`).
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
