import numpy as np
import pytest
import torch
from scipy.optimize import linprog, minimize
from torch import nn

from invnb.inverse import LayerProblem, operator_norm, solve_fista, solve_paper


def _linear_problem(penalty, lam=0.3, relu=False, n=3, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    layer = nn.Linear(6, 9).to(dtype)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(9, 6, generator=g, dtype=dtype))
        layer.bias.copy_(torch.randn(9, generator=g, dtype=dtype) * 0.1)
    bound = torch.rand(n, 6, generator=g, dtype=dtype) * 2
    target = torch.randn(n, 9, generator=g, dtype=dtype).abs()
    mask = torch.rand(n, 6, generator=g, dtype=dtype)
    return LayerProblem(forward=layer, lo=torch.zeros_like(bound), hi=bound, x0=bound / 2,
                        target=target, relu=relu, mask=mask, lam=lam, penalty=penalty), layer


def _scipy_solution(problem, layer, i):
    """An independent solution of sample i's convex problem with L-BFGS-B (smooth on x >= 0)."""
    W = layer.weight.detach().numpy()
    b = layer.bias.detach().numpy()
    t = problem.target[i].numpy()
    m = problem.mask[i].numpy()
    hi = problem.hi[i].numpy()
    n = W.shape[1]
    lam = problem.lam

    def fun(x):  # on x >= 0 both terms are smooth away from r = 0 and m x = 0
        r = t - W @ x - b
        nr = np.linalg.norm(r)
        if problem.penalty == "l2":
            nm = np.linalg.norm(m * x)
            return nr + lam * nm, -W.T @ r / nr + lam * m * m * x / nm
        return nr + lam * m @ x / np.sqrt(n), -W.T @ r / nr + lam * m / np.sqrt(n)

    res = minimize(fun, hi / 2, jac=True, method="L-BFGS-B", bounds=[(0, h) for h in hi],
                   options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10000})
    assert res.success, res.message
    return res.x, res.fun


@pytest.mark.parametrize("penalty", ["l1", "l2"])
def test_fista_matches_scipy_on_a_convex_linear_case(penalty):
    problem, layer = _linear_problem(penalty)
    res = solve_fista(problem, max_iter=5000, tol=1e-10, window=20)
    for i in range(problem.x0.shape[0]):
        x_ref, f_ref = _scipy_solution(problem, layer, i)
        f_ours = problem.subset(torch.tensor([i])).cost(res.x[i:i + 1]).item()
        assert f_ours <= f_ref + 1e-6
        np.testing.assert_allclose(res.x[i].numpy(), x_ref, atol=2e-3)


@pytest.mark.parametrize("penalty", ["l1", "l2"])
def test_solutions_stay_in_the_box_and_fista_is_monotone(penalty):
    problem, _ = _linear_problem(penalty, relu=True, n=4, dtype=torch.float32)
    res = solve_fista(problem, record_history=True)
    assert torch.all(res.x >= problem.lo) and torch.all(res.x <= problem.hi)
    assert torch.all(res.history[1:] <= res.history[:-1] + 1e-6)
    paper = solve_paper(problem)
    assert torch.all(paper.x >= problem.lo) and torch.all(paper.x <= problem.hi)


@pytest.mark.parametrize("solver", [solve_paper, solve_fista])
def test_batched_equals_per_sample(solver):
    problem, _ = _linear_problem("l2", relu=True, n=3)
    batched = solver(problem)
    for i in range(3):
        single = solver(problem.subset(torch.tensor([i])))
        torch.testing.assert_close(single.x[0], batched.x[i], rtol=1e-7, atol=1e-9)
        assert single.iterations[0] == batched.iterations[i]


def test_paper_solver_stops_on_absolute_cost_spread():
    # A problem whose costs are tiny stops as soon as the buffer is full (the flaw METHOD.md names).
    problem, _ = _linear_problem("l2", n=1)
    small = LayerProblem(forward=lambda x: problem.forward(x) * 1e-3, lo=problem.lo, hi=problem.hi,
                         x0=problem.x0, target=problem.target * 1e-3, mask=problem.mask, lam=1e-3)
    assert solve_paper(small).iterations.item() == 11
    assert solve_paper(problem).iterations.item() > 11


