"""invnb.inverse.output_fit and LayerwiseInverse's output_fit option: known answers on small networks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from invnb.inverse import LayerwiseInverse, attribution_map, setting_kwargs
from invnb.inverse.output_fit import fit_output, fit_walk
from invnb.inverse.settings import VDSR_OUTPUT_FIT, VDSR_OUTPUT_FIT_EVALS
from invnb.models import VDSR


pytestmark = pytest.mark.usefixtures("one_thread")


def _gen(seed):
    return torch.Generator().manual_seed(seed)


class Double(nn.Module):
    """F(z) = 2 z: the fit's unique answer is z = t / 2."""

    def forward(self, z):
        return 2 * z


def _rel(net, z, t):
    with torch.no_grad():
        return (net(z) - t).flatten(1).norm(dim=1) / t.flatten(1).norm(dim=1)


def test_a_linear_network_is_fitted_to_its_unique_answer():
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64, generator=_gen(0)) + 0.1
    keep = torch.rand(2, 1, 8, 8, dtype=torch.float64, generator=_gen(1))
    t = 2 * keep * x  # reachable inside the box 0 <= z <= x
    fit = fit_output(Double(), 0.5 * x, x, t, rtol=0.0, max_evals=30)
    torch.testing.assert_close(fit.x, keep * x, atol=1e-6, rtol=0)
    assert (fit.relative_error < 1e-6).all()
    torch.testing.assert_close(fit.start_error, _rel(Double(), 0.5 * x, t))


def test_the_fit_stays_in_the_box_of_an_attenuation():
    # signed inputs: the box is min(x, 0) <= z <= max(x, 0); the target asks for more than the box allows
    x = torch.randn(1, 1, 6, 6, dtype=torch.float64, generator=_gen(2))
    fit = fit_output(Double(), 0.3 * x, x, 3 * x, rtol=0.0, max_evals=20)
    assert (fit.x.abs() <= x.abs() + 1e-12).all() and (fit.x * x >= 0).all()
    torch.testing.assert_close(fit.x, x, atol=1e-6, rtol=0)  # the box's corner nearest to 1.5 x
    assert float(fit.relative_error[0]) == pytest.approx(1 / 3, abs=1e-6)  # |2x - 3x| / |3x|


def test_it_stops_at_the_first_point_within_the_tolerance():
    x = torch.rand(1, 1, 8, 8, dtype=torch.float64, generator=_gen(3)) + 0.1
    t = 2 * x
    start = 0.95 * x  # relative error 0.05 already
    fit = fit_output(Double(), start, x, t, rtol=0.1, max_evals=50)
    assert fit.evaluations.tolist() == [1]
    torch.testing.assert_close(fit.x, start)
    tight = fit_output(Double(), 0.2 * x, x, t, rtol=0.1, max_evals=50)
    assert 1 < int(tight.evaluations[0]) <= 50 and float(tight.relative_error[0]) <= 0.1


def test_it_stops_when_the_evaluations_are_spent():
    torch.manual_seed(3)
    net = VDSR(depth=4, channels=6).double().eval()
    x = torch.rand(1, 1, 12, 12, dtype=torch.float64, generator=_gen(6))
    with torch.no_grad():
        y = net(x)
    fit = fit_output(net, 0.3 * x, x, y, rtol=0.0, max_evals=7)
    assert fit.evaluations.tolist() == [7]
    # the best point evaluated is returned, and its error is the one reported
    torch.testing.assert_close(fit.relative_error, _rel(net, fit.x, y))
    assert float(fit.relative_error[0]) < float(fit.start_error[0])


def test_skipped_samples_and_batches_of_one():
    torch.manual_seed(0)
    net = VDSR(depth=4, channels=6).double().eval()
    x = torch.rand(3, 1, 12, 12, dtype=torch.float64, generator=_gen(4))
    with torch.no_grad():
        y = net(x)
    start = 0.5 * x
    skip = torch.tensor([False, True, False])
    fit = fit_output(net, start, x, y, rtol=0.05, max_evals=40, skip=skip)
    torch.testing.assert_close(fit.x[1], start[1])
    assert fit.evaluations[1] == 0 and torch.isnan(fit.relative_error[1])
    for i in (0, 2):  # each sample is fitted alone: the same as a batch of one
        alone = fit_output(net, start[i:i + 1], x[i:i + 1], y[i:i + 1], rtol=0.05, max_evals=40)
        torch.testing.assert_close(fit.x[i:i + 1], alone.x, atol=1e-12, rtol=0)
        assert float(fit.relative_error[i]) < float(fit.start_error[i])


