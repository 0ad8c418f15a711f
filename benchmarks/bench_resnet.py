"""The default inverse on the embedded small ResNet (and, for comparison, the embedded SmallVGG).

On development images (``make_shapes(n, seed=777001)``, never the held-out
benchmark seeds 2,000,000+), one default inverse per image; per model:

* re-identification: the model's top-1 class on the inverse input equals the
  explained (predicted) class, and the inverse input's amount of activation
  (`invnb.eval.amount_of_activation`), with the object's own mask as a
  reference kept input (``x * mask``);
* mass in the object and the pointing game (tie tolerance
  `invnb.eval.POINTING_RTOL`) of the map;
* time: the inverse's wall and CPU time per image, and in forward-equivalents
  (the inverse's wall time over the model's forward pass on the same batch,
  the shortest of 10; and the same ratio of CPU times, less sensitive to other jobs);
* with ``--sanity``: the model-randomisation check (every layer re-initialised,
  `invnb.eval.randomise_layers`): Spearman correlation of the trained and
  randomised models' maps and the randomised maps' mass in the object.

``--block-relu`` compares ways of treating the ReLUs *inside* a residual branch in
the block's data term (see ``SwitchedInverse``): ``forward`` (the package's: the
block as the network computes it), ``switches`` (each inner ReLU replaced by the
forward pass's 0/1 switch, so the block is affine in its input), ``gated`` (the ReLU
kept, and zero where the forward pass had it off)::

    python benchmarks/bench_resnet.py --n-images 100 --models resnet vgg --sanity
    python benchmarks/bench_resnet.py --n-images 100 --models resnet --block-relu forward switches gated

``--stem unpooled`` splits the ResNet's stem (`invnb.inverse.PooledConv`) back into its conv,
ReLU and max pool, so the image-level conv is solved against the max-unpooled target as in a
plain chain (the comparison that made the stem one layer)::

    python benchmarks/bench_resnet.py --n-images 20 --models resnet --stem pooled unpooled

``--models resnet18`` times the default inverse on torchvision's ResNet-18 with random weights
(BatchNorm statistics randomised, seed 0) at ``--size`` px (forward-equivalents only: its maps
mean nothing)::

    python benchmarks/bench_resnet.py --n-images 4 --models resnet18 --size 64

``--auto-max-iter`` sets the iterations per layer of the candidates' walks below the margin layer
(``LayerwiseInverse.auto_max_iter``; the default: `invnb.inverse.settings.RESIDUAL_AUTO_MAX_ITER`
on a residual network). Each row also reports ``spearman_vs_second_class``: the rank correlation
of the map of the predicted class with the map of the second-ranked class (near 1: the map does
not depend on the explained class)::

    python benchmarks/bench_resnet.py --n-images 100 --models resnet vgg --auto-max-iter 4 8 20 40
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from torch import nn

from invnb.eval import POINTING_RTOL, amount_of_activation, mass_in_mask, pointing_game
from invnb.eval.sanity import parametric_layers, randomise_layers, spearman
from invnb.inverse import LayerwiseInverse, PooledConv, ResidualSum

DEV_SEED = 777001


class SwitchedSum(ResidualSum):
    """A residual sum whose inner ReLUs are replaced by the forward pass's switches at `below` (one image).

    ``mode="switches"``: each inner ReLU becomes multiplication by ``1[pre-activation of the forward
    pass > 0]`` (the block is affine in its input); ``"gated"``: ``relu(.)`` times that switch.
    """

    def __init__(self, block: ResidualSum, below: torch.Tensor, mode: str):
        super().__init__(block.branch, block.shortcut)
        self.mode = mode
        self.switches = []
        with torch.no_grad():
            for part in (self.branch, self.shortcut):
                h, sw = below, []
                for layer in part:
                    if isinstance(layer, nn.ReLU):
                        sw.append((h > 0).to(h.dtype))
                    h = layer(h)
                self.switches.append(sw)

    def _path(self, part, switches, x):
        it = iter(switches)
        for layer in part:
            if isinstance(layer, nn.ReLU):
                s = next(it)
                x = x * s if self.mode == "switches" else torch.relu(x) * s
            else:
                x = layer(x)
        return x

    def forward(self, x):
        return self._path(self.branch, self.switches[0], x) + self._path(self.shortcut, self.switches[1], x)


class SwitchedInverse(LayerwiseInverse):
    """`LayerwiseInverse` with another treatment of the residual branches' inner ReLUs (one image at a time)."""

    def __init__(self, model, block_relu: str, **kw):
        super().__init__(model, **kw)
        self.block_relu = block_relu

    def _solve_layer(self, k, layer, t, below, above, classes, lam, unpooled=False, x0=None):
        if not isinstance(layer, ResidualSum) or self.block_relu == "forward":
            return super()._solve_layer(k, layer, t, below, above, classes, lam, unpooled, x0=x0)
        xs, res = [], None
        for i in range(below.shape[0]):
            li = lam[i:i + 1] if isinstance(lam, torch.Tensor) and lam.dim() else lam
            x, r = super()._solve_layer(k, SwitchedSum(layer, below[i:i + 1], self.block_relu), t[i:i + 1],
                                        below[i:i + 1], above[i:i + 1], None, li, unpooled,
                                        x0=None if x0 is None else x0[i:i + 1])
            xs.append(x)
            if res is None:
                res = r
                its, costs = [r.iterations], [r.cost]
            else:
                its.append(r.iterations)
                costs.append(r.cost)
        res.x, res.iterations, res.cost = torch.cat(xs), torch.cat(its), torch.cat(costs)
        return res.x, res


