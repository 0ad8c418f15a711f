"""The embedded VDSR (pytorch-vdsr's weights in invnb/data/) and the embedded SR images: no download needed."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from conftest import require_test_data

import invnb.models.vdsr as vdsr_module
from invnb.datasets import sha256sum
from invnb.models import EMBEDDED_VDSR_CHECKPOINT, VDSR, load_embedded_vdsr
from invnb.models.vdsr import EMBEDDED_VDSR_LICENSE, EMBEDDED_VDSR_META
from invnb.sr import (
    EMBEDDED_SR_IMAGES,
    center_crop,
    embedded_hr_images,
    load_embedded_sr_set,
    load_sr_folder,
    psnr,
    y_to_tensor,
)

#: pytorch-vdsr's README (Set5, Y channel, border = scale shaved).
PYTORCH_VDSR_SET5 = {2: 37.65, 3: 33.77, 4: 31.45}


@pytest.fixture(scope="module")
def model() -> VDSR:
    torch.set_num_threads(1)
    return load_embedded_vdsr()


def _super_resolve(model, sample) -> np.ndarray:
    with torch.no_grad():
        return model.super_resolve(y_to_tensor(sample.im_b_y)).clamp(0, 1)[0, 0].double().numpy()


def test_shipped_file_is_a_plain_state_dict_with_recorded_sha256():
    meta = json.loads(EMBEDDED_VDSR_META.read_text())
    assert EMBEDDED_VDSR_CHECKPOINT.stat().st_size < 5_000_000
    assert sha256sum(EMBEDDED_VDSR_CHECKPOINT) == meta["sha256"]
    state = torch.load(EMBEDDED_VDSR_CHECKPOINT, map_location="cpu", weights_only=True)
    reference = VDSR().state_dict()
    assert list(state) == list(reference)
    assert all(state[k].shape == reference[k].shape and state[k].dtype == torch.float32 for k in state)


def test_provenance_and_licence_ship_beside_it():
    meta = json.loads(EMBEDDED_VDSR_META.read_text())
    assert meta["source_repository"] == "github.com/twtygqyy/pytorch-vdsr"
    assert len(meta["source_commit"]) == 40 and meta["source_path"] == "model/model_epoch_50.pth"
    assert len(meta["source_sha256"]) == 64 and meta["file"] == EMBEDDED_VDSR_CHECKPOINT.name
    notice = EMBEDDED_VDSR_LICENSE.read_text()
    assert "MIT License" in notice and "Copyright" in notice and "Permission is hereby granted" in notice


def test_tampered_file_is_refused(tmp_path, monkeypatch):
    bad = tmp_path / EMBEDDED_VDSR_CHECKPOINT.name
    shutil.copy(EMBEDDED_VDSR_CHECKPOINT, bad)
    with open(bad, "ab") as fh:
        fh.write(b"\0")
    monkeypatch.setattr(vdsr_module, "EMBEDDED_VDSR_CHECKPOINT", bad)
    with pytest.raises(ValueError, match="sha256"):
        load_embedded_vdsr()
    monkeypatch.setattr(vdsr_module, "EMBEDDED_VDSR_CHECKPOINT", tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError, match="data/"):
        load_embedded_vdsr()


def test_embedded_images_ship_with_the_packages():
    images = embedded_hr_images()
    assert list(images) == list(EMBEDDED_SR_IMAGES)
    for name, img in images.items():
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3, name
        assert min(img.shape[:2]) >= 256, name
    assert np.array_equal(images["camera"][..., 0], images["camera"][..., 2])  # grey, replicated
    with pytest.raises(ValueError, match="unknown embedded image"):
        embedded_hr_images(["lena"])


def test_embedded_set_goes_through_the_sr_pipeline():
    samples = load_embedded_sr_set(3, names=["artificial", "chelsea"])
    assert [s.name for s in samples] == ["artificial", "chelsea"]
    for s in samples:
        h, w = s.im_gt_y.shape
        assert h % 3 == 0 and w % 3 == 0 and s.im_b_y.shape == (h, w) and s.im_l_y.shape == (h // 3, w // 3)
        # MATLAB's Y range in 0..255 (bicubic may overshoot a little)
        assert 15.5 < s.im_gt_y.min() and s.im_gt_y.max() < 235.5
    assert len(load_embedded_sr_set(2, limit=2)) == 2


@pytest.mark.parametrize("name", ["astronaut", "camera", "coffee", "rocket"])
def test_embedded_vdsr_beats_bicubic_on_embedded_photographs(model, name):
    sample = center_crop(load_embedded_sr_set(2, names=[name])[0], 96)
    gt = sample.im_gt_y / 255.0
    bicubic = psnr(sample.im_b_y / 255.0, gt, data_range=1.0, border=2)
    ours = psnr(_super_resolve(model, sample), gt, data_range=1.0, border=2)
    assert ours > bicubic + 1.0, (name, bicubic, ours)


@pytest.mark.slow
def test_embedded_vdsr_set5_psnr_matches_pytorch_vdsr(model, scale=2):
    """Whole Set5 at x2 (x3 and x4: ``scripts/vdsr_set5_psnr.py --weights embedded``)."""
    data = require_test_data("sr", "Set5")
    values = [psnr(_super_resolve(model, s), s.im_gt_y / 255.0, data_range=1.0, border=scale)
              for s in load_sr_folder(data / "sr" / "Set5", scale)]
    assert len(values) == 5
    assert np.mean(values) == pytest.approx(PYTORCH_VDSR_SET5[scale], abs=0.03)
