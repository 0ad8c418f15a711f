"""invnb.models.vdsr: architecture, both checkpoint formats, refusal of crafted pickles."""

from __future__ import annotations

import os
import pickletools
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import require_test_data
from torch import nn

from invnb.models import (
    VDSR,
    VDSR_SHA256,
    UnsafeCheckpointError,
    load_pytorch_vdsr_checkpoint,
    load_vdsr,
    load_vdsr_state_dict,
)
from invnb.sr import load_sr_mat, make_sr_sample, psnr, read_image, y_to_tensor


@pytest.fixture(scope="module")
def data_dir() -> Path:
    return require_test_data("vdsr", "vdsr.pth")


@pytest.fixture(scope="module")
def paper_model(data_dir) -> VDSR:
    return load_vdsr(data_dir / "vdsr" / "vdsr.pth")


# --------------------------------------------------------------------------
# Architecture
# --------------------------------------------------------------------------
def test_leaf_modules_in_registration_order_are_the_forward_pass():
    torch.manual_seed(0)
    model = VDSR(depth=5, channels=8).eval()
    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    names = [n for n, _ in leaves]
    assert names == [
        "input", "relu",
        "residual_layer.0.conv", "residual_layer.0.relu",
        "residual_layer.1.conv", "residual_layer.1.relu",
        "residual_layer.2.conv", "residual_layer.2.relu",
        "output",
    ]  # fmt: skip
    assert all(not m.inplace for _, m in leaves if isinstance(m, nn.ReLU))
    x = torch.rand(2, 1, 9, 11)
    h = x
    for _, m in leaves:
        h = m(h)
    torch.testing.assert_close(model(x), h, rtol=0, atol=0)
    # residual only: the last layer is linear, so negative residuals exist
    assert (model(x) < 0).any()
    torch.testing.assert_close(model.super_resolve(x), x + model(x))


def test_state_dict_keys_have_no_bias():
    keys = list(VDSR().state_dict())
    assert keys[0] == "input.weight" and keys[-1] == "output.weight"
    assert "residual_layer.17.conv.weight" in keys and len(keys) == 20
    assert not any("bias" in k for k in keys)


def test_forward_rejects_rgb():
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        VDSR(depth=3, channels=4)(torch.zeros(1, 3, 8, 8))


# --------------------------------------------------------------------------
# The paper's weights
# --------------------------------------------------------------------------
def test_paper_weights_checksum_and_loaders_agree(data_dir):
    from invnb.datasets import sha256sum

    path = data_dir / "vdsr" / "vdsr.pth"
    assert sha256sum(path) == VDSR_SHA256
    state = load_vdsr_state_dict(path)
    model = load_vdsr(path)
    assert not model.training
    for key, value in state.items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=0, atol=0)


@pytest.mark.parametrize("ref", ["butterfly_GT_x3", "bird_GT_x4"])
def test_psnr_from_our_pipeline_matches_reference_mat(data_dir, paper_model, ref):
    mat = load_sr_mat(data_dir / "sr" / "Set5_mat_reference" / f"{ref}.mat")
    ours = make_sr_sample(read_image(data_dir / "sr" / "Set5" / f"{mat.name}.bmp"), mat.scale, cumulative_crop=True)
    x = torch.cat([y_to_tensor(mat.im_b_y), y_to_tensor(ours.im_b_y)])
    with torch.no_grad():
        hr = paper_model.super_resolve(x).clamp(0, 1).double().numpy()[:, 0]
    p_ref = psnr(hr[0], mat.im_gt_y / 255, data_range=1.0, border=mat.scale)
    p_ours = psnr(hr[1], ours.im_gt_y / 255, data_range=1.0, border=mat.scale)
    p_bicubic = psnr(mat.im_b_y / 255, mat.im_gt_y / 255, data_range=1.0, border=mat.scale)
    assert abs(p_ref - p_ours) < 0.01
    assert p_ref > p_bicubic + 0.5  # the network does super-resolve


# --------------------------------------------------------------------------
# pytorch-vdsr checkpoints, built here with a throwaway module named `vdsr`
# --------------------------------------------------------------------------
def _throwaway_vdsr_module() -> types.ModuleType:
    mod = types.ModuleType("vdsr")

    class Conv_ReLU_Block(nn.Module):  # noqa: N801 - the pickled name
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(64, 64, 3, 1, 1, bias=False)
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x):
            return self.relu(self.conv(x))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.residual_layer = nn.Sequential(*[Conv_ReLU_Block() for _ in range(18)])
            self.input = nn.Conv2d(1, 64, 3, 1, 1, bias=False)
            self.output = nn.Conv2d(64, 1, 3, 1, 1, bias=False)
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x):
            return self.output(self.residual_layer(self.relu(self.input(x)))) + x

    for cls in (Conv_ReLU_Block, Net):
        cls.__module__ = "vdsr"
        cls.__qualname__ = cls.__name__
        setattr(mod, cls.__name__, cls)
    return mod


