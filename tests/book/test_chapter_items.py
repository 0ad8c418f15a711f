"""invnb.book.chapter_items without a cluster: the items read the same images the chapters' kernels read."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from invnb.book import image_batch, sr_samples
from invnb.datasets import ImageNetVal, make_shapes, normalize, val_filename

DESC = dict(n_images=0, seed=0, imagenet_dir=None, labels_file=None, start=1, end=50001, stride=10, device="cpu")


def test_embedded_batches_are_the_chapters_slices():
    data = make_shapes(5, seed=7)
    x_all = normalize(data.images)
    desc = {**DESC, "n_images": 5, "seed": 7}
    x, masks = image_batch(4, 2, model_name="embedded", **desc)  # the last batch holds one image
    assert x.shape == (1, 3, 64, 64) and masks.shape == (1, 64, 64)
    torch.testing.assert_close(x, x_all[4:5])
    assert torch.equal(masks, data.masks[4:5])
    with pytest.raises(ValueError, match="outside the 5 images"):
        image_batch(5, 2, model_name="embedded", **desc)


def test_imagenet_batches_are_the_chapters_images(tmp_path):
    folder = tmp_path / "val"
    folder.mkdir()
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (120, 120, 0)]
    for i, colour in enumerate(colours, start=1):
        Image.new("RGB", (256 + 16 * i, 240), colour).save(folder / val_filename(i), quality=95)
    labels = tmp_path / "labels.txt"
    labels.write_text("1\n2\n3\n4\n")
    desc = {**DESC, "imagenet_dir": str(folder), "labels_file": str(labels), "start": 1, "end": 5, "stride": 2}
    images = ImageNetVal(folder, labels, start=1, end=5, stride=2)  # images 1 and 3, as the kernel reads them
    x, masks = image_batch(0, 8, model_name="vgg16", **desc)
    assert masks is None and x.shape == (2, 3, 224, 224)
    torch.testing.assert_close(x, torch.stack([images[0][0], images[1][0]]))
    with pytest.raises(ValueError, match="needs imagenet_dir and labels_file"):
        image_batch(0, 8, model_name="vgg16", **DESC)


def test_embedded_sr_samples_are_keyed_as_in_chapter_03():
    samples = sr_samples(None, ["Set5"], [2], 1, 16)
    (key,) = samples
    assert key.startswith("embedded-x2-")
    sample = samples[key]
    assert sample.scale == 2 and sample.im_gt_y.shape == (16, 16) and sample.im_b_y.shape == (16, 16)
