"""Data the book runs on: generated shapes with object masks, ImageNet validation, verified downloads."""

from invnb.datasets.download import (
    ChecksumError,
    DownloadError,
    default_data_dir,
    download,
    extract_archive,
    local_data_dir,
    require_torch_file,
    sha256sum,
)
from invnb.datasets.imagenet import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    VAL_TEMPLATE,
    ImageNetVal,
    imagenet_transform,
    read_class_names,
    read_labels,
    val_filename,
)
from invnb.datasets.synthetic import (
    CLASS_NAMES,
    HELD_OUT_SEED,
    IMAGE_SIZE,
    MEAN,
    STD,
    ShapesData,
    denormalize,
    make_shapes,
    normalize,
)

__all__ = [
    "CLASS_NAMES", "ChecksumError", "DownloadError", "HELD_OUT_SEED", "IMAGENET_MEAN", "IMAGENET_STD",
    "IMAGE_SIZE", "ImageNetVal", "MEAN", "STD", "ShapesData", "VAL_TEMPLATE", "default_data_dir",
    "denormalize", "download", "extract_archive", "imagenet_transform", "local_data_dir", "make_shapes",
    "normalize", "read_class_names", "read_labels", "require_torch_file", "sha256sum", "val_filename",
]
