"""A batch-invariant (CPU) run solves each layer in chunks of at most CHUNK_ELEMENTS elements per
tensor: every sample's numbers must be exactly those of the whole batch solved at once."""

import pytest
import torch

import invnb.inverse.engine as inverse_mod
import invnb.inverse.solver as solver_mod
from invnb.inverse import LayerwiseInverse


@pytest.mark.parametrize("kw", [dict(), dict(mask_weight=0.7, max_iter=40)])
def test_chunked_solves_give_the_same_inverse(monkeypatch, tiny_vgg, tiny_batch, kw):
    monkeypatch.setattr(inverse_mod, "CHUNK_ELEMENTS", 0)  # the whole batch at once
    whole = LayerwiseInverse(tiny_vgg, **kw).invert(tiny_batch)
    sizes = []
    real = solver_mod.solve_fista

    def spy(problem, **opts):
        if problem.classes is None:  # the margin layer is solved as one batch
            sizes.append(len(problem.x0))
        return real(problem, **opts)

    monkeypatch.setattr(inverse_mod, "solve_fista", spy)  # each layer's call
    monkeypatch.setattr(solver_mod, "solve_fista", spy)  # and its chunks
    # 3000 elements: the 16x16 conv (1536 per image) alone, the 8x8 convs (512) in chunks of 5 and 1,
    # the linear layers (32 units) as one batch
    monkeypatch.setattr(inverse_mod, "CHUNK_ELEMENTS", 3000)
    chunked = LayerwiseInverse(tiny_vgg, **kw).invert(tiny_batch)
    assert {1, 5, 6} <= set(sizes)
    close = dict(rtol=1e-6, atol=1e-7)
    for a, b in zip(whole.features, chunked.features):
        torch.testing.assert_close(a, b, **close)
    torch.testing.assert_close(whole.attribution, chunked.attribution, **close)
    torch.testing.assert_close(whole.mask_weight, chunked.mask_weight, **close)
    for sa, sb in zip(whole.stats, chunked.stats):
        assert torch.equal(sa.iterations, sb.iterations)
        torch.testing.assert_close(sa.cost, sb.cost, **close)