@pytest.fixture
def pytorch_vdsr_checkpoint(tmp_path, request):
    """Write {"epoch": 3, "model": vdsr.Net} and make `vdsr` unimportable again."""
    legacy = getattr(request, "param", False)
    assert "vdsr" not in sys.modules
    mod = _throwaway_vdsr_module()
    sys.modules["vdsr"] = mod
    try:
        torch.manual_seed(1)
        net = mod.Net().eval()
        x = torch.rand(1, 1, 12, 10)
        with torch.no_grad():
            expected = net(x)
        path = tmp_path / "model_epoch_3.pth"
        with warnings.catch_warnings():  # legacy format wants the (absent) class source
            warnings.filterwarnings("ignore", message="Couldn't retrieve source code")
            torch.save({"epoch": 3, "model": net}, path, _use_new_zipfile_serialization=not legacy)
        weights = {k: v.clone() for k, v in net.state_dict().items()}
    finally:
        del sys.modules["vdsr"]
    return path, weights, x, expected


@pytest.mark.parametrize("pytorch_vdsr_checkpoint", [False, True], indirect=True, ids=["zip", "legacy"])
def test_pytorch_vdsr_checkpoint_loads_without_its_module(pytorch_vdsr_checkpoint):
    path, weights, x, expected = pytorch_vdsr_checkpoint
    with pytest.raises(ImportError):
        __import__("vdsr")
    state = load_pytorch_vdsr_checkpoint(path)
    assert set(state) == set(weights)
    for key, value in weights.items():
        torch.testing.assert_close(state[key], value, rtol=0, atol=0)
    model = load_vdsr(path)  # format detected
    with torch.no_grad():
        # pytorch-vdsr's Net adds the input; ours returns the residual
        torch.testing.assert_close(model.super_resolve(x), expected)
    assert "vdsr" not in sys.modules


def test_state_dict_loader_refuses_pytorch_vdsr_pickle(pytorch_vdsr_checkpoint):
    path, *_ = pytorch_vdsr_checkpoint
    with pytest.raises(UnsafeCheckpointError, match="load_pytorch_vdsr_checkpoint"):
        load_vdsr_state_dict(path)


# --------------------------------------------------------------------------
# Crafted pickles
# --------------------------------------------------------------------------
class _SystemPayload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _EvalPayload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"open({str(self.marker)!r}, 'w').close()",))


def _globals_in(path: Path) -> set[str]:
    """GLOBAL opcodes of a zip-format torch file's data.pkl (read, not executed)."""
    import zipfile

    with zipfile.ZipFile(path) as zf:
        data = zf.read(next(n for n in zf.namelist() if n.endswith("data.pkl")))
    found, strings = set(), []
    for op, arg, _ in pickletools.genops(data):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(arg)
        elif op.name == "STACK_GLOBAL":
            found.add(".".join(strings[-2:]))
        elif op.name == "GLOBAL":
            found.add(arg.replace(" ", "."))
    return found


@pytest.mark.parametrize(
    "payload, culprit",
    [(_SystemPayload, "system"), (_EvalPayload, "eval")],
    ids=["os.system", "builtins.eval"],
)
@pytest.mark.parametrize(
    "loader", [load_vdsr, load_pytorch_vdsr_checkpoint, load_vdsr_state_dict], ids=lambda f: f.__name__
)
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, payload, culprit, loader):
    marker = tmp_path / "payload_ran"
    path = tmp_path / "evil.pth"
    torch.save({"epoch": 1, "model": payload(marker)}, path)
    assert any(culprit in g for g in _globals_in(path)), "fixture lost its payload"
    with pytest.raises(UnsafeCheckpointError, match=culprit):
        loader(path)
    assert not marker.exists()


def test_pickle_with_unexpected_class_is_refused(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"model": nn.Linear(2, 2)}, path)
    with pytest.raises(UnsafeCheckpointError, match="torch.nn.modules.linear.Linear"):
        load_vdsr(path)


def test_wrong_shapes_are_reported(tmp_path):
    state = VDSR(depth=4, channels=8).state_dict()
    state.pop("output.weight")
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match="output.weight"):
        load_vdsr(path)
    with pytest.raises(FileNotFoundError, match="download_vdsr_weights"):
        load_vdsr(tmp_path / "absent.pth")


def test_depth_and_width_inferred_from_weights(tmp_path):
    torch.manual_seed(2)
    small = VDSR(depth=4, channels=8)
    torch.save(small.state_dict(), tmp_path / "small.pth")
    loaded = load_vdsr(tmp_path / "small.pth")
    x = torch.rand(1, 1, 6, 6)
    with torch.no_grad():
        np.testing.assert_allclose(loaded(x).numpy(), small(x).numpy(), rtol=0, atol=0)
