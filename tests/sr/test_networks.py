"""invnb.sr.networks: the SR networks by name, their SR estimate, receptive radius and inverse settings."""

import pytest
import torch
from torch import nn

from invnb.inverse.settings import setting_kwargs
from invnb.models import VDSR
from invnb.sr import SR_NETWORKS, SRNetwork, receptive_radius, sr_network, with_residual


def test_vdsr_is_registered_with_its_two_settings():
    net = sr_network("vdsr")
    assert net is SR_NETWORKS["vdsr"] and net.label == "VDSR" and net.residual
    assert dict(net.settings) == {"default": "vdsr", "paper": "vdsr_paper"}
    with pytest.raises(ValueError, match=r"unknown SR network 'srgan'.*vdsr"):
        sr_network("srgan")


def test_the_settings_are_the_inverse_registrys():
    model = VDSR(depth=3, channels=4).eval()
    net = sr_network("vdsr")
    for name, registry in net.settings.items():
        inv = net.inverse(model, name, keep_features=False)
        kw = setting_kwargs(registry)
        assert inv.max_iter == kw.get("max_iter", 300) and inv.mask_weight == pytest.approx(kw["mask_weight"])
    assert net.inverse(model, "paper").solver == "paper" and net.inverse(model, "default").solver != "paper"
    with pytest.raises(ValueError, match="settings"):
        net.inverse(model, "fast")


def test_the_sr_estimate_of_a_residual_network_adds_its_input():
    torch.manual_seed(0)
    model = VDSR(depth=3, channels=4).eval()
    x = torch.rand(2, 1, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(sr_network("vdsr").sr_model(model)(x), x + model(x))
        torch.testing.assert_close(with_residual(model)(x), model.super_resolve(x))
    plain = SRNetwork("plain", VDSR, VDSR, SR_NETWORKS["vdsr"].checkpoint, residual=False, settings={})
    assert plain.sr_model(model) is model


def test_receptive_radius_of_plain_chains():
    assert receptive_radius(VDSR()) == 20  # twenty 3x3 convolutions
    srcnn = nn.Sequential(nn.Conv2d(1, 64, 9, padding=4), nn.ReLU(), nn.Conv2d(64, 32, 1), nn.ReLU(),
                          nn.Conv2d(32, 1, 5, padding=2))
    assert receptive_radius(srcnn) == 6
    assert receptive_radius(nn.Conv2d(1, 1, 3, dilation=2)) == 2
    with pytest.raises(ValueError, match="stride"):
        receptive_radius(nn.Conv2d(1, 1, 3, stride=2))


def test_the_embedded_weights_load_in_eval_mode():
    model = sr_network("vdsr").load()
    assert isinstance(model, VDSR) and not model.training
