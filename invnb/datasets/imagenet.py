"""ImageNet 2012 validation images by index range, as the paper's evaluation script reads them.

The validation images are files ``ILSVRC2012_val_00000001.JPEG`` ...
``ILSVRC2012_val_00050000.JPEG`` (1-based numbering) in one folder. Labels
come from a text file with one 0-based class index per line (torchvision's
class order; line i is image i), class names from a file with one
comma-separated list of synonyms per class index. The paper processes
``range(start, end, stride)`` (``--start_idx 1 --end_idx 50000 --idx_stride 10``).
Images are preprocessed as torchvision's ImageNet models expect: resize the
short side to 256, center-crop 224, scale to [0, 1], normalise per channel.

Examples
--------
>>> data = ImageNetVal("imagenet/val", "ILSVRC2012_validation_ground_truth.txt",   # doctest: +SKIP
...                    "ILSVRC2012_validation_ground_truth_text.txt", start=1, end=101, stride=10)
>>> x, label, index = data[0]          # (3, 224, 224) normalised, class index, file number 1  # doctest: +SKIP
>>> x, labels, indices = data.batch()  # every selected image at once  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "VAL_TEMPLATE", "val_filename", "imagenet_transform", "read_labels", "read_class_names", "ImageNetVal"]


#: Per-channel mean and standard deviation of torchvision's ImageNet models (RGB, [0, 1] scale).
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)


IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


#: File name of validation image number i (1-based).
VAL_TEMPLATE = "ILSVRC2012_val_{:08d}.JPEG"


def val_filename(index: int) -> str:
    """File name of the 1-based validation image ``index``, e.g. ``ILSVRC2012_val_00000001.JPEG``."""
    if index < 1:
        raise ValueError(f"validation images are numbered from 1, got {index}.")
    return VAL_TEMPLATE.format(index)


def imagenet_transform(normalize: bool = True, resize: int = 256, crop: int = 224):
    """The standard evaluation preprocessing of torchvision's ImageNet models.

    Parameters
    ----------
    normalize : bool
        Apply :data:`IMAGENET_MEAN` / :data:`IMAGENET_STD` normalisation
        (False gives the [0, 1] RGB crop, for display).
    resize : int
        Short side after resizing (bilinear, antialiased), 256.
    crop : int
        Side of the center crop, 224.

    Returns
    -------
    callable
        PIL image -> (3, crop, crop) float tensor.
    """
    from torchvision import transforms

    steps = [transforms.Resize(resize), transforms.CenterCrop(crop), transforms.ToTensor()]
    if normalize:
        steps.append(transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD))
    return transforms.Compose(steps)


def _need_file(path: str | os.PathLike, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{what} not found at {path}; pass the right path (the label files ship in the paper's repository, "
            "folder res/, and are downloaded by invnb)."
        )
    return path


def read_labels(path: str | os.PathLike) -> list[int]:
    """Read the validation labels: one 0-based class index per line, line i for image i.

    Parameters
    ----------
    path : str or Path
        ``ILSVRC2012_validation_ground_truth.txt`` (torchvision class order).

    Returns
    -------
    list of int
        ``labels[i - 1]`` is the class of image ``i``.
    """
    path = _need_file(path, "label file")
    labels = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            labels.append(int(line))
        except ValueError:
            raise ValueError(
                f"{path}, line {lineno}: expected one integer class index per line, got {line!r}."
            ) from None
    return labels


def read_class_names(path: str | os.PathLike) -> list[str]:
    """Read the class names: one line per class index, synonyms separated by commas.

    Parameters
    ----------
    path : str or Path
        ``ILSVRC2012_validation_ground_truth_text.txt``.

    Returns
    -------
    list of str
        The first synonym of each class (``"tench"`` for class 0), as the
        paper's code shows them.
    """
    path = _need_file(path, "class-name file")
    return [line.split(",")[0].strip() for line in path.read_text().splitlines() if line.strip()]


class ImageNetVal(torch.utils.data.Dataset):
    """ImageNet 2012 validation images selected by ``range(start, end, stride)``.

    Parameters
    ----------
    image_dir : str or Path
        Folder holding ``ILSVRC2012_val_XXXXXXXX.JPEG`` files.
    labels_file : str or Path
        One 0-based class index per line (image 1 on line 1).
    class_names_file : str or Path, optional
        One line of comma-separated synonyms per class.
    start : int
        First image number (1-based), 1 by default.
    end : int, optional
        Stop before this image number, like Python's ``range`` (and the
        paper's script); default: after the last labelled image.
    stride : int
        Step between image numbers (10 in the paper).
    transform : callable, optional
        PIL image -> tensor; default :func:`imagenet_transform`.

    Raises
    ------
    FileNotFoundError
        If the folder, a label file or any selected image is missing (all
        checked at construction, so a long run does not stop half-way).
    ValueError
        For an empty or out-of-range selection.

    Examples
    --------
    >>> data = ImageNetVal(folder, labels_file, start=1, end=50001, stride=10)   # doctest: +SKIP
    >>> x, label, index = data[0]                                                # doctest: +SKIP
    """

    def __init__(self, image_dir, labels_file, class_names_file=None, start: int = 1, end: int | None = None,
                 stride: int = 1, transform=None):
        self.image_dir = Path(image_dir)
        if not self.image_dir.is_dir():
            raise FileNotFoundError(
                f"ImageNet validation folder not found: {self.image_dir}; pass the folder holding the "
                "ILSVRC2012_val_XXXXXXXX.JPEG files."
            )
        self.labels = read_labels(labels_file)
        self.class_names = read_class_names(class_names_file) if class_names_file is not None else None
        n_labels = len(self.labels)
        end = n_labels + 1 if end is None else int(end)
        if start < 1 or stride < 1:
            raise ValueError(
                f"need start >= 1 (1-based numbering) and stride >= 1; got start={start}, stride={stride}."
            )
        if end > n_labels + 1:
            raise ValueError(
                f"end={end} goes past the {n_labels} labelled images (end is exclusive, at most {n_labels + 1})."
            )
        self.indices: list[int] = list(range(int(start), end, int(stride)))
        if not self.indices:
            raise ValueError(f"range({start}, {end}, {stride}) selects no image.")
        missing = [i for i in self.indices if not (self.image_dir / val_filename(i)).is_file()]
        if missing:
            shown = ", ".join(val_filename(i) for i in missing[:3])
            raise FileNotFoundError(
                f"{len(missing)} of {len(self.indices)} selected images are missing from {self.image_dir} "
                f"(e.g. {shown}); check the folder or narrow start/end/stride."
            )
        self.transform = imagenet_transform() if transform is None else transform

    def __len__(self) -> int:
        return len(self.indices)

    def path(self, i: int) -> Path:
        """Path of the i-th selected image (0-based position in the selection)."""
        return self.image_dir / val_filename(self.indices[i])

    def label(self, i: int) -> int:
        """0-based class of the i-th selected image."""
        return self.labels[self.indices[i] - 1]

    def class_name(self, class_index: int) -> str:
        """Short name of a class (needs ``class_names_file``)."""
        if self.class_names is None:
            raise ValueError("no class names loaded; pass class_names_file= to ImageNetVal.")
        return self.class_names[class_index]

    def __getitem__(self, i: int) -> tuple[Tensor, int, int]:
        """Return ``(image (3, 224, 224), label, file number)`` of the i-th selected image."""
        from PIL import Image

        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} selected images.")
        i = i % len(self)
        with Image.open(self.path(i)) as img:
            x = self.transform(img.convert("RGB"))
        return x, self.label(i), self.indices[i]

    def batch(self, positions: Sequence[int] | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Stack several selected images.

        Parameters
        ----------
        positions : sequence of int, optional
            Positions in the selection (default: all).

        Returns
        -------
        tuple of Tensor
            Images (B, 3, 224, 224), labels (B,) long, file numbers (B,) long.
        """
        positions = range(len(self)) if positions is None else positions
        items = [self[i] for i in positions]
        if not items:
            raise ValueError("no positions given.")
        xs, labels, idx = zip(*items)
        return torch.stack(xs), torch.tensor(labels, dtype=torch.long), torch.tensor(idx, dtype=torch.long)
