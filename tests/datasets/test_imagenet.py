"""Tests of invnb.datasets.imagenet on a tiny folder of real JPEG files written here, and on the shared label files."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO
from PIL import Image

from invnb.datasets import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageNetVal,
    read_class_names,
    read_labels,
    val_filename,
)

COLOURS = {1: (200, 30, 30), 2: (30, 200, 30), 3: (30, 30, 200), 4: (128, 128, 128), 5: (250, 250, 10)}


def _shared_data() -> Path:
    root = Path(os.environ.get("INVNB_TEST_DATA", REPO.parent / "shared" / "data"))
    folder = root / "imagenet"
    if not (folder / "ILSVRC2012_validation_ground_truth.txt").is_file():
        msg = f"ImageNet label files not found under {folder}; set INVNB_TEST_DATA to the shared data folder"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return folder


@pytest.fixture
def tiny_val(tmp_path):
    """Five uniformly coloured JPEGs of different sizes, labels and class names."""
    folder = tmp_path / "val"
    folder.mkdir()
    sizes = {1: (300, 400), 2: (256, 256), 3: (500, 300), 4: (224, 240), 5: (320, 320)}
    for i, size in sizes.items():
        Image.new("RGB", size, COLOURS[i]).save(folder / val_filename(i), quality=95)
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(["7", "0", "3", "999", "12"]) + "\n")
    names = tmp_path / "names.txt"
    names.write_text("".join(f"class{i}, synonym{i},\n" for i in range(1000)))
    return folder, labels, names


def test_range_selection_like_the_paper(tiny_val):
    folder, labels, names = tiny_val
    data = ImageNetVal(folder, labels, names, start=1, end=6, stride=2)
    assert data.indices == [1, 3, 5]  # range(1, 6, 2): end exclusive
    assert len(ImageNetVal(folder, labels)) == 5
    assert ImageNetVal(folder, labels, start=2, end=4).indices == [2, 3]
    x, label, index = data[1]
    assert (label, index) == (3, 3)
    assert data.class_name(label) == "class3"
    assert data.path(0).name == "ILSVRC2012_val_00000001.JPEG"


def test_preprocessing_output(tiny_val):
    folder, labels, _ = tiny_val
    data = ImageNetVal(folder, labels)
    x, y, idx = data.batch()
    assert x.shape == (5, 3, 224, 224) and x.dtype == torch.float32
    assert y.tolist() == [7, 0, 3, 999, 12] and idx.tolist() == [1, 2, 3, 4, 5]
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    for i in range(5):
        expected = (torch.tensor(COLOURS[i + 1], dtype=torch.float32)[:, None, None] / 255 - mean) / std
        # a uniform colour survives JPEG, resizing and cropping up to a couple of grey levels
        assert torch.allclose(x[i], expected.expand(3, 224, 224), atol=3 / 255 / 0.224)


def test_resize_then_center_crop(tmp_path):
    # 512 x 256 (W x H): the short side is already 256, so the 224 crop takes
    # columns 144..367 -- half red, half blue around the middle column 256.
    img = np.zeros((256, 512, 3), dtype=np.uint8)
    img[:, :256] = (255, 0, 0)
    img[:, 256:] = (0, 0, 255)
    folder = tmp_path / "val"
    folder.mkdir()
    Image.fromarray(img).save(folder / val_filename(1), quality=95)
    (tmp_path / "l.txt").write_text("1\n")
    x, _, _ = ImageNetVal(folder, tmp_path / "l.txt")[0]
    rgb = x * torch.tensor(IMAGENET_STD)[:, None, None] + torch.tensor(IMAGENET_MEAN)[:, None, None]
    assert rgb[0, :, :100].mean() > 0.95 and rgb[2, :, :100].mean() < 0.05  # left: red
    assert rgb[2, :, 124:].mean() > 0.95 and rgb[0, :, 124:].mean() < 0.05  # right: blue
    # a 2:1 image twice as large is resized to a 256 short side first: same crop
    big = folder.parent / "big"
    big.mkdir()
    Image.fromarray(np.repeat(np.repeat(img, 2, 0), 2, 1)).save(big / val_filename(1), quality=95)
    x2, _, _ = ImageNetVal(big, tmp_path / "l.txt")[0]
    assert (x2 - x).abs().mean() < 0.05


def test_clear_errors(tiny_val, tmp_path):
    folder, labels, names = tiny_val
    with pytest.raises(FileNotFoundError, match="validation folder not found"):
        ImageNetVal(tmp_path / "nope", labels)
    with pytest.raises(FileNotFoundError, match="label file not found"):
        ImageNetVal(folder, tmp_path / "nope.txt")
    with pytest.raises(FileNotFoundError, match="class-name file"):
        ImageNetVal(folder, labels, tmp_path / "nope.txt")
    os.remove(folder / val_filename(4))
    with pytest.raises(FileNotFoundError, match="1 of 5 selected images are missing.*00000004"):
        ImageNetVal(folder, labels)
    assert ImageNetVal(folder, labels, end=4).indices == [1, 2, 3]  # the missing one is not selected
    with pytest.raises(ValueError, match="past the 5 labelled"):
        ImageNetVal(folder, labels, end=10)
    with pytest.raises(ValueError, match="selects no image"):
        ImageNetVal(folder, labels, start=3, end=3)
    with pytest.raises(ValueError, match="1-based"):
        ImageNetVal(folder, labels, start=0)
    bad = tmp_path / "bad.txt"
    bad.write_text("1\nfish\n")
    with pytest.raises(ValueError, match="line 2"):
        read_labels(bad)
    with pytest.raises(IndexError):
        ImageNetVal(folder, labels, end=4)[3]
    with pytest.raises(ValueError, match="validation images are numbered from 1"):
        val_filename(0)


def test_shared_label_files():
    folder = _shared_data()
    labels = read_labels(folder / "ILSVRC2012_validation_ground_truth.txt")
    assert len(labels) == 50000
    assert min(labels) == 0 and max(labels) == 999
    assert np.bincount(labels).tolist() == [50] * 1000  # ImageNet val: 50 images per class
    names = read_class_names(folder / "ILSVRC2012_validation_ground_truth_text.txt")
    assert len(names) == 1000
    assert names[0] == "tench" and names[1] == "goldfish"  # torchvision's class order
