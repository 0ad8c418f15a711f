"""The benchmark and the sanity check on either embedded model: the model is part of the protocol."""

import dataclasses
import json

import pytest
import torch

from invnb.datasets import HELD_OUT_SEED, make_shapes, normalize, sha256sum
from invnb.eval.benchmark import BenchmarkConfig, benchmark_item, run_benchmark
from invnb.models import EMBEDDED_RESNET_CHECKPOINT, SmallResNet, embedded_checkpoint, load_embedded


@pytest.fixture(autouse=True)
def _one_thread():
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture
def untrained_resnet(tmp_path):
    """A seeded untrained SmallResNet saved as a checkpoint (not the shipped model)."""
    torch.manual_seed(0)
    ckpt = tmp_path / "resnet.pt"
    torch.save(SmallResNet().state_dict(), ckpt)
    return str(ckpt)


def test_the_model_is_part_of_the_protocol():
    vgg, resnet = BenchmarkConfig(), BenchmarkConfig(model="smallresnet")
    assert vgg.protocol()["model"] == "smallvgg" and resnet.protocol()["model"] == "smallresnet"
    assert resnet.protocol()["checkpoint_sha256"] == sha256sum(EMBEDDED_RESNET_CHECKPOINT)
    assert vgg.protocol()["checkpoint_sha256"] == sha256sum(embedded_checkpoint("smallvgg"))
    with pytest.raises(ValueError, match="model must be one of smallvgg, smallresnet, got 'resnet18'"):
        BenchmarkConfig(model="resnet18")
    with pytest.raises(ValueError, match="unknown embedded model 'vgg16'"):
        load_embedded("vgg16")


def test_items_of_one_model_are_never_reused_for_the_other(tmp_path):
    kw = {"n_images": 2, "batch_size": 2, "tie_orders": 1}
    out = tmp_path / "run"
    run_benchmark(BenchmarkConfig(**kw), out, methods=["sobel"], mask_weights=(), progress=False)
    with pytest.raises(ValueError, match="another run config"):
        run_benchmark(BenchmarkConfig(model="smallresnet", **kw), out, methods=["sobel"], mask_weights=(),
                      progress=False)


def test_a_resnet_item_explains_the_resnet(untrained_resnet):
    """The item's classes are the given ResNet checkpoint's predictions (not SmallVGG's)."""
    config = BenchmarkConfig(n_images=3, batch_size=3, tie_orders=1, checkpoint=untrained_resnet, model="smallresnet")
    item = benchmark_item("grad_cam-b000", config=dataclasses.asdict(config))
    model = load_embedded("smallresnet", untrained_resnet)
    x = normalize(make_shapes(3, seed=HELD_OUT_SEED).images)
    with torch.no_grad():
        want = model(x).argmax(1)
    assert torch.equal(torch.as_tensor(item["classes"]), want)
    assert item["attributions"].shape == (3, 64, 64)


def test_tiny_resnet_benchmark_with_the_inverse_and_its_sweep(tmp_path):
    config = BenchmarkConfig(n_images=2, batch_size=2, tie_orders=1, model="smallresnet")
    summary = run_benchmark(config, tmp_path, methods=["inverse", "object_mask"], map_kinds=(),
                            mask_weights=(2.0,), progress=False)
    summary.write(tmp_path)
    rows = {r["method"]: r for r in summary.rows}
    assert set(rows) == {"inverse", "object_mask"}
    assert rows["inverse"]["own_reid_top1"] == pytest.approx(1.0)  # the default keeps the class
    assert 0 < rows["inverse"]["own_amount"] < 1
    assert any(r["method"] == "inverse" and r["mode"] == "own" for r in summary.trade)
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["config"]["model"] == "smallresnet"
    assert "embedded model smallresnet," in (tmp_path / "results.md").read_text()


def test_sanity_check_on_the_resnet(tmp_path):
    from invnb.eval.sanity_run import run_sanity_checks

    kw = {"n_images": 2, "seeds": [0], "modes": ["all"], "progress": False}
    report = run_sanity_checks(tmp_path, ["sobel", "saliency"], model="smallresnet", **kw)
    assert report.meta["model"] == "smallresnet"
    assert report.meta["checkpoint_sha256"] == sha256sum(EMBEDDED_RESNET_CHECKPOINT)
    assert report.meta["layers"][0] == "conv1" and report.meta["layers"][-1] == "fc"
    get = {(r["method"], r["mode"]): r for r in report.rows}
    assert get[("sobel", "all")]["spearman"] == pytest.approx(1.0)
    assert get[("saliency", "all")]["spearman"] < 0.9
    # rows of the other model in the same folder are not reused: SmallVGG recomputes its own
    vgg = run_sanity_checks(tmp_path, ["sobel"], **kw)
    lines = [json.loads(r) for r in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert {r["config"]["model"] for r in lines} == {"smallvgg", "smallresnet"}
    assert vgg.meta["model"] == "smallvgg"
    report.write(tmp_path / "out")
    assert "randomisation of the embedded smallresnet" in (tmp_path / "out" / "summary.md").read_text()
