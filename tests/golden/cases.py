"""The golden cases: outputs pinned before a refactoring, checked after it.

Each case returns a dict of numpy arrays. ``python tests/golden/cases.py``
writes them to ``tests/golden/<case>.npz``; ``tests/test_golden.py``
recomputes them and compares.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
N_INVERSE = 16   # held-out images for the default and paper inverses
N_BASELINE = 4   # held-out images for every baseline
CHIRP_SIZE = 64


def _held_out(n):
    from invnb.datasets import HELD_OUT_SEED, make_shapes, normalize

    data = make_shapes(n, seed=HELD_OUT_SEED)
    return data, normalize(data.images)


def inverse_maps() -> dict:
    """Default and paper inverses of the embedded model on 16 held-out images."""
    from invnb.inverse import LayerwiseInverse
    from invnb.models import load_embedded_model

    model = load_embedded_model()
    _, x = _held_out(N_INVERSE)
    out = {}
    for name, inv in (("default", LayerwiseInverse(model)), ("paper", LayerwiseInverse.paper(model))):
        res = inv.invert(x)
        out[f"{name}_attribution"] = res.attribution.numpy()
        out[f"{name}_input"] = res.input.numpy()
        out[f"{name}_mask_weight"] = res.mask_weight.numpy()
    return out


def baseline_maps() -> dict:
    """Every baseline's raw map on 4 held-out images (the benchmark's settings, smaller where slow)."""
    from invnb.attribution import available_methods, make_method
    from invnb.models import load_embedded_model

    model = load_embedded_model()
    _, x = _held_out(N_BASELINE)
    kw = {"rise": {"n_masks": 200, "seed": 0, "batch_size": 100}, "integrated_gradients": {"n_steps": 16},
          "random": {"seed": 0}, "extremal_perturbation": {"steps": 10}}
    out = {}
    for name in available_methods():
        if name.startswith("inverse"):
            continue
        torch.manual_seed(0)
        out[name] = make_method(name, model, **kw.get(name, {})).attribute(x).numpy()
    return out


def vdsr_chirp() -> dict:
    """The embedded VDSR inverted on the 64-px chirp at x2 (default and paper settings)."""
    from invnb.inverse import LayerwiseInverse
    from invnb.models import load_embedded_vdsr
    from invnb.sr import invert_chirp

    model = load_embedded_vdsr()
    out = {}
    for setting, name in (("default", "vdsr"), ("paper", "vdsr_paper")):
        inverse = LayerwiseInverse.from_setting(model, name, keep_features=False)
        r = invert_chirp(model, 2, size=CHIRP_SIZE, inverse=inverse)
        out[f"{setting}_x_hat"] = np.asarray(r.x_hat, dtype=np.float64)
        out[f"{setting}_y_hat"] = np.asarray(r.y_hat, dtype=np.float64)
    return out


CASES = {"inverse_maps": inverse_maps, "baseline_maps": baseline_maps, "vdsr_chirp": vdsr_chirp}


def main(names) -> None:
    torch.set_num_threads(1)
    for name in names or CASES:
        arrays = CASES[name]()
        np.savez_compressed(HERE / f"{name}.npz", **arrays)
        print(name, {k: v.shape for k, v in arrays.items()})


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[1]))
    main(sys.argv[1:])