def unpool_stem(inv: LayerwiseInverse) -> LayerwiseInverse:
    """Replace the stack's `PooledConv` layers by their conv, ReLU and max pool (in place)."""
    layers, names = [], []
    for layer, name in zip(inv.stack.layers, inv.stack.names):
        if isinstance(layer, PooledConv):
            layers += [layer.conv, layer.relu, layer.pool]
            names += name.split("+")
        else:
            layers.append(layer)
            names.append(name)
    inv.stack.layers = nn.ModuleList(layers)
    inv.stack.names = names
    return inv


def load(name: str, checkpoint=None):
    if name == "resnet18":
        import torchvision

        torch.manual_seed(0)
        model = torchvision.models.resnet18(weights=None).eval()
        g = torch.Generator().manual_seed(1)
        for m in model.modules():  # BatchNorm statistics of a trained network's magnitude, not the identity
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
        return model
    from invnb.models import load_embedded

    return load_embedded("smallresnet" if name == "resnet" else "smallvgg", checkpoint if name == "resnet" else None)


def forward_seconds(model, x, repeats: int = 10) -> tuple[float, float]:
    """Shortest wall and CPU seconds of one forward pass of the batch over `repeats` (the least
    disturbed by other jobs on a shared machine)."""
    walls, cpus = [], []
    with torch.no_grad():
        for _ in range(repeats):
            t, c = time.perf_counter(), time.process_time()
            model(x)
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
    return min(walls), min(cpus)


def inner_box_excess(inv, x, res) -> dict:
    """Per residual sum: the share of the inverse's inner activations (after each inner ReLU of the
    branch, evaluated at the inverse feature of the block's input) that lies above the forward
    pass's, ``sum relu(h(x_hat) - max(0, h(x_l))) / sum h(x_hat)``: what the (not imposed) box of the
    inner layers would have cut."""
    acts = inv.record(x)
    out = {}
    with torch.no_grad():
        for k, (layer, name) in enumerate(zip(inv.stack.layers, inv.stack.names)):
            if not isinstance(layer, ResidualSum) or res.features[k] is None:
                continue
            h_hat, h_fwd, excess, total = res.features[k], acts[k], 0.0, 0.0
            for sub in layer.branch:
                h_hat, h_fwd = sub(h_hat), sub(h_fwd)
                if isinstance(sub, nn.ReLU):
                    excess += float((h_hat - h_fwd.clamp(min=0)).clamp(min=0).sum())
                    total += float(h_hat.sum())
            out[name] = excess / max(total, 1e-30)
    return out