def test_margin_objective_decreases():
    g = torch.Generator().manual_seed(0)
    layer = nn.Linear(8, 4)
    bound = torch.rand(5, 8, generator=g)
    classes = torch.tensor([0, 1, 2, 3, 0])
    problem = LayerProblem(forward=layer, lo=torch.zeros_like(bound), hi=bound, x0=bound / 2,
                           classes=classes)
    res = solve_fista(problem)
    assert torch.all(res.cost <= problem.cost(problem.project(problem.x0)) + 1e-6)
    # the margin over a box is a linear programme: compare with scipy's LP solution
    W, b = layer.weight.detach().double().numpy(), layer.bias.detach().double().numpy()
    for i, c in enumerate(classes.tolist()):
        others = [j for j in range(4) if j != c]
        # variables (x, m): minimise m s.t. (w_j - w_c) x + b_j - b_c <= m
        A = np.hstack([W[others] - W[c], -np.ones((3, 1))])
        lp = linprog(np.r_[np.zeros(8), 1.0], A_ub=A, b_ub=b[c] - b[others],
                     bounds=[(0, h) for h in bound[i].tolist()] + [(None, None)])
        assert lp.status == 0
        assert res.cost[i].item() == pytest.approx(lp.fun, abs=1e-3 * (1 + abs(lp.fun)))


def test_operator_norm_of_a_linear_layer():
    layer = nn.Linear(7, 5).double()
    expected = torch.linalg.matrix_norm(layer.weight.detach(), ord=2).item()
    assert operator_norm(layer, torch.zeros(1, 7, dtype=torch.float64), n_iter=200) == pytest.approx(expected, rel=1e-6)


def test_problem_validation():
    x = torch.zeros(1, 3)
    with pytest.raises(ValueError, match="exactly one"):
        LayerProblem(forward=lambda v: v, lo=x, hi=x, x0=x)
    with pytest.raises(ValueError, match="penalty"):
        LayerProblem(forward=lambda v: v, lo=x, hi=x, x0=x, target=x, penalty="l3")


@pytest.mark.parametrize("kind", ["linear", "conv", "conv_strided"])
@pytest.mark.parametrize("penalty", ["l1", "l2"])
@pytest.mark.parametrize("relu", [True, False])
def test_affine_fast_path_gives_the_generic_iterates(kind, penalty, relu):
    # A bare Conv2d/Linear takes the fast path (A x tracked, one adjoint per
    # iteration); wrapping it in a lambda forces the autograd path. Same iterates.
    g = torch.Generator().manual_seed(3)
    if kind == "linear":
        layer = nn.Linear(12, 7).double()
        shape = (3, 12)
    else:
        stride = 2 if kind == "conv_strided" else 1
        layer = nn.Conv2d(3, 5, 3, stride=stride, padding=1).double()
        shape = (3, 3, 9, 9)
    with torch.no_grad():
        for prm in layer.parameters():
            prm.copy_(torch.randn(prm.shape, generator=g, dtype=torch.float64))
    hi = torch.rand(shape, generator=g, dtype=torch.float64) * 2
    target = layer(hi * torch.rand(shape, generator=g, dtype=torch.float64)).detach().abs()
    mask = torch.rand(shape, generator=g, dtype=torch.float64)
    kw = dict(lo=torch.zeros_like(hi), hi=hi, x0=hi / 2, target=target, relu=relu, mask=mask, lam=0.2,
              penalty=penalty)
    fast = solve_fista(LayerProblem(forward=layer, **kw), max_iter=60, tol=1e-8, op_norm=3.0)
    slow = solve_fista(LayerProblem(forward=lambda z: layer(z), **kw), max_iter=60, tol=1e-8, op_norm=3.0)
    assert torch.equal(fast.iterations, slow.iterations)
    torch.testing.assert_close(fast.x, slow.x, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(fast.cost, slow.cost, rtol=1e-10, atol=1e-12)
