"""Model-parameter randomisation (invnb.eval.sanity): randomising, similarities, and answers a sanity check must give."""

import numpy as np
import pytest
import scipy.stats
import torch

from invnb.attribution import make_method
from invnb.datasets import make_shapes, normalize
from invnb.eval import sanity
from invnb.models import load_embedded_model


@pytest.fixture(scope="module")
def embedded():
    model = load_embedded_model()
    data = make_shapes(4, seed=2_000_000)
    return model, normalize(data.images), data.masks


def _params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_parametric_layers_of_the_embedded_model(embedded):
    model = embedded[0]
    names = sanity.parametric_layers(model)
    # 6 convolutions (BatchNorm folded) and 3 linear layers, input first
    assert names == ["features.0", "features.2", "features.5", "features.7", "features.10", "features.13",
                     "classifier.0", "classifier.3", "classifier.6"]
    with pytest.raises(ValueError, match="no layer"):
        sanity.parametric_layers(torch.nn.ReLU())


def test_randomise_layers_is_seeded_local_and_leaves_the_model(tiny_vgg):
    before = _params(tiny_vgg)
    rng = torch.get_rng_state()
    a = sanity.randomise_layers(tiny_vgg, ["classifier.6", "features.3"], seed=5)
    b = sanity.randomise_layers(tiny_vgg, ["classifier.6", "features.3"], seed=5)
    c = sanity.randomise_layers(tiny_vgg, ["classifier.6", "features.3"], seed=6)
    assert torch.equal(torch.get_rng_state(), rng)  # global RNG untouched
    for k, v in _params(tiny_vgg).items():
        assert torch.equal(v, before[k])  # caller's model untouched
    pa, pb, pc = _params(a), _params(b), _params(c)
    for k in before:
        changed = k.startswith(("classifier.6.", "features.3."))
        assert torch.equal(pa[k], pb[k])
        assert torch.equal(pa[k], before[k]) != changed
        if changed and k.endswith("weight"):
            assert not torch.equal(pa[k], pc[k])
    with pytest.raises(ValueError, match="unknown"):
        sanity.randomise_layers(tiny_vgg, ["features.1"], seed=0)  # a ReLU


def test_cascade_randomises_from_the_top(tiny_vgg):
    order = sanity.parametric_layers(tiny_vgg)
    before = _params(tiny_vgg)
    steps = list(sanity.cascade_models(tiny_vgg, seed=0))
    assert [name for name, _ in steps] == order[::-1]
    for k, (_, m) in enumerate(steps, start=1):
        randomised = set(order[::-1][:k])
        for key, v in _params(m).items():
            assert torch.equal(v, before[key]) == (key.rsplit(".", 1)[0] not in randomised), (k, key)
    # the same layer gets the same draw in the cascade and all at once with the same seed
    full = sanity.randomise_layers(tiny_vgg, order, seed=0)
    for key, v in _params(full).items():
        torch.testing.assert_close(v, _params(steps[-1][1])[key], atol=0, rtol=0)


def test_spearman_matches_scipy_and_defines_constant_maps_as_uncorrelated():
    g = np.random.default_rng(0)
    a, b = g.random((3, 8, 8)), g.random((3, 8, 8))
    b[1] = a[1] ** 3  # monotone: rank correlation 1
    b[2] = np.round(b[2], 1)  # ties
    ref = [scipy.stats.spearmanr(a[i].ravel(), b[i].ravel())[0] for i in range(3)]
    np.testing.assert_allclose(sanity.spearman(a, b), ref, atol=1e-12)
    assert sanity.spearman(a, -a) == pytest.approx([-1, -1, -1])
    zero = np.zeros((3, 8, 8))
    np.testing.assert_array_equal(sanity.spearman(zero, a), [0, 0, 0])  # not NaN
    np.testing.assert_array_equal(sanity.spearman(zero, zero), [0, 0, 0])
    with pytest.raises(ValueError, match="same shape"):
        sanity.spearman(a, b[:2])


