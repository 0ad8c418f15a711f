"""solve_fista's backtracking retries only the samples whose step was too long: each sample of a
batch must still get exactly the iterates it gets alone (RowWise layer, so the arithmetic is that of
a batch of one), whether it needed many halvings, none, or restarts. (Rows of a few elements are
summed differently by the library depending on how many rows there are, retries or not; the
sizes here, like a network's layers, are not.)"""

import pytest
import torch
from torch import nn

from invnb.inverse import LayerProblem, RowWise, solve_fista


def _problem(kind: str, relu: bool, penalty: str):
    g = torch.Generator().manual_seed(11)
    if kind == "linear":
        layer, shape = nn.Linear(128, 64), (5, 128)
    else:
        layer, shape = nn.Conv2d(3, 4, 3, padding=1), (5, 3, 8, 8)
    with torch.no_grad():
        for prm in layer.parameters():
            prm.copy_(torch.randn(prm.shape, generator=g))
    # samples of very different scales: their step estimates, and so their backtracking, differ
    scale = torch.tensor([1e-2, 0.3, 1.0, 5.0, 40.0]).reshape((-1,) + (1,) * (len(shape) - 1))
    hi = torch.rand(shape, generator=g) * scale
    target = layer(hi * torch.rand(shape, generator=g)).detach().abs()
    return LayerProblem(forward=RowWise(layer), lo=torch.zeros_like(hi), hi=hi, x0=hi / 2, target=target,
                        relu=relu, mask=torch.rand(shape, generator=g), lam=0.4, penalty=penalty)


@pytest.mark.parametrize("kind", ["linear", "conv"])
@pytest.mark.parametrize("relu,penalty", [(True, "l1"), (False, "l2")])
@pytest.mark.parametrize("op_norm", [0.02, 3.0])  # far too small a norm: long steps, many halvings
def test_each_sample_gets_its_own_iterates(kind, relu, penalty, op_norm):
    p = _problem(kind, relu, penalty)
    batch = solve_fista(p, max_iter=40, tol=1e-6, op_norm=op_norm, record_history=True)
    for i in range(len(p.x0)):
        alone = solve_fista(p.subset(torch.tensor([i])), max_iter=40, tol=1e-6, op_norm=op_norm,
                            record_history=True)
        assert torch.equal(batch.x[i:i + 1], alone.x), f"sample {i}"
        assert torch.equal(batch.iterations[i:i + 1], alone.iterations)
        assert torch.equal(batch.cost[i:i + 1], alone.cost)
        n = int(alone.iterations)
        assert torch.equal(batch.history[:n + 1, i], alone.history[:n + 1, 0])


def test_a_too_long_first_step_is_halved_until_it_fits():
    # op_norm 1e-4 makes the first step about 1e8 times too long: only backtracking saves it, and
    # the objective must still fall monotonically (a restart keeps the point, never raises it)
    p = _problem("conv", True, "l1")
    res = solve_fista(p, max_iter=30, tol=0.0, op_norm=1e-4, record_history=True)
    h = res.history
    assert torch.all(h[1:] <= h[:-1] * (1 + 1e-5) + 1e-6)
    assert torch.all(h[-1] < h[0])
