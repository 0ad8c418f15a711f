"""SRCNN as an SR network of the analysis (SR_NETWORKS["srcnn"]): per-scale loading, its SR estimate, its
PSNR against bicubic, the ground-truth run over one network per scale, and its training code."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import require_test_data

from invnb.models import SRCNNResidual, load_embedded_srcnn
from invnb.sr import (
    GroundTruthConfig,
    SRCNNTraining,
    load_embedded_sr_set,
    load_sr_folder,
    run_ground_truth,
    sr_network,
    srcnn_psnr_table,
    train_srcnn,
    training_pairs,
)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_the_registered_network_is_each_scale_s_srcnn_in_residual_form():
    net = sr_network("srcnn")
    assert net.per_scale and net.residual and set(net.settings) == {"default", "paper"}
    models = net.load_scales([2, 3, 4])
    x = torch.rand(1, 1, 30, 30, generator=torch.Generator().manual_seed(0))
    outs = {}
    for scale, model in models.items():
        assert isinstance(model, SRCNNResidual) and not model.training
        with torch.no_grad():
            outs[scale] = net.sr_model(model)(x)
            assert (outs[scale] - load_embedded_srcnn(scale)(x)).abs().max().item() < 1e-5
    assert (outs[2] - outs[4]).abs().max().item() > 1e-3  # a different network per scale
    with pytest.raises(ValueError, match="scale="):
        net.load()
    assert len(set(map(id, sr_network("vdsr").load_scales([2, 3]).values()))) == 1  # VDSR: one for all


def test_it_beats_bicubic_on_the_embedded_images():
    for scale in (2, 3, 4):
        table = srcnn_psnr_table(load_embedded_srcnn(scale), load_embedded_sr_set(scale), scale)
        assert table["srcnn"] > table["bicubic"] + 0.3, (scale, table)


def test_it_beats_bicubic_on_set5():
    data = require_test_data("sr", "Set5")
    for scale in (2, 3, 4):
        table = srcnn_psnr_table(load_embedded_srcnn(scale), load_sr_folder(data / "sr" / "Set5", scale), scale)
        assert table["srcnn"] > table["bicubic"] + 1.0, (scale, table)
        assert sum(r["srcnn"] > r["bicubic"] for r in table["images"]) == len(table["images"])


def test_the_ground_truth_runs_one_network_per_scale():
    net = sr_network("srcnn")
    cfg = GroundTruthConfig(network="srcnn", scales=(2, 3), settings=(), chirp_size=64, images=(), lam_steps=2,
                            response=dict(frequencies=[0.1], orientations=[0], phases=[0], contrasts=[0.4]))
    models = net.load_scales(cfg.scales)
    result, _ = run_ground_truth(models, cfg)
    psnr = {s: result["scales"][str(s)]["images"][0]["psnr_model"] for s in cfg.scales}
    swapped, _ = run_ground_truth({2: models[3], 3: models[2]}, cfg)
    assert swapped["scales"]["2"]["images"][0]["psnr_model"] != pytest.approx(psnr[2], abs=1e-3)
    with pytest.raises(ValueError, match="no network for the scales"):
        run_ground_truth({2: models[2]}, cfg)


def test_training_is_deterministic_under_its_seed():
    pairs = training_pairs([2], names=["coins"])
    cfg = SRCNNTraining(steps=30, batch_size=4, patch=21, channels=(8, 4), lr=3e-3, warmup=5)
    a, hist_a = train_srcnn(pairs, 2, cfg, every=10)
    b, _ = train_srcnn(pairs, 2, cfg, every=10)
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    c, _ = train_srcnn(pairs, 2, SRCNNTraining(**{**cfg.__dict__, "seed": 1}), every=10)
    assert not torch.equal(a.conv1.weight, c.conv1.weight)
    assert [h["step"] for h in hist_a] == [10, 20, 30] and np.isfinite([h["train_mse"] for h in hist_a]).all()
    with pytest.raises(ValueError, match="no training pair"):
        train_srcnn(pairs, 3, cfg)
    with pytest.raises(ValueError, match="steps"):
        SRCNNTraining(steps=0)