def test_ssim_and_topk_iou():
    g = np.random.default_rng(1)
    a = g.random((2, 16, 16))
    np.testing.assert_allclose(sanity.ssim_maps(a, 3 * a), [1, 1], atol=1e-9)  # scale-free
    np.testing.assert_allclose(sanity.topk_iou(a, 3 * a), [1, 1])
    assert sanity.ssim_maps(a, g.random((2, 16, 16))).max() < 0.3
    # disjoint top sets: IoU 0
    b = np.zeros((1, 10, 10)); b[0, :1] = 1
    c = np.zeros((1, 10, 10)); c[0, -1:] = 1
    assert sanity.topk_iou(b, c, fraction=0.1)[0] == 0
    with pytest.raises(ValueError, match="fraction"):
        sanity.topk_iou(b, c, fraction=0)


def test_model_free_map_survives_randomisation_and_gradients_do_not(embedded):
    model, x, masks = embedded
    methods = {n: (lambda m, n=n: make_method(n, m)) for n in ("sobel", "saliency", "uniform")}
    rows = sanity.randomisation_curves(model, x, masks, methods, seeds=(0,))
    summary = {(r["method"], r["mode"], r["step"]): r for r in sanity.randomisation_summary(rows)}
    n = len(sanity.parametric_layers(model))
    for step in range(1, n + 1):
        # the edge map ignores the model: identical maps whatever is randomised
        assert summary[("sobel", "cascade", step)]["spearman"] == pytest.approx(1.0)
        assert summary[("sobel", "cascade", step)]["ssim"] == pytest.approx(1.0)
        # a constant map has no ranking: uncorrelated by definition
        assert summary[("uniform", "cascade", step)]["spearman"] == 0
    sal = [summary[("saliency", "cascade", k)]["spearman"] for k in range(1, n + 1)]
    assert summary[("saliency", "trained", 0)]["spearman"] == pytest.approx(1.0)
    assert sal[0] > 0.6 and sal[-1] < 0.5  # the gradient depends on the weights
    assert summary[("saliency", "all", n)]["spearman"] < 0.5
    assert len(rows) == 3 * (1 + n + 1)
    assert all(len(r["mass_in_mask"]) == 4 for r in rows)


def test_curves_reject_bad_arguments(embedded):
    model, x, masks = embedded
    m = {"sobel": lambda mm: make_method("sobel", mm)}
    with pytest.raises(ValueError, match="target"):
        sanity.randomisation_curves(model, x, masks, m, target="label")
    with pytest.raises(ValueError, match="modes"):
        sanity.randomisation_curves(model, x, masks, m, modes=("independent",))
    with pytest.raises(ValueError, match="empty"):
        sanity.randomisation_curves(model, x, masks, {})


def test_spearman_agrees_with_quantus_mprt_on_its_own_randomised_models(embedded):
    """Quantus's MPRT explains a fixed label; with target='trained' and its model generator, same numbers."""
    quantus = pytest.importorskip("quantus")
    from quantus.helpers.model.pytorch_model import PyTorchModel

    model, x, masks = embedded
    y = model(x).argmax(1)

    def explain(model, inputs, targets, **kw):
        a = make_method("saliency", model).attribute(torch.as_tensor(inputs), target=torch.as_tensor(targets))
        return a[:, None].numpy()

    metric = quantus.MPRT(layer_order="top_down", seed=7, disable_warnings=True, display_progressbar=False)
    theirs = metric(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=None, explain_func=explain,
                    device="cpu")
    ours = sanity.randomisation_curves(
        model, x, masks, {"saliency": lambda m: make_method("saliency", m)}, seeds=(7,), modes=("cascade",),
        target="trained",
        models=lambda m, seed: PyTorchModel(m, channel_first=True).get_random_layer_generator("top_down", seed))
    cascade = [r for r in ours if r["mode"] == "cascade"]
    assert [r["layer"] for r in cascade] == sanity.parametric_layers(model)[::-1]  # same layer order
    assert list(theirs)[1:] == [r["layer"] for r in cascade]
    for r in cascade:
        np.testing.assert_allclose(r["spearman"], theirs[r["layer"]], atol=1e-6)
    # and the randomisation actually bit (not the same map)
    assert np.mean(cascade[-1]["spearman"]) < 0.6


