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
