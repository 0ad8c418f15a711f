"""Every bad input of issue 12 that this package's loaders and layer stack see: a clear error or the right result.

Each row makes the bad input in a temporary folder, calls the public function, and
expects either an error whose message names the cause (and the file, where there is
one) or the correct result. The inverse engine's own argument checks (``max_iter``,
``tol``, ``target``) live in tests/test_inverse.py; damaged result-store items in
tests/test_runs.py; the CLI in tests/test_cli.py.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torch import nn

from invnb.inverse import LayerStack, LayerwiseInverse, UnsupportedLayerError
from invnb.models import VDSR, load_embedded_model, load_vdsr, load_vdsr_state_dict
from invnb.sr import SR_DATASETS, load_sr_folder, read_image


def _png(path, size=(8, 8)):
    Image.fromarray(np.full((*size, 3), 100, np.uint8)).save(path)
    return path


def _truncated_checkpoint(path):
    buf = path.with_suffix(".full")
    torch.save(VDSR(depth=3).state_dict(), buf)
    data = buf.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _html(path):
    path.write_text("<!DOCTYPE html><html><body>404 Not Found</body></html>")
    return path


def _empty(path):
    path.write_bytes(b"")
    return path


CHECKPOINT_CASES = [
    # (loader, make the bad file, error type, regex the message must match; {path} is the file)
    (load_vdsr, lambda p: _png(p.with_suffix(".png")), ValueError, r"{path} is not a PyTorch checkpoint \(it is a PNG image\)"),
    (load_vdsr, _html, ValueError, r"{path} is not a PyTorch checkpoint \(it is an HTML/XML page\)"),
    (load_vdsr, _empty, ValueError, r"{path} is not a PyTorch checkpoint \(it is empty\)"),
    (load_vdsr, _truncated_checkpoint, ValueError, r"{path} could not be read as a PyTorch checkpoint .*truncated or damaged"),
    (load_vdsr_state_dict, lambda p: _png(p.with_suffix(".png")), ValueError, r"{path} is not a PyTorch checkpoint \(it is a PNG image\)"),
    (load_vdsr_state_dict, _truncated_checkpoint, ValueError, r"{path} could not be read as a PyTorch checkpoint"),
    (load_embedded_model, lambda p: _png(p.with_suffix(".png")), ValueError, r"{path} is not a PyTorch checkpoint \(it is a PNG image\)"),
    (load_embedded_model, _empty, ValueError, r"{path} is not a PyTorch checkpoint \(it is empty\)"),
]


@pytest.mark.parametrize("loader, make, error, cause", CHECKPOINT_CASES,
                         ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CHECKPOINT_CASES)])
def test_a_file_that_is_not_a_checkpoint_is_named(tmp_path, loader, make, error, cause):
    path = make(tmp_path / "weights.pth")
    with pytest.raises(error, match=cause.format(path=re.escape(str(path)))):
        loader(path)


# --- images -------------------------------------------------------------------------------


def test_a_16bit_png_is_scaled_to_8_bits(tmp_path):
    ramp = np.linspace(0, 65535, 32 * 32).round().astype(np.uint16).reshape(32, 32)
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I;16")  # really a 16-bit file
    img = read_image(tmp_path / "g16.png")
    assert img.dtype == np.uint8 and img.shape == (32, 32, 3)
    np.testing.assert_array_equal(img[..., 0], np.round(ramp / 257.0).astype(np.uint8))
    assert (img == 255).mean() < 0.01  # was 99% when 16-bit values were clipped to 255


@pytest.mark.parametrize(
    "make, cause",
    [
        (lambda p: Image.fromarray(np.random.rand(4, 4).astype(np.float32)).save(p.with_suffix(".tiff")) or p.with_suffix(".tiff"),
         r"floating-point image \(mode F\)"),
        (lambda p: _html(p.with_suffix(".png")), r"is not a readable image"),
        (lambda p: _empty(p.with_suffix(".bmp")), r"is not a readable image"),
    ],
    ids=["float-tiff", "html-as-png", "empty-bmp"],
)
def test_unusable_image_files_are_refused_naming_the_file(tmp_path, make, cause):
    path = make(tmp_path / "img")
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*" + cause):
        read_image(path)


def test_a_folder_load_skips_an_unusable_image_and_names_it(tmp_path):
    for name in ("a", "c", "d"):
        _png(tmp_path / f"{name}.png", size=(12, 12))
    _png(tmp_path / "b_tiny.png", size=(1, 1))  # too small for x2
    _html(tmp_path / "e.png")  # not an image
    with pytest.warns(UserWarning) as record:
        samples = load_sr_folder(tmp_path, 2)
    messages = " ".join(str(w.message) for w in record)
    assert "b_tiny.png" in messages and "too small for scale 2" in messages
    assert "e.png" in messages and "not a readable image" in messages
    assert [s.name for s in samples] == ["a", "c", "d"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert [s.name for s in load_sr_folder(tmp_path, 2, limit=2)] == ["a", "c"]  # limit counts usable ones
    with pytest.raises(ValueError, match=r"b_tiny\.png.*too small"):
        load_sr_folder(tmp_path, 2, on_error="raise")


def test_a_folder_with_no_usable_image_says_so(tmp_path):
    _png(tmp_path / "tiny.png", size=(1, 1))
    with pytest.warns(UserWarning, match="tiny.png"), pytest.raises(ValueError, match="no usable image"):
        load_sr_folder(tmp_path, 3)


def test_every_sr_download_is_pinned_to_a_commit():
    """No URL points at a moving branch; Set5, Set14 and BSDS100 carry a SHA-256 each file."""
    for name, spec in SR_DATASETS.items():
        for url, fname, sha in spec.files:
            assert not re.search(r"/(main|master)/", url), f"{name}: {url} follows a branch"
            assert re.search(r"/[0-9a-f]{7,40}/", url), f"{name}: {url} names no commit"
            if name in ("Set5", "Set14", "BSDS100"):
                assert sha and re.fullmatch(r"[0-9a-f]{64}", sha), f"{name}: {fname} has no checksum"
    assert len(SR_DATASETS["Set14"].files) == 42  # 14 images x scales 2, 3, 4


# --- models and inputs the inverse would get ------------------------------------------------


class _Sigmoid(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)

    def forward(self, x):
        return torch.sigmoid(self.conv(x))


@pytest.mark.parametrize(
    "make, cause",
    [
        (lambda: torchvision.models.squeezenet1_0(weights=None), r"the chain branches"),
        (_Sigmoid, r"functional op torch\.sigmoid"),
        (lambda: nn.Sequential(nn.Conv2d(3, 2, 3), nn.GELU()), r"`1` is a GELU"),
    ],
    ids=["squeezenet", "functional-op", "unsupported-layer"],
)
def test_unsupported_models_fail_at_construction(make, cause):
    from invnb import LayerwiseInverse

    with pytest.raises(UnsupportedLayerError, match=cause):
        LayerwiseInverse(make())


@pytest.mark.parametrize(
    "shape, dtype, error, cause",
    [
        ((2, 1, 64, 64), torch.float32, ValueError, r"3-channel images .*; the input has 1 channels"),
        ((2, 4, 64, 64), torch.float32, ValueError, r"3-channel images .*; the input has 4 channels"),
        ((1, 3, 1, 1), torch.float32, ValueError, r"too small .*at least"),
        ((1, 3, 8, 8), torch.float32, ValueError, r"too small .*at least"),
        ((2, 3, 64, 64), torch.float64, TypeError, r"float64 but the model's weights are torch\.float32"),
        ((2, 3, 64, 64), torch.float16, TypeError, r"float16 but the model's weights are torch\.float32"),
        ((2, 3, 64, 64), torch.float32, None, None),
    ],
    ids=["1-channel", "4-channel", "1x1", "8x8", "float64", "half", "good"],
)
def test_inputs_the_embedded_model_cannot_take_are_refused(shape, dtype, error, cause):
    stack = LayerStack(load_embedded_model())
    x = torch.rand(shape).to(dtype)
    if error is None:
        stack.check_input(x)
        return
    with pytest.raises(error, match=cause):
        stack.check_input(x)


@pytest.mark.parametrize("kw", [dict(max_iter=0), dict(max_iter=-5), dict(tol=float("nan")), dict(tol=-1e-3)])
def test_bad_solver_settings_are_refused(kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        LayerwiseInverse(load_embedded_model(), **kw)


@pytest.mark.parametrize("target, cause", [(2.7, "must be integers"), ("disc", "the string 'disc'"),
                                           (True, "must be integers")])
def test_bad_targets_are_refused(target, cause):
    with pytest.raises(TypeError, match=cause):
        LayerwiseInverse(load_embedded_model(), max_iter=2).invert(torch.rand(2, 3, 64, 64), target=target)