@pytest.mark.parametrize("kw, match", [({"rtol": -0.1}, "rtol"), ({"rtol": True}, "rtol"),
                                       ({"rtol": float("nan")}, "rtol"), ({"max_evals": 0}, "max_evals"),
                                       ({"max_evals": 2.5}, "max_evals")])
def test_bad_arguments_are_named(kw, match):
    x = torch.ones(1, 1, 4, 4)
    with pytest.raises(ValueError, match=match):
        fit_output(Double(), x, x, 2 * x, **kw)
    with pytest.raises(ValueError, match="one shape"):
        fit_output(Double(), x[..., :2], x, 2 * x)
    with pytest.raises(ValueError, match="2 targets for 1 inputs"):
        fit_output(Double(), x, x, torch.ones(2, 1, 4, 4))


def test_the_engine_option_is_the_walk_then_the_fit():
    torch.manual_seed(1)
    net = VDSR(depth=5, channels=6).double().eval()
    x = torch.rand(2, 1, 16, 16, dtype=torch.float64, generator=_gen(5))
    with torch.no_grad():
        y = net(x)
    walk = LayerwiseInverse(net, mask_weight=1.0, max_iter=4)
    res_walk = walk.invert(x, target=y)
    fitted = LayerwiseInverse(net, mask_weight=1.0, max_iter=4, output_fit=0.25, output_fit_evals=100)
    res = fitted.invert(x, target=y)
    ref = fit_output(walk.stack, res_walk.input, x, y, 0.25, 100, skip=res_walk.failed)
    torch.testing.assert_close(res.input, ref.x, atol=1e-12, rtol=0)
    last = res.stats[-1]
    assert (last.index, last.name) == (-1, "output_fit") and len(res.stats) == len(res_walk.stats) + 1
    torch.testing.assert_close(last.cost, ref.relative_error)
    assert (last.cost <= 0.25).all() and (last.iterations > 1).all() and (last.iterations < 100).all()
    # the map is that of the fitted inverse input; the walk's layers above are untouched
    torch.testing.assert_close(res.attribution, attribution_map(
        res.input, x, fitted.attribution, sigma=fitted.map_sigma, smoothing=fitted.map_smoothing,
        fill_sigma=fitted.map_fill_sigma, clip=fitted.map_clip))
    torch.testing.assert_close(res.features[1], res_walk.features[1])
    assert (_rel(net, res.input, y) <= 0.25 + 1e-9).all()
    # in batches of one the same (each sample is fitted alone)
    one = LayerwiseInverse(net, mask_weight=1.0, max_iter=4, output_fit=0.25, batch_size=1).invert(x, target=y)
    torch.testing.assert_close(one.input, res.input, atol=1e-12, rtol=0)
    torch.testing.assert_close(one.stats[-1].cost, last.cost)


def test_fit_walk_reports_the_fit_as_the_last_layer():
    x = torch.rand(2, 1, 6, 6, dtype=torch.float64, generator=_gen(7)) + 0.1
    z, st = fit_walk(Double(), 0.2 * x, x, 1.6 * x, 1e-3, 50, torch.tensor([True, False]))
    torch.testing.assert_close(z[0], 0.2 * x[0])  # a failed walk is left alone
    torch.testing.assert_close(z[1], 0.8 * x[1], atol=1e-4, rtol=0)
    assert (st.index, st.name, st.iterations[0].item()) == (-1, "output_fit", 0)
    assert torch.isnan(st.cost[0]) and float(st.cost[1]) <= 1e-3 and st.cost.dtype == x.dtype and st.seconds > 0


def test_the_option_is_checked_and_off_by_default():
    torch.manual_seed(2)
    net = VDSR(depth=3, channels=4).double().eval()
    assert LayerwiseInverse(net).output_fit is None
    assert LayerwiseInverse.paper(net, variant="vdsr").output_fit is None
    assert "output_fit" not in setting_kwargs("paper") and "output_fit" not in setting_kwargs("vdsr_paper")
    vdsr = LayerwiseInverse.from_setting(net, "vdsr")
    assert (vdsr.output_fit, vdsr.output_fit_evals) == (VDSR_OUTPUT_FIT, VDSR_OUTPUT_FIT_EVALS)
    assert LayerwiseInverse.from_setting(net, "vdsr", output_fit=None).output_fit is None
    for bad in (-1.0, float("inf"), True, "0.1"):
        with pytest.raises(ValueError, match="output_fit must be None"):
            LayerwiseInverse(net, output_fit=bad)
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="output_fit_evals must be an integer"):
            LayerwiseInverse(net, output_fit=0.1, output_fit_evals=bad)
    clf = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).double()
    with pytest.raises(ValueError, match="output_fit=None"):
        LayerwiseInverse(clf, mask_weight=1.0, output_fit=0.1).invert(torch.rand(2, 16, dtype=torch.float64), 1)