def evaluate(model, inv, data, x, timing_only: bool = False) -> dict:
    t0, c0 = time.perf_counter(), time.process_time()
    res = inv.invert(x)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    fwd, fwd_cpu = forward_seconds(model, x)
    if timing_only:
        return {"n": len(x), "size": x.shape[-1], "seconds_per_image_wall": wall / len(x),
                "seconds_per_image_cpu": cpu / len(x), "forward_seconds_batch": fwd,
                "forward_equivalents": wall / fwd, "forward_equivalents_cpu": cpu / fwd_cpu,
                "kept_class": float(res.kept_class.float().mean()),
                "iterations_per_layer": {s.name: float(s.iterations.float().mean()) for s in res.stats}}
    excess = inner_box_excess(inv, x, res)
    with torch.no_grad():
        kept = model(res.input).argmax(1) == res.classes
        second = model(x).topk(2, dim=1).indices[:, 1]
    other = inv.invert(x, second).attribution
    obj = x * data.masks[:, None].to(x.dtype)
    weights = {str(w): int((res.mask_weight == w).sum()) for w in sorted(set(res.mask_weight.tolist()))}
    return {
        "n": len(x),
        "accuracy": float((res.classes == data.labels).float().mean()),
        "reid_top1": float(kept.float().mean()),
        "amount": float(amount_of_activation(res.input, x).mean()),
        "amount_object_mask": float(amount_of_activation(obj, x).mean()),
        "mass_in_object": float(mass_in_mask(res.attribution, data.masks).mean()),
        "pointing": float(pointing_game(res.attribution, data.masks, rtol=POINTING_RTOL).mean()),
        "failed": int(res.failed.sum()),
        "spearman_vs_second_class": float(np.mean(spearman(res.attribution.numpy(), other.numpy()))),
        "chosen_weights": weights,
        "seconds_per_image_wall": wall / len(x),
        "seconds_per_image_cpu": cpu / len(x),
        "forward_seconds_batch": fwd,
        "forward_equivalents": wall / fwd,
        "forward_equivalents_cpu": cpu / fwd_cpu,
        "iterations_per_layer": {s.name: float(s.iterations.float().mean()) for s in res.stats},
        "inner_activation_above_forward": excess,
        "_result": res,
    }


