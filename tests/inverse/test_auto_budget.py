"""The default's iteration budget: with mask_weight="auto" the layers below the margin layer are
solved in DEFAULT_AUTO_MAX_ITER iterations, the margin layer to its tolerance; an explicit
max_iter, a fixed weight and the paper setting keep their caps. The search still picks the
largest candidate whose inverse keeps the class, each image's inverse being that candidate's
walk on its own."""


import pytest
import torch

import invnb.inverse.engine as inverse_mod
from invnb.inverse import LayerwiseInverse
from invnb.inverse.settings import DEFAULT_AUTO_MAX_ITER

WEIGHTS = (0.3, 1.0, 3.0, 9.0)




def _caps(monkeypatch, name="solve_fista"):
    """Record (is the margin layer, max_iter) of every solver call."""
    seen = []
    real = getattr(inverse_mod, name)

    def spy(problem, **kw):
        seen.append((problem.classes is not None, kw["max_iter"]))
        return real(problem, **kw)

    monkeypatch.setattr(inverse_mod, name, spy)
    return seen


def test_auto_budget_below_the_margin_only(monkeypatch, tiny_vgg, tiny_batch):
    assert DEFAULT_AUTO_MAX_ITER == 4
    seen = _caps(monkeypatch)
    res = LayerwiseInverse(tiny_vgg).invert(tiny_batch[:2])
    margin = [cap for top, cap in seen if top]
    below = [cap for top, cap in seen if not top]
    assert margin == [300] and below and set(below) == {DEFAULT_AUTO_MAX_ITER}
    # 4 penalised layers (3 convs, 2 linears below the logits: 5) per walk, every walk counted
    assert len(below) == 5 * res.candidates_tried.max().item()
    for s in res.stats[1:]:
        assert torch.all(s.iterations == DEFAULT_AUTO_MAX_ITER)
        assert torch.equal(s.iterations_total, DEFAULT_AUTO_MAX_ITER * res.candidates_tried)


@pytest.mark.parametrize("kw,cap", [(dict(max_iter=300), 300), (dict(max_iter=7), 7), (dict(mask_weight=0.7), 300)])
def test_explicit_cap_or_fixed_weight_applies_everywhere(monkeypatch, tiny_vgg, tiny_batch, kw, cap):
    seen = _caps(monkeypatch)
    res = LayerwiseInverse(tiny_vgg, **kw).invert(tiny_batch[:2])
    assert seen and {c for _, c in seen} == {cap}
    if "mask_weight" in kw:
        assert torch.equal(res.candidates_tried, torch.ones(2, dtype=torch.long))
        assert all(s.iterations_total is None for s in res.stats)


def test_paper_setting_keeps_its_solver_and_cap(monkeypatch, tiny_vgg, tiny_batch):
    inv = LayerwiseInverse.paper(tiny_vgg)
    assert inv.max_iter == 3000 and inv.auto_max_iter == 3000 and inv.solver == "paper"
    seen = _caps(monkeypatch, "solve_paper")
    inv.invert(tiny_batch[:1])
    assert seen and {c for _, c in seen} == {3000}


def test_budgeted_auto_picks_the_largest_candidate_that_keeps(model64, x64):
    # each candidate alone (a one-candidate "auto" runs the same budgeted walk)
    single = {w: LayerwiseInverse(model64, auto_weights=(w,)).invert(x64) for w in WEIGHTS}
    with torch.no_grad():
        keeps = torch.stack([model64(single[w].input).argmax(1) == single[w].classes for w in WEIGHTS], 1)
    auto = LayerwiseInverse(model64, auto_weights=WEIGHTS).invert(x64)
    order = sorted(WEIGHTS, reverse=True)
    for i in range(len(x64)):
        ok = [w for w, k in zip(WEIGHTS, keeps[i]) if k]
        expected = max(ok) if ok else min(WEIGHTS)
        assert auto.mask_weight[i].item() == pytest.approx(expected)
        assert bool(auto.kept_class[i]) == bool(ok)
        assert auto.candidates_tried[i].item() == order.index(expected) + 1
        torch.testing.assert_close(auto.input[i], single[expected].input[i], rtol=1e-9, atol=1e-12)
    assert len(set(auto.mask_weight.tolist())) > 1  # the case exercises more than one choice
