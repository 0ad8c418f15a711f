"""invnb.eval.cost: forward-equivalents (known answers with a clock that counts forward passes) and the
per-layer/candidate breakdown of a real inverse."""

import pytest
import torch
from torch import nn

from invnb.inverse import LayerwiseInverse
from invnb.eval.cost import environment, layer_costs, measure_inverse_cost, time_forward
from invnb.inverse import InverseResult, LayerStats


class PassClock:
    """A clock that advances by one unit per forward pass of `model` and stands still otherwise."""

    def __init__(self, model):
        self.now = 0.0
        model.register_forward_hook(self._tick)

    def _tick(self, *_):
        self.now += 1.0

    def __call__(self):
        return self.now


class StubInverse:
    """Costs `per_image` forward passes (of one image each) per image inverted (a list: one
    number per call, in turn)."""

    def __init__(self, model, per_image):
        self.model, self.per_image = model, per_image
        self.seen = []

    def invert(self, x, target=None):
        per = self.per_image
        if isinstance(per, list):
            per = per[len(self.seen) % len(per)]
        self.seen.append(len(x))
        with torch.no_grad():
            for _ in range(per * len(x)):
                self.model(x[:1])
        n = len(x)
        stats = [LayerStats(3, "fc", torch.full((n,), 4), torch.zeros(n), 0.5, torch.full((n,), 10)),
                 LayerStats(1, "conv", torch.arange(n), torch.zeros(n), 0.25)]
        return InverseResult([x], None, None, torch.zeros(n, dtype=torch.bool), stats,
                             torch.full((n,), 2.0), None, torch.arange(1, n + 1))


@pytest.fixture()
def linear():
    torch.manual_seed(0)
    return nn.Linear(4, 3).eval()


def test_forward_equivalents_count_forward_passes(linear):
    clock = PassClock(linear)
    x = torch.randn(4, 4)
    inv = StubInverse(linear, per_image=3)
    cost = measure_inverse_cost(inv, x, clock=clock, forward_repeats=2)
    # one forward pass of the batch is one unit; the inverse makes 3 per image: 12
    assert cost.forward_seconds == pytest.approx(1.0)
    assert cost.inverse_seconds == pytest.approx(12.0)
    assert cost.forward_equivalents == pytest.approx(12.0)
    assert inv.seen == [1, 4]  # the untimed warm-up on one image, then the batch
    d = cost.as_dict()
    assert d["forward_equivalents"] == pytest.approx(12.0) and d["inverse_seconds_per_image"] == pytest.approx(3.0)
    assert d["candidates_tried"] == [1, 2, 3, 4] and d["candidates_tried_mean"] == pytest.approx(2.5)
    assert d["mask_weight"] == [2.0] * 4 and d["inverse_images_timed"] is None


def test_inverse_timed_on_a_part_of_the_batch_is_scaled(linear):
    clock = PassClock(linear)
    x = torch.randn(6, 4)
    inv = StubInverse(linear, per_image=5)
    cost = measure_inverse_cost(inv, x, clock=clock, forward_repeats=1, warmup=False, inverse_images=2)
    assert inv.seen == [2]
    assert cost.batch_size == 6 and cost.inverse_images_timed == 2
    assert cost.inverse_seconds == pytest.approx(30.0)  # 10 units on 2 images, scaled to 6
    assert cost.forward_equivalents == pytest.approx(30.0)
    with pytest.raises(ValueError, match="inverse_images"):
        measure_inverse_cost(inv, x, clock=clock, inverse_images=7)


def test_inverse_repeats_take_the_median(linear):
    clock = PassClock(linear)
    x = torch.randn(2, 4)
    inv = StubInverse(linear, per_image=[1, 5, 2])  # 2, 10 and 4 units: median 4 (mean 5.3)
    cost = measure_inverse_cost(inv, x, clock=clock, forward_repeats=1, inverse_repeats=3, warmup=False)
    assert inv.seen == [2, 2, 2] and cost.inverse_seconds == pytest.approx(4.0)
    with pytest.raises(ValueError, match="inverse_repeats"):
        measure_inverse_cost(inv, x, clock=clock, inverse_repeats=0)


