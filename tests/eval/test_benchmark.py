"""The synthetic benchmark's protocol (invnb.eval.benchmark), its summary and the trade-off gaps."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from invnb.datasets import HELD_OUT_SEED, make_shapes, normalize
from invnb.eval import amount_of_activation, read_table
from invnb.eval.benchmark import (
    BenchmarkConfig,
    benchmark_item,
    benchmark_methods,
    run_benchmark,
)
from invnb.eval.benchmark_report import markdown
from invnb.eval.intervals import gaps_markdown, tradeoff_gaps
from invnb.models import SmallVGG


@pytest.fixture
def untrained(tmp_path):
    """A seeded untrained SmallVGG saved as a checkpoint (fast, and not the shipped model)."""
    torch.manual_seed(0)
    ckpt = tmp_path / "model.pt"
    torch.save(SmallVGG().state_dict(), ckpt)
    return str(ckpt)


def test_run_benchmark_writes_the_summary_and_resumes(tmp_path, untrained):
    config = BenchmarkConfig(n_images=3, batch_size=2, checkpoint=untrained, tie_orders=2)
    out = tmp_path / "out"
    summary = run_benchmark(config, out, methods=["saliency", "uniform"], mask_weights=(), postprocess=False,
                            progress=False)
    summary.write(out)
    rows = read_table(out / "results.csv")
    assert [r["method"] for r in rows] == ["saliency", "uniform"] and rows[0]["n_images"] == 3
    assert all(0 <= r["deletion_auc"] <= 1 and 0 <= r["mass_in_mask"] <= 1 for r in rows)
    assert {r["mode"] for r in read_table(out / "tradeoff.csv")} == {"hard", "soft", "object"}
    res = json.loads((out / "results.json").read_text())
    assert (out / "results.md").read_text() == markdown(res["rows"], res["command"], res["config"], res["object"])
    assert set(json.loads((out / "curves.json").read_text())["methods"]) == {"saliency", "uniform"}
    items = sorted((out / "items").glob("*.npz"))
    assert len(items) == 8  # 2 methods x 2 batches, and their trade-off sweeps
    stamps = {p: p.stat().st_mtime_ns for p in items}
    again = run_benchmark(config, out, methods=["saliency", "uniform"], mask_weights=(), postprocess=False,
                          progress=False)
    assert {p: p.stat().st_mtime_ns for p in items} == stamps  # resumed: nothing recomputed
    assert json.dumps(again.rows) == json.dumps(summary.rows)
    with pytest.raises(ValueError, match="another run config"):
        run_benchmark(BenchmarkConfig(n_images=3, batch_size=2, checkpoint=untrained, step=7), out,
                      methods=["saliency"], mask_weights=(), progress=False)


def test_object_mask_row_is_the_ground_truth_mask(tmp_path, untrained):
    config = BenchmarkConfig(n_images=3, batch_size=3, checkpoint=untrained, tie_orders=2)
    summary = run_benchmark(config, tmp_path, methods=["saliency", "object_mask"], mask_weights=(), postprocess=False,
                            progress=False)
    rows = {r["method"]: r for r in summary.rows}
    assert list(rows) == ["saliency", "object_mask"]
    data = make_shapes(3, seed=HELD_OUT_SEED)
    item = np.load(tmp_path / "items" / "object_mask-b000.npz")
    assert np.array_equal(item["attributions"], data.masks.numpy().astype(np.float32))
    assert rows["object_mask"]["pointing_game"] == pytest.approx(1.0)
    assert rows["object_mask"]["mass_in_mask"] == pytest.approx(1.0)
    soft = [r for r in summary.trade if r["method"] == "object_mask" and r["mode"] == "soft"]
    x = normalize(data.images)
    expected = float(amount_of_activation(x * data.masks.unsqueeze(1), x).mean())
    assert soft and all(r["amount"] == pytest.approx(expected, rel=1e-5) for r in soft)  # a 0/1 map: one point


def test_kept_input_rows_come_from_the_explanation_not_the_name(tmp_path, untrained):
    """Every method whose explanation keeps an input gets that input's maps as extra rows; others none."""
    config = BenchmarkConfig(n_images=2, batch_size=2, checkpoint=untrained, tie_orders=1, ep_steps=2)
    summary = run_benchmark(config, tmp_path, methods=["extremal_perturbation", "sobel"], map_kinds=("abs",),
                            mask_weights=(), progress=False)
    names = [r["method"] for r in summary.rows]
    assert names == ["extremal_perturbation", "extremal_perturbation.abs", "extremal_perturbation.pp", "sobel",
                     "sobel.pp"]
    own = {r["method"]: r for r in summary.trade if r["mode"] == "own"}
    assert set(own) == {"extremal_perturbation"} and own["extremal_perturbation"]["param_name"] == ""


