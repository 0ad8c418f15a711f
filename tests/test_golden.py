"""Golden outputs: the numbers a refactoring must not move.

``tests/golden/*.npz`` and ``tests/golden/benchmark/*.json`` were written by
``python tests/golden/cases.py`` and a small benchmark run (command and machine
in ``tests/golden/provenance.json``). On a machine with the same CPU model and
torch version they must agree to 1e-6; elsewhere a convolution may round
differently and the iterative solvers amplify that, so the tolerance is 1e-3.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

GOLDEN = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(GOLDEN))
import cases  # noqa: E402

PROVENANCE = json.loads((GOLDEN / "provenance.json").read_text())


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    return text.split("model name")[1].split("\n")[0].strip(": \t") if "model name" in text else ""


SAME_MACHINE = _cpu_model() == PROVENANCE["cpu"].strip(": \t") and torch.__version__ == PROVENANCE["torch"]
TOL = 1e-6 if SAME_MACHINE else 1e-3


def _close(name, got, want):
    scale = max(1.0, float(np.abs(want).max()))
    err = float(np.abs(np.asarray(got, dtype=np.float64) - want).max()) / scale
    assert err <= TOL, f"{name}: max difference {err:.3g} (relative to max(1, |golden|)) > {TOL:g}"


@pytest.mark.parametrize("case", sorted(cases.CASES))
def test_golden_arrays(case):
    torch.set_num_threads(1)
    want = np.load(GOLDEN / f"{case}.npz")
    got = cases.CASES[case]()
    assert sorted(got) == sorted(want.files)
    for key in want.files:
        assert got[key].shape == want[key].shape, key
        _close(f"{case}/{key}", got[key], want[key])


NOT_COMPARED = ("seconds", "wall_seconds")


def _numbers(rows):
    out = {}
    for row in rows:
        for k, v in row.items():
            if isinstance(v, (int, float)) and not any(s in k for s in NOT_COMPARED) and k != "source":
                out[(row["method"], row.get("mode", ""), str(row.get("param", "")), k)] = float(v)
    return out


def test_golden_benchmark(tmp_path):
    """The small benchmark run of provenance.json, rerun through the package, gives the same table."""
    from invnb.eval.benchmark import BenchmarkConfig, run_benchmark

    torch.set_num_threads(1)
    config = BenchmarkConfig(n_images=4, batch_size=2, rise_masks=100, ig_steps=8, ep_steps=5)
    summary = run_benchmark(config, tmp_path, mask_weights=(0.5, 2.0), progress=False)
    got_files = {"results.json": summary.rows, "tradeoff.json": summary.trade}
    for name, rows in got_files.items():
        want = _numbers(json.loads((GOLDEN / "benchmark" / name).read_text())["rows"])
        got = _numbers(rows)
        missing = sorted(set(want) - set(got))
        assert not missing, f"{name}: rows or columns lost: {missing[:5]}"
        for key, w in want.items():
            g = got[key]
            assert (np.isnan(g) and np.isnan(w)) or abs(g - w) <= TOL * max(1.0, abs(w)), (name, key, g, w)