def sanity(model, inv_factory, data, x, trained, seed: int = 0) -> dict:
    """Every layer re-initialised: the inverse's maps (and occlusion's) on the trained and random model.

    Also the same inverse inputs' other maps (``abs``: ``sum_c |x_hat|``; ``ratio``: the paper's),
    and the input's own magnitude ``sum_c x^2`` (no model at all) against the trained map, which
    says how much of a map's ranking the factor ``|x|`` of the default map brings by itself.
    """
    from invnb.attribution import make_method
    from invnb.inverse import attribution_map

    rnd = randomise_layers(model, parametric_layers(model), seed=seed)
    res = inv_factory(rnd).invert(x)
    out = {"spearman_trained_vs_random": float(np.mean(spearman(trained.attribution.numpy(),
                                                                res.attribution.numpy()))),
           "mass_random": float(mass_in_mask(res.attribution, data.masks).mean()),
           "pointing_random": float(pointing_game(res.attribution, data.masks, rtol=POINTING_RTOL).mean()),
           "failed_random": int(res.failed.sum()),
           "random_model_classes": len(set(res.classes.tolist()))}
    for kind in ("abs", "ratio"):
        a, b = attribution_map(trained.input, x, kind), attribution_map(res.input, x, kind)
        out[f"spearman_{kind}_map"] = float(np.mean(spearman(a.numpy(), b.numpy())))
    own = (x * x).sum(dim=1)
    out["spearman_trained_map_vs_input_magnitude"] = float(np.mean(spearman(trained.attribution.numpy(),
                                                                            own.numpy())))
    out["spearman_random_map_vs_input_magnitude"] = float(np.mean(spearman(res.attribution.numpy(), own.numpy())))
    occ = {}
    for tag, m in (("trained", model), ("random", rnd)):
        method = make_method("occlusion", m, window=8, stride=4)
        with torch.no_grad():
            occ[tag] = method.attribute(x, target=m(x).argmax(1)).detach().float()
    out["occlusion_spearman_trained_vs_random"] = float(np.mean(spearman(occ["trained"].numpy(),
                                                                         occ["random"].numpy())))
    out["occlusion_mass_trained"] = float(mass_in_mask(occ["trained"], data.masks).mean())
    out["occlusion_mass_random"] = float(mass_in_mask(occ["random"], data.masks).mean())
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-images", type=int, default=100)
    ap.add_argument("--seed", type=int, default=DEV_SEED, help="development images (not the benchmark's)")
    ap.add_argument("--models", nargs="+", default=["resnet", "vgg"], choices=["resnet", "vgg", "resnet18"])
    ap.add_argument("--size", type=int, default=64, help="image size of the resnet18 timing (default 64)")
    ap.add_argument("--block-relu", nargs="+", default=["forward"], choices=["forward", "switches", "gated"])
    ap.add_argument("--stem", nargs="+", default=["pooled"], choices=["pooled", "unpooled"])
    ap.add_argument("--sanity", action="store_true", help="also the model-randomisation check")
    ap.add_argument("--auto-max-iter", nargs="+", type=int, default=[None],
                    help="iterations per layer below the margin layer (default: the package's)")
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="write the numbers here")
    ap.add_argument("--resnet-checkpoint", help="another SmallResNet state dict (its JSON beside it)")
    args = ap.parse_args(argv)
    if args.seed >= 2_000_000:
        ap.error("seeds from 2,000,000 are the held-out benchmark's; use development seeds")
    torch.set_num_threads(args.threads)
    from invnb.datasets import make_shapes, normalize

    data = make_shapes(args.n_images, seed=args.seed)
    x = normalize(data.images)
    out = {}
    for name in args.models:
        if name == "resnet18":
            model = load(name)
            xs = torch.nn.functional.interpolate(x, size=(args.size, args.size), mode="bilinear", align_corners=False)
            row = evaluate(model, LayerwiseInverse(model, batch_size=args.batch_size), data, xs, timing_only=True)
            out[f"resnet18@{args.size}"] = row
            print(f"resnet18@{args.size}", json.dumps({k: (round(v, 4) if isinstance(v, float) else v)
                                                       for k, v in row.items()}), flush=True)
            continue
        model = load(name, args.resnet_checkpoint)
        variants = [(b, st) for b in args.block_relu for st in args.stem] if name == "resnet" else [("forward", "")]
        for (mode, stem), iters in [(v, it) for v in variants for it in args.auto_max_iter]:
            def factory(m, mode=mode, stem=stem, iters=iters):
                inv = SwitchedInverse(m, mode, batch_size=args.batch_size)
                if iters is not None:
                    inv.auto_max_iter = iters
                return unpool_stem(inv) if stem == "unpooled" else inv
            row = evaluate(model, factory(model), data, x)
            res = row.pop("_result")
            if args.sanity:
                row.update(sanity(model, factory, data, x, res))
            key = f"{name}:{mode}:{stem}" if name == "resnet" else name
            key += "" if iters is None else f":iters{iters}"
            out[key] = row
            print(key, json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}),
                  flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
