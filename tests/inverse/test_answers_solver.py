"""Answer-checking tests of invnb.inverse.solver: golden values from the authors' code, scale
invariance of the default stopping rule, solution quality at the default settings.

Golden values (`GOLDEN_*` below) were computed ONCE with the authors' released code,
github.com/hjkwonispl/inv_cnn at commit a2f77a979a3b0476dd834e3d98ec172ec44485ee,
``src/inc/inv_layer.py``: ``inv_conv_activations`` / ``inv_fc_activations`` /
``inv_fc_softmax`` (which run ``gradient_projection_algorithm`` with
``init_method="avgpool"``, ``cost_seq_bufsz=10``), on the float64 problems built by
`_conv_problem` / `_lin_problem` here, with torch 2.14 on CPU. Their iteration count was
read by counting the layer's forward calls (two per iteration). Their code is not part
of this repository. `solve_paper` reproduced those numbers to the last digit (max |dx| = 0).
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import minimize

from invnb.inverse import LayerProblem, operator_norm, solve_fista, solve_paper
from invnb.inverse.solver import avgpool_init

torch.set_num_threads(1)


def _grid(*shape, a=1.0, b=0.0):
    """Deterministic values ``sin(a * i + b)``, i = 0, 1, ... (no random generator involved)."""
    n = math.prod(shape)
    return torch.sin(a * torch.arange(n, dtype=torch.float64) + b).reshape(shape)


def _conv_problem(scale):
    conv = torch.nn.Conv2d(2, 3, 3, padding=1).double()
    with torch.no_grad():
        conv.weight.copy_(0.4 * _grid(3, 2, 3, 3, a=0.77, b=0.3))
        conv.bias.copy_(0.1 * _grid(3, a=1.9, b=0.5))
    xb = scale * _grid(1, 2, 6, 6, a=0.53, b=0.1)  # the forward input (the box bound), signs mixed
    y = scale * F.relu(_grid(1, 3, 6, 6, a=0.41, b=1.2))  # the target
    mask = 0.5 + 0.5 * _grid(1, 1, 6, 6, a=0.29, b=0.7)
    return conv, xb, y, mask


def _lin_problem(scale):
    lin = torch.nn.Linear(12, 5).double()
    with torch.no_grad():
        lin.weight.copy_(0.5 * _grid(5, 12, a=0.91, b=0.2))
        lin.bias.copy_(0.1 * _grid(5, a=1.3))
    xb = scale * _grid(12, a=0.67, b=0.4)
    y = scale * F.relu(_grid(5, a=1.1, b=0.9))
    return lin, xb, y


# (scale, std threshold, clip) -> (final cost, iterations, sum x, sum x^2, {flat index: x})
# clip "+": 0 <= x <= max(0, xb) (hidden layer); "+-": |x| <= |xb| with xb's sign (image layer).
GOLDEN_CONV = {
    (10.0, 0.1, "+"): (50.62097754454816, 20, 22.402080809957475, 45.793197793978294,
                       {14: 1.288358965773, 28: 0.283049776632, 49: 1.31197768373, 63: 0.167228404689}),
    (10.0, 0.1, "+-"): (49.013242418215526, 28, -5.364544160625057, 128.06353480151088,
                        {7: -0.209316488405, 14: 1.392555873088, 21: -0.002167675778, 35: -0.778591143929,
                         49: 0.497493624477, 70: -3.789101547127}),
    (3.0, 0.01, "+"): (15.052826051751058, 25, 5.954441692434679, 6.500232209461307,
                       {14: 0.306440700521, 28: 0.001989260735}),
    (3.0, 0.01, "+-"): (14.674171515631345, 25, -0.8602562181768802, 14.316070809152357,
                        {7: -0.064736234641, 14: 0.243422159078, 63: 0.014048584125, 70: -1.130738393098}),
}
# (scale, std threshold) -> (final cost, iterations, sum x, sum x^2, {index: x}); mask_weight 0.7, clip "+"
GOLDEN_LIN = {
    (10.0, 0.1): (11.642837113137958, 34, 6.458561479126704, 8.887433483167175, {0: 0.0}),
    (3.0, 0.01): (3.4374806568506675, 24, 1.8035806590365944, 0.5810269738985884, {0: 0.0}),
}
# margin of class 2 (inv_fc_softmax), max_iter=40, clip "+": (scale, threshold) -> as above
GOLDEN_MARGIN = {
    (10.0, 0.001): (-1.4057780893119192, 42, 8.544816019855737, 36.79304808277426, {0: 3.894183423087}),
    (3.0, 0.0001): (-0.40161812331103497, 42, 2.4280492064135424, 2.9519011826085677, {0: 1.168255026926}),
}


def _check_golden(res, golden):
    cost, iters, total, sq, picks = golden
    x = res.x.flatten()
    assert int(res.iterations[0]) == iters
    assert float(res.cost[0]) == pytest.approx(cost, rel=1e-9, abs=1e-12)
    assert float(x.sum()) == pytest.approx(total, rel=1e-8, abs=1e-10)
    assert float((x * x).sum()) == pytest.approx(sq, rel=1e-8)
    for i, v in picks.items():
        assert float(x[i]) == pytest.approx(v, abs=1e-9)


@pytest.mark.parametrize("key", list(GOLDEN_CONV))
def test_paper_solver_matches_the_authors_code_on_a_conv_layer(key):
    scale, th, clip = key
    conv, xb, y, mask = _conv_problem(scale)
    lo = torch.zeros_like(xb) if clip == "+" else xb.clamp(max=0)
    p = LayerProblem(forward=conv, lo=lo, hi=xb.clamp(min=0), x0=avgpool_init(xb), target=y, relu=True,
                     mask=mask, lam=0.7, penalty="l2")
    _check_golden(solve_paper(p, std_threshold=th), GOLDEN_CONV[key])


@pytest.mark.parametrize("key", list(GOLDEN_LIN))
def test_paper_solver_matches_the_authors_code_on_a_linear_layer(key):
    scale, th = key
    lin, xb, y = _lin_problem(scale)
    p = LayerProblem(forward=lin, lo=torch.zeros(1, 12, dtype=torch.float64), hi=xb.clamp(min=0)[None],
                     x0=avgpool_init(xb[None]), target=y[None], relu=True, lam=0.7, penalty="l2")
    _check_golden(solve_paper(p, std_threshold=th), GOLDEN_LIN[key])


@pytest.mark.parametrize("key", list(GOLDEN_MARGIN))
def test_paper_solver_matches_the_authors_code_on_the_margin(key):
    scale, th = key
    lin, xb, _ = _lin_problem(scale)
    p = LayerProblem(forward=lin, lo=torch.zeros(1, 12, dtype=torch.float64), hi=xb.clamp(min=0)[None],
                     x0=avgpool_init(xb[None]), classes=torch.tensor([2]))
    _check_golden(solve_paper(p, max_iter=40, std_threshold=th), GOLDEN_MARGIN[key])


def test_paper_solver_batch_reproduces_each_golden_sample():
    """Two conv problems in one batch: each sample stops by its own rule, as alone."""
    conv, xb1, y1, mask1 = _conv_problem(10.0)
    _, xb2, y2, mask2 = _conv_problem(3.0)
    xb, y, mask = torch.cat([xb1, xb2]), torch.cat([y1, y2]), torch.cat([mask1, mask2])
    p = LayerProblem(forward=conv, lo=torch.zeros_like(xb), hi=xb.clamp(min=0), x0=avgpool_init(xb),
                     target=y, relu=True, mask=mask, lam=0.7, penalty="l2")
    res = solve_paper(p, std_threshold=0.1)
    _check_golden(type(res)(res.x[:1], res.iterations[:1], res.cost[:1]), GOLDEN_CONV[(10.0, 0.1, "+")])
    alone = solve_paper(p.subset(torch.tensor([1])), std_threshold=0.1)
    assert int(res.iterations[1]) == int(alone.iterations[0])
    assert torch.allclose(res.x[1], alone.x[0], rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- the default solver
def _fista_problem(c=1.0, penalty="l1", lam=0.3, relu=False, n=3):
    """A bias-free conv problem, homogeneous of degree 1 in (x, target, box) jointly: scaling those
    by c scales the cost by c and the minimiser by c."""
    g = torch.Generator().manual_seed(5)
    conv = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False).double()
    with torch.no_grad():
        conv.weight.copy_(torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64) * 0.3)
    xb = torch.rand(n, 3, 8, 8, generator=g, dtype=torch.float64) + 0.2
    t = F.relu(conv(xb * torch.rand(n, 3, 8, 8, generator=g, dtype=torch.float64))).detach()
    mask = torch.rand(n, 1, 8, 8, generator=g, dtype=torch.float64)
    return LayerProblem(forward=conv, lo=torch.zeros_like(xb), hi=c * xb, x0=c * avgpool_init(xb),
                        target=c * t, relu=relu, mask=mask, lam=lam, penalty=penalty)


@pytest.mark.parametrize("penalty", ["l1", "l2"])
def test_fista_stopping_rule_is_scale_free(penalty):
    """Same problem scaled by 1e-4 and 1e4: same iterations, cost scaled by the same factor."""
    base = solve_fista(_fista_problem(1.0, penalty))
    assert 8 <= int(base.iterations.max()) < 300  # it stopped by its rule, not at the cap
    for c in (1e-4, 1e4):
        res = solve_fista(_fista_problem(c, penalty))
        assert torch.equal(res.iterations, base.iterations), (c, res.iterations, base.iterations)
        assert torch.allclose(res.cost / c, base.cost, rtol=1e-6)
        assert torch.allclose(res.x / c, base.x, rtol=1e-5, atol=1e-9)


def _scipy_optimum(p, i):
    """The minimum of sample i of a convex L1 problem on a box [0, hi] by L-BFGS-B.

    Written independently of `LayerProblem.cost`: on x >= 0 the L1 penalty is the linear
    ``sum(m * x) / sqrt(size)``, smooth up to the bound (|x| would give L-BFGS-B a wrong
    gradient at x = 0)."""
    shape = p.x0[i:i + 1].shape
    sub = p.subset(torch.tensor([i]))
    assert sub.penalty == "l1" and not sub.relu and bool((sub.lo == 0).all())
    size = sub.x0[0].numel()

    def fg(v):
        x = torch.tensor(v, dtype=torch.float64).reshape(shape).requires_grad_(True)
        f = (sub.target - sub.forward(x)).norm() + sub.lam * (sub.mask * x).sum() / math.sqrt(size)
        (g,) = torch.autograd.grad(f, x)
        return float(f.detach()), g.flatten().numpy().copy()

    bounds = list(zip(sub.lo.flatten().tolist(), sub.hi.flatten().tolist()))
    r = minimize(fg, sub.project(sub.x0).flatten().numpy(), jac=True, method="L-BFGS-B", bounds=bounds,
                 options=dict(maxiter=20000, maxfun=40000, ftol=1e-15, gtol=1e-12))
    return r.fun


def test_fista_default_settings_reach_the_optimum():
    """At its default tol and budget, FISTA's cost is within 3e-4 (relative) of the optimum
    (L-BFGS-B) on a convex layer problem (L1 penalty on the box [0, hi], where it is linear).
    Measured: gap about 6e-5 after 10-13 iterations; a budget of 5 iterations leaves 8e-3."""
    for lam in (0.5, 2.0):
        p = _fista_problem(1.0, "l1", lam=lam)
        res = solve_fista(p)
        for i in range(p.x0.shape[0]):
            opt = _scipy_optimum(p, i)
            f = float(res.cost[i])
            assert f >= opt - 1e-6 * abs(opt)  # no better than the optimum (sanity of the reference)
            assert (f - opt) / opt < 3e-4, (lam, i, f, opt)


def test_fista_cost_is_the_objective_at_its_answer():
    p = _fista_problem(1.0, "l2", lam=0.4, relu=True)
    res = solve_fista(p)
    assert torch.allclose(res.cost, p.cost(res.x), rtol=1e-10)


@pytest.mark.parametrize("solver", [solve_paper, solve_fista])
def test_mask_one_pixels_shrink_more_than_mask_zero_pixels(solver):
    """Identity layer, target = the bound: without a penalty x = target. A mask of 1 on the left
    half and 0 on the right: only the left half is pulled towards 0 (at lam = 1.5 the exact
    optimum is 0 on the left, the target on the right; the norms are not squared)."""
    xb = torch.full((1, 2, 4, 6), 2.0, dtype=torch.float64)
    ident = torch.nn.Conv2d(2, 2, 1, bias=False).double()
    with torch.no_grad():
        ident.weight.copy_(torch.eye(2, dtype=torch.float64)[:, :, None, None])
    mask = torch.zeros(1, 1, 4, 6, dtype=torch.float64)
    mask[..., :3] = 1.0
    for penalty in ("l2", "l1"):
        p = LayerProblem(forward=ident, lo=torch.zeros_like(xb), hi=2 * xb, x0=avgpool_init(xb), target=xb,
                         mask=mask, lam=1.5, penalty=penalty)
        x = solver(p).x
        left, right = x[..., :3].mean(), x[..., 3:].mean()
        assert float(right) == pytest.approx(2.0, abs=0.1)  # unpenalised: matches the target
        assert float(left) < 0.6


def test_operator_norm_of_a_known_matrix():
    """Largest singular value of diag(3, 2, 1) (plus a bias, which it must ignore) is 3."""
    lin = torch.nn.Linear(3, 3).double()
    with torch.no_grad():
        lin.weight.copy_(torch.diag(torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)))
        lin.bias.fill_(5.0)
    assert operator_norm(lin, torch.zeros(1, 3, dtype=torch.float64), n_iter=60) == pytest.approx(3.0, rel=1e-6)


def test_l1_penalty_is_the_scaled_l1_norm():
    x = torch.tensor([[3.0, -4.0, 0.0, 1.0]], dtype=torch.float64)
    m = torch.tensor([[1.0, 0.5, 2.0, 0.0]], dtype=torch.float64)
    lin = torch.nn.Linear(4, 1).double()
    p1 = LayerProblem(forward=lin, lo=-10 * torch.ones_like(x), hi=10 * torch.ones_like(x), x0=x,
                      target=torch.zeros(1, 1, dtype=torch.float64), mask=m, lam=1.0, penalty="l1")
    assert float(p1.penalty_cost(x)[0]) == pytest.approx((3 + 2 + 0 + 0) / 2.0)
    p2 = LayerProblem(forward=lin, lo=p1.lo, hi=p1.hi, x0=x, target=p1.target, mask=m, lam=1.0, penalty="l2")
    assert float(p2.penalty_cost(x)[0]) == pytest.approx(math.sqrt(9 + 4))


# --------------------------------------------------------------------------- FISTA, step by step
def _reference_fista(A, b, t, lo, hi, x0, lam, m, penalty, relu, op_norm, max_iter, tol, window, min_iter,
                     growth):
    """FISTA as `solve_fista`'s docstring describes it, written here in numpy for one sample:
    start step 1 / L with L = ||A||^2 / ||r|| (+ lam max(m^2) / R(x) for the smooth L2 penalty),
    backtracking on the quadratic upper model (halving, at most 40 tries, slack 1e-6 |f| + 1e-12),
    prox = soft threshold then clip, monotone restart, step grown by `growth` after an accepted
    step, stop when the objective fell by at most tol * max(|f_now|, |f_window_ago|).
    Returns (x, cost, iterations, restarts)."""
    n = x0.size
    l1 = penalty == "l1"
    nonneg = bool(np.all(lo == 0))

    def act(v):
        return np.maximum(v, 0) if relu else v

    def pen(x):
        return np.linalg.norm(m * x) if not l1 else np.abs(m * x).sum() / np.sqrt(n)

    def smooth(x):
        return np.linalg.norm(t - act(A @ x + b)) + (0.0 if l1 else lam * pen(x))

    def grad(x):
        pre = A @ x + b
        r = t - act(pre)
        g_out = -r / max(np.linalg.norm(r), 1e-30)
        if relu:
            g_out = np.where(pre <= 0, 0.0, g_out)
        g = A.T @ g_out
        if not l1:
            g = g + lam * m * m * x / np.linalg.norm(m * x)
        return g

    def nonsmooth(x):
        return lam * pen(x) if l1 else 0.0

    def prox(v, s):
        if l1:
            thr = s * lam / np.sqrt(n) * m
            if nonneg:
                return np.minimum(np.maximum(v - thr, 0), hi)
            v = np.sign(v) * np.maximum(np.abs(v) - thr, 0)
        return np.clip(v, lo, hi)

    x = np.clip(x0, lo, hi)
    lip = op_norm**2 / max(np.linalg.norm(t - act(A @ x + b)), 1e-12)
    if not l1:
        lip += lam * np.max(m * m) / max(pen(x), 1e-12)
    step = 1 / max(lip, 1e-12)
    fx = smooth(x) + nonsmooth(x)
    y, tk, hist, restarts, it = x.copy(), 1.0, [fx] * (window + 1), 0, 0
    for it in range(1, max_iter + 1):
        gy, g = smooth(y), grad(y)
        for _ in range(40):
            z = prox(y - step * g, step)
            gz, d = smooth(z), z - y
            if gz <= gy + g @ d + d @ d / (2 * step) + 1e-6 * abs(gy) + 1e-12:
                break
            step *= 0.5
        fz = gz + nonsmooth(z)
        t_next = 0.5 * (1 + np.sqrt(1 + 4 * tk * tk))
        if fz <= fx:
            y = z + (tk - 1) / t_next * (z - x)
            x, tk, fx, step = z, t_next, fz, step * growth
        else:
            y, tk, restarts = x.copy(), 1.0, restarts + 1
        hist = hist[1:] + [fx]
        if it >= max(min_iter, window) and hist[0] - fx <= tol * max(abs(fx), abs(hist[0]), 1e-12):
            break
    return x, fx, it, restarts


@pytest.mark.parametrize("penalty,relu,signed,shared", [("l1", False, False, False), ("l1", True, False, False),
                                                         ("l2", True, False, False), ("l1", False, True, False),
                                                         ("l2", False, True, False), ("l2", True, False, True),
                                                         ("l1", False, True, True)])
def test_fista_follows_its_documented_iteration(penalty, relu, signed, shared):
    """solve_fista's iterates equal an independent numpy implementation of the algorithm its
    docstring states (iterations, answer, cost), with every option given explicitly."""
    g = torch.Generator().manual_seed(11)
    n_in, n_out, n = 10, 7, 3
    lin = torch.nn.Linear(n_in, n_out).double()
    with torch.no_grad():
        lin.weight.copy_(torch.randn(n_out, n_in, generator=g, dtype=torch.float64))
        lin.bias.copy_(0.3 * torch.randn(n_out, generator=g, dtype=torch.float64))
    xb = torch.randn(n, n_in, generator=g, dtype=torch.float64) + (0.0 if signed else 1.5)
    lo, hi = (xb.clamp(max=0), xb.clamp(min=0)) if signed else (torch.zeros_like(xb), xb.clamp(min=0))
    t = lin(xb * torch.rand(n, n_in, generator=g, dtype=torch.float64)).detach()
    if relu:
        t = t.clamp(min=0)
    mask = torch.rand(n, n_in, generator=g, dtype=torch.float64) + 0.2
    if shared:  # one mask for the whole batch
        mask = mask[:1]
    x0 = avgpool_init(xb)
    sigma = float(torch.linalg.matrix_norm(lin.weight.detach(), ord=2))
    opts = dict(max_iter=80, tol=1e-4, window=4, min_iter=6, growth=1.5, op_norm=0.5 * sigma)  # 0.5: backtracks
    p = LayerProblem(forward=lin, lo=lo, hi=hi, x0=x0, target=t, relu=relu, mask=mask, lam=0.6, penalty=penalty)
    res = solve_fista(p, **opts)
    restarts = 0
    for i in range(n):
        x_ref, f_ref, it_ref, r = _reference_fista(
            lin.weight.detach().numpy(), lin.bias.detach().numpy(), t[i].numpy(), lo[i].numpy(), hi[i].numpy(),
            x0[i].numpy(), 0.6, mask[i if not shared else 0].numpy(), penalty, relu, **opts)
        restarts += r
        assert int(res.iterations[i]) == it_ref, i
        np.testing.assert_allclose(res.x[i].numpy(), x_ref, rtol=1e-7, atol=1e-9)
        assert float(res.cost[i]) == pytest.approx(f_ref, rel=1e-9)
    assert int(res.iterations.max()) > opts["min_iter"] and restarts > 0  # the restart branch ran


# --------------------------------------------------------------------------- budgets and stopping
def test_fista_iteration_budget_and_earliest_stop():
    """max_iter is a hard cap; with a tolerance every step meets, a sample stops exactly after
    max(min_iter, window) iterations (the window must be full before the rule applies)."""
    p = _fista_problem(1.0, "l1", lam=0.5)
    assert torch.equal(solve_fista(p, max_iter=3, tol=1e-12).iterations, torch.full((3,), 3))
    assert torch.equal(solve_fista(p, tol=10.0, window=4, min_iter=7).iterations, torch.full((3,), 7))
    assert torch.equal(solve_fista(p, tol=10.0, window=6, min_iter=2).iterations, torch.full((3,), 6))
    res = solve_fista(p, max_iter=9, tol=1e-12, record_history=True)
    assert res.history.shape == (10, 3)  # the start, then one row per iteration
    torch.testing.assert_close(res.history[-1], res.cost)
    assert bool((res.history[1:] <= res.history[:-1] + 1e-12).all())  # monotone


def test_fista_margin_continuation_stays_within_the_budget():
    """The margin is solved in four smoothing stages that share max_iter."""
    lin, xb, _ = _lin_problem(3.0)
    x = xb.clamp(min=0)[None].repeat(2, 1)
    p = LayerProblem(forward=lin, lo=torch.zeros_like(x), hi=x, x0=avgpool_init(x), classes=torch.tensor([2, 0]))
    for budget in (4, 8, 40, 120):
        res = solve_fista(p, max_iter=budget)
        assert int(res.iterations.max()) <= budget
        assert int(res.iterations.min()) >= 4  # each of the four stages takes at least one step
        torch.testing.assert_close(res.cost, p.cost(res.x))  # the exact margin at the answer
    start = p.cost(p.project(p.x0))
    assert bool((res.cost < start - 0.1).all())


def test_smoothed_margin_by_hand_for_a_small_temperature():
    """z = (1.0, 0.2, 0.5), class 0: gaps to the other classes -0.8 and -0.5; with tau = 0.5 the
    smoothed margin is 0.5 log(exp(-1.6) + exp(-1.0)); with tau = 0 it is the plain max, -0.5."""
    z = torch.tensor([[1.0, 0.2, 0.5]], dtype=torch.float64)
    common = dict(forward=lambda x: x, lo=-torch.ones_like(z), hi=torch.ones_like(z), x0=z,
                  classes=torch.tensor([0]))
    smooth = LayerProblem(**common, smoothing=0.5).data_cost(z)
    assert float(smooth[0]) == pytest.approx(0.5 * math.log(math.exp(-1.6) + math.exp(-1.0)), rel=1e-12)
    assert float(LayerProblem(**common).data_cost(z)[0]) == pytest.approx(-0.5, rel=1e-12)


def test_fista_on_a_reflect_padded_conv_solves_that_conv():
    """A Conv2d with reflect padding is not the zero-padded matrix of the fast path: the answer
    must be the one for the layer as it is (the same layer passed as an opaque function)."""
    p = _fista_problem(1.0, "l2", lam=0.3)
    conv = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False, padding_mode="reflect").double()
    with torch.no_grad():
        conv.weight.copy_(p.forward.weight)
    t = F.relu(conv(p.hi * 0.7)).detach()
    direct = solve_fista(LayerProblem(**{**p.__dict__, "forward": conv, "target": t}))
    opaque = solve_fista(LayerProblem(**{**p.__dict__, "forward": lambda x: conv(x), "target": t}))
    torch.testing.assert_close(direct.x, opaque.x, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(direct.cost, opaque.cost, rtol=1e-8, atol=1e-12)


def test_fista_default_stopping_rule_from_its_history():
    """Defaults tol=1e-3, window=5, min_iter=5: a sample stops at the first iteration k >= 5 with
    f(k-5) - f(k) <= 1e-3 max(|f(k)|, |f(k-5)|), read off the recorded costs; a tolerance every
    step meets stops everything after exactly 5."""
    p = _fista_problem(1.0, "l2", lam=0.3, n=3)
    assert torch.equal(solve_fista(p, tol=10.0).iterations, torch.full((3,), 5))
    res = solve_fista(p, record_history=True)
    h = res.history.double()  # (iterations + 1, N); a stopped sample's column stays constant
    for i in range(h.shape[1]):
        k = next(k for k in range(5, h.shape[0])
                 if h[k - 5, i] - h[k, i] <= 1e-3 * max(abs(h[k, i]), abs(h[k - 5, i])))
        assert int(res.iterations[i]) == k, (i, k)


def _identity_problem(t, x0, lam):
    lin = torch.nn.Linear(t.shape[1], t.shape[1], bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(torch.eye(t.shape[1], dtype=torch.float64))
    return LayerProblem(forward=lin, lo=torch.zeros_like(t), hi=torch.ones_like(t), x0=x0, target=t,
                        lam=lam, penalty="l2")


def test_fista_closed_form_from_half_and_from_an_exact_fit():
    """min ||t - x|| + lam ||x|| over x in [0, 1]^n with lam < 1: along x = s t the cost is
    (|1 - s| + lam s) ||t||, least at s = 1, so x* = t and the cost is lam ||t||. Started at t/2
    and at t itself (zero residual, where the data term's gradient is undefined)."""
    t = torch.tensor([[0.5, 0.25, 0.75, 0.125]], dtype=torch.float64)
    opt = 0.3 * float(t.norm())
    for x0 in (0.5 * t, t.clone()):
        res = solve_fista(_identity_problem(t, x0, 0.3))
        assert torch.isfinite(res.x).all()
        assert float(res.cost[0]) == pytest.approx(opt, rel=2e-3)
        torch.testing.assert_close(res.x, t, rtol=0, atol=0.02)


def test_rowwise_layer_is_the_same_map_and_the_same_inverse():
    """RowWise only changes how a batch is evaluated (one sample at a time), not the map: its
    output, and FISTA's answer through it, are the plain layer's."""
    from invnb.inverse import RowWise

    p = _fista_problem(1.0, "l2", lam=0.3)
    rw = RowWise(p.forward)
    x = p.hi * 0.6
    torch.testing.assert_close(rw(x), p.forward(x), rtol=1e-12, atol=1e-12)
    plain = solve_fista(p)
    rowwise = solve_fista(LayerProblem(**{**p.__dict__, "forward": rw}))
    torch.testing.assert_close(rowwise.x, plain.x, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(rowwise.cost, plain.cost, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- closed forms (issue 16)
def _l1_identity_reference(t, c):
    """min_x ||t - x||_2 + c ||x||_1 (no box) for a vector t: x = soft(t, c r) where the
    residual norm r solves r^2 = sum_i min(|t_i|, c r)^2 (the optimality condition
    t - x = c r sign(x) on the support). Solved for r by bisection, independently of invnb."""
    a = [abs(v) for v in t]
    lo, hi = 0.0, math.sqrt(sum(v * v for v in a))
    for _ in range(200):
        r = 0.5 * (lo + hi)
        if sum(min(v, c * r) ** 2 for v in a) > r * r:
            lo = r
        else:
            hi = r
    r = 0.5 * (lo + hi)
    x = [math.copysign(max(abs(v) - c * r, 0.0), v) for v in t]
    cost = math.sqrt(sum((v - w) ** 2 for v, w in zip(t, x))) + c * sum(abs(w) for w in x)
    return x, cost


def test_fista_l1_on_a_signed_box_keeps_negative_answers():
    """Identity layer, L1 penalty, box [-2, 2] (an image layer's box, lo < 0): the answer is the
    closed form soft(t, c r) above, negative where t is; the box does not bind (|t| < 2). By hand:
    three entries survive, r^2 = 0.0929 / (1 - 3 c^2), c r = 0.411, x = (1.089, -0.589, 0, -0.189, 0, 0)."""
    t = torch.tensor([[1.5, -1.0, 0.3, -0.6, 0.05, -0.02]], dtype=torch.float64)
    lam, n = 1.3, t.shape[1]  # lam > 1: the penalty binds (lam < 1 gives x = t)
    lin = torch.nn.Linear(n, n, bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(torch.eye(n, dtype=torch.float64))
    p = LayerProblem(forward=lin, lo=-2 * torch.ones_like(t), hi=2 * torch.ones_like(t), x0=torch.zeros_like(t),
                     target=t, lam=lam, penalty="l1")
    x_ref, cost_ref = _l1_identity_reference(t[0].tolist(), lam / math.sqrt(n))
    assert x_ref[1] < -0.5 and x_ref[3] < -0.1 and x_ref[4] == 0.0  # the reference: signed, sparse
    res = solve_fista(p, tol=1e-9, max_iter=2000)
    torch.testing.assert_close(res.x[0], torch.tensor(x_ref, dtype=torch.float64), rtol=0, atol=2e-3)
    assert float(res.cost[0]) == pytest.approx(cost_ref, rel=1e-5)


def test_fista_on_a_dead_layer_returns_the_penalty_minimiser():
    """A layer with all-zero weights (a dead filter bank): the data term is constant, so with an
    L1 or L2 penalty the answer is x = 0 and the cost ||t - relu(b)||. Its Lipschitz estimate is
    0: the step must stay finite."""
    lin = torch.nn.Linear(4, 3).double()
    with torch.no_grad():
        lin.weight.zero_()
        lin.bias.copy_(torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64))
    t = torch.tensor([[1.0, 1.0, 1.0]], dtype=torch.float64)
    xb = torch.tensor([[1.0, 2.0, 0.5, 1.5]], dtype=torch.float64)
    for penalty in ("l1", "l2"):
        p = LayerProblem(forward=lin, lo=torch.zeros_like(xb), hi=xb, x0=0.5 * xb, target=t, relu=True,
                         lam=0.5, penalty=penalty)
        res = solve_fista(p)
        assert torch.isfinite(res.x).all(), penalty
        torch.testing.assert_close(res.x, torch.zeros_like(xb), rtol=0, atol=1e-6)
        # relu(b) = (0.5, 0, 2): ||t - relu(b)|| = sqrt(0.25 + 1 + 1)
        assert float(res.cost[0]) == pytest.approx(1.5, abs=1e-6), penalty


def test_fista_margin_reaches_the_linear_programme_optimum():
    """The exact margin max_{j != c} z_j - z_c of a linear layer over a box is a linear programme
    (min s subject to z_j - z_c <= s): scipy's linprog gives its optimum. At the default budget
    FISTA's continuation (smoothing down to 1e-4 of the logit spread) ends within 8e-5 of the
    spread above it (measured 1.9e-5 to 2.8e-5 for classes 0, 2, 4); a last stage at 1e-3 ends
    1.9e-4 to 2.7e-4 above it."""
    from scipy.optimize import linprog

    lin, xb, _ = _lin_problem(3.0)
    hi = xb.clamp(min=0)
    W, b = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    for c in (0, 2, 4):
        x = hi[None]
        p = LayerProblem(forward=lin, lo=torch.zeros_like(x), hi=x, x0=avgpool_init(x), classes=torch.tensor([c]))
        others = [j for j in range(W.shape[0]) if j != c]
        # variables (x_1..x_12, s): minimise s; (W_j - W_c) x - s <= b_c - b_j
        a_ub = np.hstack([W[others] - W[c], -np.ones((len(others), 1))])
        b_ub = b[c] - b[others]
        bounds = [(0.0, float(h)) for h in hi] + [(None, None)]
        lp = linprog(np.r_[np.zeros(len(hi)), 1.0], A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs")
        assert lp.status == 0
        z0 = lin(p.project(p.x0)).detach()
        spread = float(z0.max() - z0.min())
        res = solve_fista(p)
        gap = float(res.cost[0]) - lp.fun
        assert gap >= -1e-9, (c, gap)  # not below the optimum (sanity of the reference)
        assert gap < 8e-5 * spread, (c, gap, spread)