def test_time_forward_repeats(linear):
    clock = PassClock(linear)
    wall, cpu = time_forward(linear, torch.randn(2, 4), repeats=3, clock=clock)
    assert wall == [1.0, 1.0, 1.0] and len(cpu) == 3 and all(c >= 0 for c in cpu)
    with pytest.raises(ValueError, match="repeats"):
        time_forward(linear, torch.randn(2, 4), repeats=0)


def test_layer_costs_of_a_stub():
    x = torch.randn(4, 4)
    res = StubInverse(nn.Identity(), 0).invert(x)
    costs = layer_costs(res)
    assert [(c.index, c.name) for c in costs] == [(3, "fc"), (1, "conv")]
    assert costs[0].iterations_mean == 4 and costs[0].iterations_total_mean == 10 and costs[0].seconds == 0.5
    # without totals (one walk) the total is the kept walk's
    assert costs[1].iterations_mean == pytest.approx(1.5) and costs[1].iterations_max == 3
    assert costs[1].iterations_total_mean == pytest.approx(1.5)


def test_breakdown_of_a_real_auto_inverse(tiny_vgg, tiny_batch):
    weights = (0.25, 1.0, 4.0)  # exact in float32 (res.mask_weight has the images' dtype)
    inv = LayerwiseInverse(tiny_vgg, auto_weights=weights)
    cost = measure_inverse_cost(inv, tiny_batch, setting="default", forward_repeats=1)
    assert cost.forward_seconds > 0 and cost.inverse_seconds > 0 and cost.forward_equivalents > 1
    res = inv.invert(tiny_batch)
    # the walk goes from the largest candidate down: an image chosen at w walked every larger one too
    order = sorted(weights, reverse=True)
    expected = [order.index(w) + 1 for w in res.mask_weight.tolist()]
    assert res.candidates_tried.tolist() == expected
    assert cost.candidates_tried == expected
    solved = [c for c in cost.layers if c.index != max(c.index for c in cost.layers)]  # below the margin
    assert solved and all(c.iterations_total_mean == pytest.approx(c.iterations_mean * sum(expected) / 6)
                          for c in solved)  # every walk ran the default budget


def test_environment_names_the_run():
    env = environment("cpu")
    assert env["device"] == "cpu" and env["torch"] == torch.__version__ and env["threads"] >= 1
    assert "git_commit" in env


def test_cost_markdown_has_one_row_per_measurement_with_its_ratios():
    from invnb.eval.cost import cost_markdown

    rows = [dict(model="smallvgg", size=64, setting=s, batch_size=b, forward_equivalents=fe,
                 forward_equivalents_cpu=fe + 1, inverse_seconds_per_image=0.1, forward_seconds_per_image=0.002,
                 candidates_tried_mean=1.5 if s == "default" else None, inverse_images_timed=1 if s == "paper" else None)
            for s, b, fe in (("default", 32, 30.84), ("paper", 32, 303.0))]
    env = {"device": "cpu", "device_name": "some CPU", "torch": "2.x", "threads": 1, "git_commit": "0123456789"}
    text = cost_markdown({"rows": rows, "command": "python benchmarks/bench_forward_equivalents.py", "environment": env})
    table = [ln for ln in text.splitlines() if ln.startswith("| smallvgg")]
    assert len(table) == 2
    assert "| 30.8 | 31.8 |" in table[0] and "| 1.50 |" in table[0]
    assert "paper (timed on 1 of 32)" in table[1] and table[1].endswith("| - |")
    assert "`python benchmarks/bench_forward_equivalents.py`" in text and "commit `0123456`" in text
