"""invnb.sr: the MATLAB SR pipeline against MATLAB-made reference files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from conftest import require_test_data
from PIL import Image

import invnb.sr.datasets as sr_data
from invnb.sr import (
    SR_DATASETS,
    chirp_hr,
    chirp_image,
    download_sr_dataset,
    hr_image_paths,
    imresize,
    load_sr_folder,
    load_sr_mat,
    make_sr_sample,
    modcrop,
    read_image,
    rgb2ycbcr,
    ycbcr2rgb,
)

REFERENCES = ["bird_GT_x2", "bird_GT_x3", "bird_GT_x4", "butterfly_GT_x2", "butterfly_GT_x3", "butterfly_GT_x4"]


@pytest.fixture(scope="module")
def data_dir() -> Path:
    return require_test_data("sr", "Set5_mat_reference")


# --------------------------------------------------------------------------
# Against the MATLAB reference files
# --------------------------------------------------------------------------
@pytest.mark.parametrize("ref", REFERENCES)
def test_pipeline_reproduces_matlab_reference(data_dir, ref):
    mat = load_sr_mat(data_dir / "sr" / "Set5_mat_reference" / f"{ref}.mat")
    hr = read_image(data_dir / "sr" / "Set5" / f"{mat.name}.bmp")
    ours = make_sr_sample(hr, mat.scale, cumulative_crop=True, name=mat.name)
    for key in ("im_gt_y", "im_l_y", "im_b_y"):
        ref_arr, our_arr = getattr(mat, key), getattr(ours, key)
        assert our_arr.shape == ref_arr.shape, key
        assert np.abs(our_arr - ref_arr).max() < 1e-6, key
    np.testing.assert_array_equal(ours.im_gt, mat.im_gt)


def test_ycbcr2rgb_reproduces_reference_rgb(data_dir):
    raw = scipy.io.loadmat(data_dir / "sr" / "Set5_mat_reference" / "butterfly_GT_x3.mat")
    np.testing.assert_allclose(ycbcr2rgb(raw["im_l_ycbcr"]) * 255, raw["im_l"], atol=1e-6)


def test_cumulative_crop_matches_reference_sizes_and_default_does_not(data_dir):
    hr = read_image(data_dir / "sr" / "Set5" / "butterfly_GT.bmp")  # 256 x 256
    assert make_sr_sample(hr, 4, cumulative_crop=True).im_b_y.shape == (252, 252)
    assert make_sr_sample(hr, 3, cumulative_crop=True).im_b_y.shape == (255, 255)
    assert make_sr_sample(hr, 4).im_b_y.shape == (256, 256)  # plain modcrop by 4
    assert make_sr_sample(hr, 3).im_b_y.shape == (255, 255)


def test_load_sr_folder_set5(data_dir):
    paths = hr_image_paths(data_dir / "sr" / "Set5")
    assert [p.stem for p in paths] == ["baby_GT", "bird_GT", "butterfly_GT", "head_GT", "woman_GT"]
    (sample,) = load_sr_folder(data_dir / "sr" / "Set5", scale=4, limit=1)
    assert sample.name == "baby_GT" and sample.im_l_y.shape == (128, 128)


def test_set5_checksums_in_registry_match_the_files(data_dir):
    from invnb.datasets import sha256sum

    for url, fname, sha in SR_DATASETS["Set5"].files:
        assert fname in url
        assert sha256sum(data_dir / "sr" / "Set5" / fname) == sha


# --------------------------------------------------------------------------
# Elementary properties
# --------------------------------------------------------------------------
def test_rgb2ycbcr_known_values():
    px = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0]]], dtype=np.uint8)
    ycc = rgb2ycbcr(px.astype(np.float64) / 255) * 255
    np.testing.assert_allclose(ycc[0, 0], [16, 128, 128], atol=1e-12)
    np.testing.assert_allclose(ycc[0, 1], [235, 128, 128], atol=1e-12)  # 16 + 219
    np.testing.assert_allclose(ycc[0, 2], [16 + 65.481, 128 - 37.797, 128 + 112], atol=1e-12)
    # uint8 input gives the float result rounded, as MATLAB does
    np.testing.assert_array_equal(rgb2ycbcr(px), np.floor(ycc + 0.5).astype(np.uint8))


def test_ycbcr_round_trip():
    rgb = np.random.default_rng(0).random((5, 7, 3))
    np.testing.assert_allclose(ycbcr2rgb(rgb2ycbcr(rgb)), rgb, atol=1e-12)


def test_rgb2ycbcr_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        rgb2ycbcr(np.zeros((4, 4)))
    with pytest.raises(TypeError, match="uint8"):
        rgb2ycbcr(np.zeros((4, 4, 3), dtype=np.int32))


def test_modcrop():
    img = np.arange(7 * 10).reshape(7, 10)
    assert modcrop(img, 3).shape == (6, 9)
    np.testing.assert_array_equal(modcrop(img, 3), img[:6, :9])
    with pytest.raises(ValueError, match="positive integer"):
        modcrop(img, 0)


def test_imresize_preserves_constants_and_sizes():
    const = np.full((12, 18), 3.25)
    down = imresize(const, 1 / 3)
    assert down.shape == (4, 6)
    np.testing.assert_allclose(down, 3.25, atol=1e-12)
    np.testing.assert_allclose(imresize(down, 3), 3.25, atol=1e-12)
    assert imresize(np.zeros((10, 10)), 1 / 3).shape == (4, 4)  # ceil, as MATLAB
    assert imresize(np.zeros((5, 6, 3)), output_shape=(10, 3)).shape == (10, 3, 3)


def test_imresize_of_uint8_is_rounded_uint8():
    img = np.random.default_rng(1).integers(0, 256, (8, 8), dtype=np.uint8)
    out = imresize(img, 0.5)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.clip(np.floor(imresize(img.astype(float), 0.5) + 0.5), 0, 255))


def test_grey_images_are_replicated():
    grey = np.random.default_rng(2).integers(0, 256, (16, 16), dtype=np.uint8)
    a = make_sr_sample(grey, 2)
    b = make_sr_sample(np.repeat(grey[..., None], 3, axis=2), 2)
    np.testing.assert_array_equal(a.im_b_y, b.im_b_y)
    # grey RGB has neutral chroma: Y = 16 + 219 g / 255
    np.testing.assert_allclose(a.im_gt_y, 16 + 219 * grey.astype(np.float64) / 255.0, atol=1e-10)


def test_make_sr_sample_rejects_floats():
    with pytest.raises(TypeError, match="uint8"):
        make_sr_sample(np.zeros((8, 8, 3)), 2)


# --------------------------------------------------------------------------
# The Artificial image
# --------------------------------------------------------------------------
def test_chirp_image_formula():
    img = chirp_image(512, 1024)
    assert img.shape == (512, 512)
    assert img.min() == 0.0 and img.max() == 1.0
    np.testing.assert_allclose(img, img.T)  # separable and symmetric in x, y
    raw = np.sin(np.arange(1, 513) ** 2 / 1024.0)
    prod = np.outer(raw, raw)
    # value at (y=3, x=100) with 1-based coordinates
    expected = (np.sin(9 / 1024) * np.sin(10000 / 1024) - prod.min()) / (prod.max() - prod.min())
    assert img[2, 99] == pytest.approx(expected, abs=1e-12)


def test_chirp_hr_is_grey_uint8_and_chirps():
    hr = chirp_hr(512, 1024)
    assert hr.shape == (512, 512, 3) and hr.dtype == np.uint8
    assert (hr[..., 0] == hr[..., 2]).all()
    # local frequency grows with x: more sign changes in the right half of a row
    row = chirp_image(512, 1024)[300] - 0.5
    crossings = np.abs(np.diff(np.sign(row))) > 0
    assert crossings[256:].sum() > 2 * crossings[:256].sum()
    s = make_sr_sample(hr, 4, cumulative_crop=True)
    assert s.im_b_y.shape == (508, 508)  # 512 (x2) -> 510 (x3) -> 508 (x4)


# --------------------------------------------------------------------------
# Files and folders
# --------------------------------------------------------------------------
def _png(path: Path, size=(8, 8)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((*size, 3), dtype=np.uint8)).save(path)


def test_hr_image_paths_selfexsr_layout(tmp_path):
    for k in (2, 4):
        for i in (1, 2):
            _png(tmp_path / f"image_SRF_{k}" / f"img_00{i}_SRF_{k}_HR.png")
            _png(tmp_path / f"image_SRF_{k}" / f"img_00{i}_SRF_{k}_LR.png")
            _png(tmp_path / f"image_SRF_{k}" / f"img_00{i}_SRF_{k}_bicubic.png")
    assert [p.name for p in hr_image_paths(tmp_path, scale=4)] == ["img_001_SRF_4_HR.png", "img_002_SRF_4_HR.png"]
    assert all("SRF_2_HR" in p.name for p in hr_image_paths(tmp_path, scale=3))  # falls back to lowest


def test_hr_image_paths_flat_and_nested_layouts(tmp_path):
    _png(tmp_path / "flat" / "b.png")
    _png(tmp_path / "flat" / "a.bmp")
    _png(tmp_path / "flat" / "a_LR.png")
    _png(tmp_path / "flat" / "a_GT_scale_2.bmp")
    (tmp_path / "flat" / "notes.txt").write_text("x")
    (tmp_path / "flat" / "._b.png").write_bytes(b"AppleDouble")
    assert [p.name for p in hr_image_paths(tmp_path / "flat")] == ["a.bmp", "b.png"]
    _png(tmp_path / "nested" / "Set14_HR" / "zebra.png")
    assert [p.name for p in hr_image_paths(tmp_path / "nested")] == ["zebra.png"]
    with pytest.raises(FileNotFoundError, match="no high-resolution"):
        (tmp_path / "empty").mkdir()
        hr_image_paths(tmp_path / "empty")


def test_load_sr_mat_round_trip_and_errors(tmp_path):
    rng = np.random.default_rng(3)
    arrays = {"im_gt_y": rng.random((6, 6)) * 255, "im_b_y": rng.random((6, 6)) * 255}
    scipy.io.savemat(tmp_path / "pic_x2.mat", arrays)
    s = load_sr_mat(tmp_path / "pic_x2.mat")
    assert s.scale == 2 and s.name == "pic" and s.im_l_y is None
    np.testing.assert_array_equal(s.im_gt_y, arrays["im_gt_y"])
    scipy.io.savemat(tmp_path / "other_x3.mat", {"im_gt": np.zeros((2, 2))})
    with pytest.raises(KeyError, match="im_gt_y"):
        load_sr_mat(tmp_path / "other_x3.mat")
    scipy.io.savemat(tmp_path / "noscale.mat", arrays)
    with pytest.raises(ValueError, match="scale"):
        load_sr_mat(tmp_path / "noscale.mat")
    assert load_sr_mat(tmp_path / "noscale.mat", scale=4).scale == 4


def test_v73_mat_without_h5py_gives_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "big_x2.mat"
    path.write_bytes(b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(512, b" ") + b"\x89HDF\r\n")
    monkeypatch.setitem(__import__("sys").modules, "h5py", None)  # import h5py -> ImportError
    with pytest.raises(ImportError, match="h5py"):
        load_sr_mat(path)


def test_download_sr_dataset_guards(tmp_path):
    with pytest.raises(ValueError, match="unknown SR data set"):
        download_sr_dataset("Set6", tmp_path)
    with pytest.raises(ValueError, match="allow_unverified"):
        download_sr_dataset("Urban100", tmp_path)
    assert not (tmp_path / "sr").exists()  # refused before any transfer


def test_download_sr_dataset_plumbing(data_dir, tmp_path, monkeypatch):
    calls = []

    def fake_download(url, dest, sha256, progress=True):
        calls.append((url, sha256))
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        Path(dest).write_bytes((data_dir / "sr" / "Set5" / Path(dest).name).read_bytes())
        return Path(dest)

    monkeypatch.setattr(sr_data, "download", fake_download)
    folder = download_sr_dataset("Set5", tmp_path, progress=False)
    assert folder == tmp_path / "sr" / "Set5"
    assert len(calls) == 5 and all(sha is not None and url.startswith("https://") for url, sha in calls)
    assert len(hr_image_paths(folder)) == 5