def test_items_are_independent_of_each_other_and_of_the_process(tmp_path, untrained):
    config = BenchmarkConfig(n_images=4, batch_size=2, checkpoint=untrained, tie_orders=1)
    kw = {"config": dataclasses.asdict(config)}
    second = benchmark_item("random-b001", **kw)
    first = benchmark_item("random-b000", **kw)
    assert not np.allclose(first["attributions"].numpy(), second["attributions"].numpy())
    again = benchmark_item("random-b001", **kw)  # the same item alone gives the same map
    np.testing.assert_array_equal(again["attributions"].numpy(), second["attributions"].numpy())
    with pytest.raises(ValueError, match="outside the 2 batches"):
        benchmark_item("random-b002", **kw)
    with pytest.raises(ValueError, match="bad benchmark item key"):
        benchmark_item("random", **kw)
    with pytest.raises(ValueError, match="pass store_dir"):
        benchmark_item("tradeoff-random-b000", **kw)


def test_bad_configurations_are_refused(tmp_path):
    with pytest.raises(ValueError, match="n_images must be an integer >= 1"):
        BenchmarkConfig(n_images=0)
    with pytest.raises(ValueError, match="unknown methods"):
        run_benchmark(BenchmarkConfig(n_images=2, batch_size=2), tmp_path, methods=["ground_truth"])
    assert benchmark_methods()[-1] == "object_mask"


def test_tradeoff_gaps_compare_each_method_with_the_reference(tmp_path, untrained):
    config = BenchmarkConfig(n_images=5, batch_size=2, checkpoint=untrained, tie_orders=1)
    run = tmp_path / "run"
    summary = run_benchmark(config, run, methods=["saliency", "sobel", "random"], mask_weights=(), postprocess=False,
                            progress=False)
    summary.write(run)
    res = tradeoff_gaps(run, reference="saliency", n_boot=200)
    rows = {(r["method"], r["mode"]): r for r in res["rows"]}
    assert set(rows) == {(m, mode) for m in ("sobel", "random") for mode in ("hard", "soft")}
    table = {r["method"]: r for r in summary.rows}
    for mode in ("hard", "soft"):  # the AUCs on all images are the benchmark's own
        for m in ("sobel", "random"):
            r = rows[(m, mode)]
            assert r["auc_reference"] == pytest.approx(table["saliency"][f"tradeoff_auc_{mode}"])
            assert r["auc_method"] == pytest.approx(table[m][f"tradeoff_auc_{mode}"])
            assert r["difference"] == pytest.approx(r["auc_reference"] - r["auc_method"])
            assert r["low"] <= r["high"] and r["n_images"] == 5
    assert "| sobel | hard |" in gaps_markdown(res)
    with pytest.raises(ValueError, match="no trade-off items of 'inverse'"):
        tradeoff_gaps(run)
    with pytest.raises(ValueError, match="not a finished benchmark run"):
        tradeoff_gaps(tmp_path / "missing")


def test_every_map_is_also_scored_post_processed_as_the_default_inverse(tmp_path, untrained):
    """<method>.pp is the method's own map clipped, weighted and filled as the default inverse's; a map
    that says it is post-processed already (the object mask here, the default inverse's) gets no such row."""
    from invnb.eval.benchmark import PP_OPTIONS
    from invnb.inverse import postprocess_map

    config = BenchmarkConfig(n_images=2, batch_size=2, checkpoint=untrained, tie_orders=1)
    summary = run_benchmark(config, tmp_path, methods=["saliency", "object_mask"], map_kinds=(), mask_weights=(),
                            progress=False)
    assert [r["method"] for r in summary.rows] == ["saliency", "saliency.pp", "object_mask"]
    raw = np.load(tmp_path / "items" / "saliency-b000.npz")["attributions"]
    pp = np.load(tmp_path / "items" / "saliency.pp-b000.npz")["attributions"]
    np.testing.assert_allclose(pp, postprocess_map(torch.from_numpy(raw), **PP_OPTIONS).numpy(), atol=1e-6)
    assert summary.rows[1]["own_amount"] != summary.rows[1]["own_amount"]  # NaN: saliency keeps no input
    no_pp = run_benchmark(config, tmp_path / "raw", methods=["saliency"], map_kinds=(), mask_weights=(),
                          postprocess=False, progress=False)
    assert [r["method"] for r in no_pp.rows] == ["saliency"]


def test_the_inverse_says_whether_its_map_is_post_processed(tiny_vgg, tiny_batch):
    from invnb.attribution import make_method

    x = tiny_batch[:2]
    assert make_method("inverse", tiny_vgg, max_iter=5).explain(x).postprocessed
    assert not make_method("inverse", tiny_vgg, max_iter=5, map_sigma=0.0, map_fill_sigma=0.0,
                           map_clip=1.0).explain(x).postprocessed
    assert not make_method("saliency", tiny_vgg).explain(x).postprocessed
