"""How much an image's inverse depends on its batch, on a CPU and (if present) CUDA.

Inverts the same synthetic images (embedded model, default setting) one at a
time and together, with and without ``batch_invariant``, on each device, and
prints per image the largest absolute difference of the max-normalised maps
against the CPU's one-at-a-time run, whether the same auto weight was chosen,
and the wall time. TF32 is off inside ``invert``; ``--tf32`` also shows a
batched CUDA run with it on (bypassing that guard)::

    python benchmarks/bench_batch_independence.py --n-images 8
"""

import argparse
import time

import torch

from invnb.datasets import make_shapes, normalize
from invnb.inverse import LayerwiseInverse
from invnb.models import load_embedded_model


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-images", type=int, default=8)
    ap.add_argument("--seed", type=int, default=515151)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tf32", action="store_true", help="also a batched CUDA run with TF32 on")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_embedded_model().eval()
    x = normalize(make_shapes(args.n_images, seed=args.seed).images)

    def run(device, **kw):
        inv = LayerwiseInverse(model.to(device), **kw)
        xd = x.to(device)
        inv.invert(xd[:1])  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        res = inv.invert(xd)
        if device == "cuda":
            torch.cuda.synchronize()
        return res, time.perf_counter() - t

    ref, sec = run("cpu", batch_size=1)
    runs = [("cpu, one at a time", ref, sec)]
    configs = [("cpu", dict(), "cpu, batched (batch_invariant)"),
               ("cpu", dict(batch_invariant=False), "cpu, batched, batch_invariant=False")]
    if torch.cuda.is_available():
        configs += [("cuda", dict(batch_size=1), "cuda, one at a time"),
                    ("cuda", dict(), "cuda, batched (default: batch_invariant=False)"),
                    ("cuda", dict(batch_invariant=True), "cuda, batched, batch_invariant=True")]
    for device, kw, name in configs:
        res, sec = run(device, **kw)
        runs.append((name, res, sec))
    if torch.cuda.is_available() and args.tf32:
        torch.backends.cudnn.allow_tf32 = True
        inv = LayerwiseInverse(model.to("cuda"))
        t = time.perf_counter()
        res = inv._invert(x.to("cuda"), None)  # no TF32 guard
        runs.append(("cuda, batched, TF32 on", res, time.perf_counter() - t))
    for name, res, sec in runs:
        gap = (res.attribution.cpu() - ref.attribution).flatten(1).abs().amax(dim=1)
        same = torch.equal(res.mask_weight.cpu(), ref.mask_weight)
        print(f"{name:48s} {sec / len(x):6.3f} s/img  same weights {same!s:5s}  max gap {gap.max():.2e}  "
              f"per image {' '.join(f'{v:.0e}' for v in gap.tolist())}")


if __name__ == "__main__":
    main()