def test_summary_and_figure():
    import matplotlib

    matplotlib.use("Agg")
    from invnb.plot import method_colors, plot_randomisation

    rows = []
    for m in ("inverse", "saliency"):
        rows.append({"method": m, "seed": None, "mode": "trained", "step": 0, "layer": "none", "same_class": 1.0,
                     **{k: [1.0, 1.0] for k in sanity.SCORES}})
        for seed, v in ((0, 0.2), (1, 0.4)):
            for step, layer in ((1, "fc"), (2, "conv")):
                rows.append({"method": m, "seed": seed, "mode": "cascade", "step": step, "layer": layer,
                             "same_class": 0.5, **{k: [v, v + 0.2] for k in sanity.SCORES}})
            rows.append({"method": m, "seed": seed, "mode": "all", "step": 2, "layer": "all", "same_class": 0.0,
                         **{k: [v, v] for k in sanity.SCORES}})
    summary = {(r["method"], r["mode"], r["step"]): r for r in sanity.randomisation_summary(rows)}
    s = summary[("saliency", "cascade", 1)]
    assert s["spearman"] == pytest.approx(0.4) and s["spearman_sd"] == pytest.approx(0.1) and s["n_seeds"] == 2
    assert summary[("inverse", "all", 2)]["mass_in_mask"] == pytest.approx(0.3)
    fig = plot_randomisation(list(summary.values()))
    assert len(fig.axes) == 6 and fig.axes[0].get_legend_handles_labels()[1] == ["inverse", "saliency"]
    assert method_colors(["saliency", "inverse"])["inverse"] == "black"


def test_run_sanity_checks_resumes_and_summarises(tmp_path):
    import json

    from invnb.eval.sanity_run import run_sanity_checks, sanity_markdown

    kw = {"n_images": 2, "seeds": [0], "modes": ["all"], "progress": False}
    report = run_sanity_checks(tmp_path, ["random", "sobel"], **kw)
    rows = (tmp_path / "rows.jsonl").read_text().splitlines()
    assert {json.loads(r)["method"] for r in rows} == {"random", "sobel"}
    get = {(r["method"], r["mode"]): r for r in report.rows}
    assert get[("sobel", "all")]["spearman"] == pytest.approx(1.0)  # a model-free map does not change
    assert report.criterion is None  # needs the inverse and occlusion
    # a second call computes nothing new: the rows are read back
    again = run_sanity_checks(tmp_path, ["random", "sobel"], **kw)
    assert (tmp_path / "rows.jsonl").read_text().splitlines() == rows and again.rows == report.rows
    # a line cut short by an interruption is skipped, not fatal
    with (tmp_path / "rows.jsonl").open("a") as fh:
        fh.write('{"method": "sob')
    assert run_sanity_checks(tmp_path, ["random", "sobel"], compute=False, **kw).rows == report.rows
    report.write(tmp_path / "out")
    assert (tmp_path / "out" / "summary.md").read_text() == sanity_markdown(report.rows, None, report.meta)


def test_bundled_results_are_complete_and_for_the_shipped_model():
    import json

    from invnb.attribution import available_methods
    from invnb.datasets import sha256sum
    from invnb.eval.sanity_run import criterion
    from invnb.models import EMBEDDED_CHECKPOINT
    from invnb.paths import RESULTS_DIR

    folder = RESULTS_DIR / "sanity_checks"
    res = json.loads((folder / "summary.json").read_text())
    assert res["checkpoint_sha256"] == sha256sum(EMBEDDED_CHECKPOINT)
    assert (folder / "randomisation.png").is_file()
    got = {(r["method"], r["mode"], r["step"]) for r in res["rows"]}
    n = len(res["layers"])
    for m in available_methods():
        assert (m, "trained", 0) in got and (m, "all", n) in got
        assert all((m, "cascade", k) in got for k in range(1, n + 1))
    # the summary follows from the per-image rows, and the criterion from the summary
    rows = [json.loads(line) for line in (folder / "rows.jsonl").read_text().splitlines()]
    again = {(r["method"], r["mode"], r["step"]): r for r in sanity.randomisation_summary(rows)}
    for r in res["rows"]:
        assert again[(r["method"], r["mode"], r["step"])]["spearman"] == pytest.approx(r["spearman"])
    assert criterion(res["rows"]) == res["criterion"]
    get = {(r["method"], r["mode"]): r for r in res["rows"]}
    assert get[("sobel", "all")]["spearman"] == pytest.approx(1.0)  # model-free control
    # one run at one clean commit, every method (no merge of runs)
    assert "merged_from" not in res and "--methods" not in res["command"]
    assert len(res["git_commit"]) == 40 and not res["git_commit"].endswith("+dirty")
