"""The embedded SRCNNs (invnb/data/srcnn_embedded_x{2,3,4}.pt): safe loading, the residual rewrite, the inverse on it."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import invnb.models.srcnn as srcnn_module
from invnb.datasets import sha256sum
from invnb.inverse import LayerwiseInverse
from invnb.models import (
    EMBEDDED_SRCNN_DIR,
    EMBEDDED_SRCNN_META,
    EMBEDDED_SRCNN_SCALES,
    SRCNN,
    SRCNNResidual,
    embedded_srcnn_checkpoint,
    load_embedded_srcnn,
    load_srcnn,
    srcnn_identity_init_,
)


@pytest.fixture(scope="module")
def srcnn2() -> SRCNN:
    torch.set_num_threads(1)
    return load_embedded_srcnn(2)


def test_every_shipped_file_is_a_small_plain_state_dict_with_its_recorded_sha256():
    meta = json.loads(EMBEDDED_SRCNN_META.read_text())
    reference = SRCNN(**meta["architecture"]).state_dict()
    for scale in EMBEDDED_SRCNN_SCALES:
        path = EMBEDDED_SRCNN_DIR / embedded_srcnn_checkpoint(scale)
        assert path.stat().st_size < 1_000_000
        assert sha256sum(path) == meta["models"][str(scale)]["sha256"]
        state = torch.load(path, map_location="cpu", weights_only=True)
        assert list(state) == list(reference)
        assert all(state[k].shape == reference[k].shape and state[k].dtype == torch.float32 for k in state)
    assert set(meta["data"]["images"]) and all(meta["data"]["images"].values())  # every training image's licence


def test_a_damaged_file_is_refused_with_a_clear_error(tmp_path, monkeypatch):
    for scale in EMBEDDED_SRCNN_SCALES:
        shutil.copy(EMBEDDED_SRCNN_DIR / embedded_srcnn_checkpoint(scale), tmp_path)
    shutil.copy(EMBEDDED_SRCNN_META, tmp_path)
    monkeypatch.setattr(srcnn_module, "EMBEDDED_SRCNN_DIR", tmp_path)
    monkeypatch.setattr(srcnn_module, "EMBEDDED_SRCNN_META", tmp_path / EMBEDDED_SRCNN_META.name)
    assert isinstance(load_embedded_srcnn(3), SRCNN)  # the copies load
    bad = tmp_path / embedded_srcnn_checkpoint(3)
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the weights
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"srcnn_embedded_x3\.pt has sha256 .* records"):
        load_embedded_srcnn(3)
    bad.unlink()
    with pytest.raises(FileNotFoundError, match="invnb/data/"):
        load_embedded_srcnn(3)
    with pytest.raises(ValueError, match="scales"):
        load_embedded_srcnn(5)


def test_load_srcnn_reads_a_state_dict_and_refuses_other_files(tmp_path, srcnn2):
    path = tmp_path / "w.pt"
    torch.save(srcnn2.state_dict(), path)
    x = torch.rand(1, 1, 20, 20, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(load_srcnn(path)(x), srcnn2(x), atol=1e-6)
    torch.save({"conv1.weight": torch.zeros(4, 1, 3, 3)}, path)
    with pytest.raises(ValueError, match="not an SRCNN state dict"):
        load_srcnn(path)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="weights_only"):
        load_srcnn(path)
    with pytest.raises(FileNotFoundError):
        load_srcnn(tmp_path / "missing.pt")


@pytest.mark.parametrize("scale", EMBEDDED_SRCNN_SCALES)
def test_the_residual_chain_plus_its_input_is_the_srcnn(scale):
    srcnn = load_embedded_srcnn(scale)
    residual = SRCNNResidual.from_srcnn(srcnn)
    assert residual.predicts_residual and not srcnn.predicts_residual
    assert [type(m).__name__ for m in residual.children()] == ["Conv2d", "ReLU", "Conv2d", "ReLU", "Conv2d"]
    gen = torch.Generator().manual_seed(scale)
    x = torch.rand(3, 1, 37, 29, generator=gen)
    x[0, 0, :5] = 0.0  # the input's range ends included
    x[1, 0, :, :4] = 1.0
    with torch.no_grad():
        err = (residual(x) + x - srcnn(x)).abs().max().item()
        assert err < 1e-5
        assert (residual.super_resolve(x) - srcnn.super_resolve(x)).abs().max().item() < 1e-5
    with pytest.raises(TypeError):
        SRCNNResidual.from_srcnn(residual)


def test_identity_initialisation_returns_its_input():
    model = srcnn_identity_init_(SRCNN(channels=(8, 4)), torch.Generator().manual_seed(0), std=0.0)
    x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert (model(x) - x).abs().max().item() < 1e-5


@pytest.mark.parametrize("setting", ["vdsr", "vdsr_paper"])
def test_the_layerwise_inverse_runs_on_the_residual_srcnn(srcnn2, setting):
    model = SRCNNResidual.from_srcnn(srcnn2)
    x = torch.rand(2, 1, 24, 24, generator=torch.Generator().manual_seed(2))
    inverse = LayerwiseInverse.from_setting(model, setting, keep_features=False)
    with torch.no_grad():
        y = model(x)
    result = inverse.invert(x, target=y)
    x_hat = result.input
    assert x_hat.shape == x.shape and torch.isfinite(x_hat).all() and not result.failed.any()
    assert (x_hat - x).abs().max().item() > 1e-3  # the inverse removed something
    one = inverse.invert(x[1:], target=y[1:]).input  # batch-independent
    assert (one - x_hat[1:]).abs().max().item() < 1e-4
