#!/usr/bin/env python
"""Train the embedded SmallVGG (or SmallResNet) on synthetic shapes and write its checkpoint.

Writes ``invnb/data/embedded_vgg.pt`` (a state dict) and ``invnb/data/embedded_vgg.json``
(seed, command, data and training parameters, accuracies, timing); with
``--model smallresnet``, ``invnb/data/embedded_resnet.pt`` and ``.json`` (the
ResNet keeps its BatchNorm layers; the layer stack folds them). Training
is deterministic under ``--seed`` for a fixed ``--threads`` and torch build:
all data comes from :func:`invnb.datasets.make_shapes` with seeds derived
from ``--seed``, and shuffling, augmentation and initialisation use seeded
generators.

Usage: the defaults reproduce the shipped checkpoint bit for bit (its JSON
records ``--train-size 10000 --epochs 8 --batch-norm --lr 3e-3 --threads 2
--no-progress``, all defaults but the last); a rerun took 359 s wall, 708 s CPU on a
shared 2-core machine::

    python scripts/train_embedded.py

An interrupted run (SIGTERM, Ctrl-C, a kill) resumes from the state saved in
``runs/train_embedded/`` (every 100 steps, and at once on SIGTERM) when started
again with the same arguments; the result is bit-identical.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import shlex
import signal
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from invnb.datasets import (  # noqa: E402
    CLASS_NAMES,
    IMAGE_SIZE,
    MEAN,
    STD,
    make_shapes,
    normalize,
    sha256sum,  # noqa: E402
)
from invnb.models import SmallResNet, SmallVGG  # noqa: E402

CHUNK = 1000  # images per make_shapes call (each chunk has its own seed)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=("smallvgg", "smallresnet"), default="smallvgg",
                   help="smallvgg (default: the embedded SmallVGG) or smallresnet (invnb.models.small_resnet)")
    p.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    p.add_argument("--train-size", type=int, default=10000, help="training images (multiple of 1000)")
    p.add_argument("--val-size", type=int, default=1000, help="validation images")
    p.add_argument("--test-size", type=int, default=2000, help="test images on a fresh seed")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate of AdamW")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--dropout", type=float, default=0.3, help="classifier dropout")
    p.add_argument("--hidden", type=int, default=128, help="width of the hidden Linear layers")
    p.add_argument("--distractor-prob", type=float, default=0.3)
    p.add_argument("--batch-norm", action=argparse.BooleanOptionalAction, default=True,
                   help="train with BatchNorm after each conv, then fold it into the convs "
                        "(default; converges several times faster than the plain network)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--out", type=Path, default=None,
                   help="checkpoint (default invnb/data/embedded_vgg.pt, with --model smallresnet "
                        "invnb/data/embedded_resnet.pt)")
    p.add_argument("--no-progress", action="store_true",
                   help="hide progress bars (print a line every 100 steps instead)")
    p.add_argument("--resume-dir", type=Path, default=None,
                   help="where the end-of-epoch training state is kept, so an interrupted run "
                        "resumes where it stopped (bit-identical result); deleted on success "
                        "(default runs/train_embedded, with --model smallresnet runs/train_embedded_resnet)")
    args = p.parse_args(argv)
    resnet = args.model == "smallresnet"
    if args.out is None:
        args.out = REPO / "invnb" / "data" / ("embedded_resnet.pt" if resnet else "embedded_vgg.pt")
    if args.resume_dir is None:
        args.resume_dir = REPO / "runs" / ("train_embedded_resnet" if resnet else "train_embedded")
    if args.train_size < CHUNK or args.train_size % CHUNK:
        p.error(f"--train-size must be a positive multiple of {CHUNK}, got {args.train_size}")
    for name in ("val_size", "test_size", "epochs", "batch_size", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def seeds_for(seed: int) -> dict:
    """Data seeds derived from the master seed; disjoint for different roles.

    Seeds ``>= 10**6`` are never used for training or validation, so tests and
    notebooks can draw fresh images there.
    """
    base = 1000 * (seed + 1)
    return {
        "train": lambda chunks: [base + i for i in range(chunks)],
        "val": base + 999,
        "test": 10**6 + seed,
    }


def generate(n: int, seeds: list[int], distractor_prob: float, progress: bool):
    """Concatenate ``make_shapes`` chunks; returns (images, labels, has_distractor).

    Images are stored as uint8 (like any 8-bit image file) to keep the
    training pool small: 24000 images take 0.3 GB instead of 1.2 GB.
    """
    images, labels, dis = [], [], []
    for i, s in enumerate(tqdm(seeds, desc="generate", disable=not progress, leave=False)):
        d = make_shapes(min(CHUNK, n - i * CHUNK), seed=s, distractor_prob=distractor_prob)
        images.append(to_uint8(d.images))
        labels.append(d.labels)
        dis.append(d.has_distractor)
    return torch.cat(images), torch.cat(labels), torch.cat(dis)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    return (images * 255).round().to(torch.uint8)


def to_float(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 255


def dihedral(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random per-image flips and transposes (the 8 symmetries of the square).

    Every shape class is closed under them, so labels are unchanged.
    """
    n = x.shape[0]
    bits = torch.rand((3, n), generator=gen) < 0.5
    x = torch.where(bits[0, :, None, None, None], x.transpose(-1, -2), x)
    x = torch.where(bits[1, :, None, None, None], x.flip(-1), x)
    x = torch.where(bits[2, :, None, None, None], x.flip(-2), x)
    return x


@torch.no_grad()
def accuracy(model, images, labels, convert=None, batch_size=500) -> tuple[float, torch.Tensor]:
    model.eval()
    convert = convert or (lambda x: x)
    pred = torch.cat([
        model(normalize(convert(images[i:i + batch_size]))).argmax(1)
        for i in range(0, len(images), batch_size)
    ])
    correct = pred == labels
    return correct.float().mean().item(), correct


def main(argv=None) -> dict:
    args = parse_args(argv)
    start = time.perf_counter()
    cpu_start = time.process_time()
    progress = not args.no_progress
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(args.seed)
    # On SIGTERM, finish the current step, save the state and exit.
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))

    seeds = seeds_for(args.seed)
    train_seeds = seeds["train"](args.train_size // CHUNK)
    # The training pool is cached next to the resume state, so that a resumed
    # run skips regenerating it (it is deleted with the state on success).
    pool_file = args.resume_dir / f"pool_seed{args.seed}_{args.train_size}_{args.distractor_prob}.pt"
    if pool_file.is_file():
        x_train, y_train = torch.load(pool_file, weights_only=True)
    else:
        x_train, y_train, _ = generate(args.train_size, train_seeds, args.distractor_prob, progress)
        args.resume_dir.mkdir(parents=True, exist_ok=True)
        torch.save((x_train, y_train), pool_file.with_suffix(".tmp"))
        pool_file.with_suffix(".tmp").replace(pool_file)
    val = make_shapes(args.val_size, seed=seeds["val"], distractor_prob=args.distractor_prob)

    if args.model == "smallresnet":
        model = SmallResNet(num_classes=len(CLASS_NAMES))
    else:
        model = SmallVGG(num_classes=len(CLASS_NAMES), hidden=args.hidden, dropout=args.dropout,
                         batch_norm=args.batch_norm)
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = math.ceil(args.train_size / args.batch_size)
    total = args.epochs * steps_per_epoch
    warmup = max(1, steps_per_epoch // 4)

    def lr_at(step: int) -> float:
        # Linear warm-up for a quarter epoch, then cosine decay to 0.
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    gen = torch.Generator().manual_seed(args.seed)
    history: list[dict] = []
    # Resume from the state an interrupted run (same arguments) left, if any:
    # it is saved every 100 steps, at the end of each epoch, and on SIGTERM.
    config = {k: str(v) for k, v in vars(args).items()
              if k not in ("no_progress", "resume_dir", "out") and (k != "model" or v != "smallvgg")}
    state_file = args.resume_dir / f"state_seed{args.seed}.pt"
    first_epoch, first_step, order, sums = 0, 0, None, (0, 0, 0.0)
    resumed, time_before, cpu_before = 0, 0.0, 0.0
    if state_file.is_file():
        state = torch.load(state_file, weights_only=True)
        if state["config"] == config:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["opt"])
            sched.load_state_dict(state["sched"])
            gen.set_state(state["gen"])
            torch.set_rng_state(state["torch_rng"])
            history = state["history"]
            first_epoch, first_step = state["epoch"], state.get("step", 0)
            order, sums = state.get("order"), tuple(state.get("sums", sums))
            resumed = state["resumed"] + 1
            time_before, cpu_before = state["elapsed"], state["cpu"]
            print(f"resuming at epoch {first_epoch + 1} step {first_step} from {state_file}", flush=True)
        else:
            print(f"ignoring {state_file}: it was made with other arguments", flush=True)

    def save_state(epoch, step, order, sums):
        args.resume_dir.mkdir(parents=True, exist_ok=True)
        tmp = state_file.with_suffix(".tmp")
        torch.save({
            "config": config, "epoch": epoch, "step": step, "order": order, "sums": list(sums),
            "resumed": resumed, "history": history,
            "model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
            "gen": gen.get_state(), "torch_rng": torch.get_rng_state(),
            "elapsed": time_before + time.perf_counter() - start,
            "cpu": cpu_before + time.process_time() - cpu_start,
        }, tmp)
        tmp.replace(state_file)

    for epoch in range(first_epoch, args.epochs):
        model.train()
        if order is None:
            order = torch.randperm(args.train_size, generator=gen)
        seen, correct, loss_sum = sums
        bar = tqdm(range(first_step, steps_per_epoch), desc=f"epoch {epoch + 1}/{args.epochs}",
                   disable=not progress, leave=False)
        for b in bar:
            idx = order[b * args.batch_size:(b + 1) * args.batch_size]
            # channels_last: ~15% faster convolutions on CPU, same results.
            x = normalize(dihedral(to_float(x_train[idx]), gen)).contiguous(memory_format=torch.channels_last)
            y = y_train[idx]
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            seen += len(idx)
            correct += (logits.argmax(1) == y).sum().item()
            loss_sum += loss.item() * len(idx)
            if b % 50 == 0:
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
            if (b + 1) % 100 == 0 or stop:
                save_state(epoch, b + 1, order, (seen, correct, loss_sum))
                if stop:
                    print(f"terminated at epoch {epoch + 1} step {b + 1}; run the same command "
                          "again to resume", flush=True)
                    sys.exit(128 + stop[0])
                if not progress:
                    print(f"epoch {epoch + 1} step {b + 1}/{steps_per_epoch} loss {loss_sum / seen:.3f} "
                          f"acc {correct / seen:.3f} [{time_before + time.perf_counter() - start:.0f} s]",
                          flush=True)
        val_acc, _ = accuracy(model, val.images, val.labels)
        history.append({
            "epoch": epoch + 1,
            "train_loss": round(loss_sum / seen, 5),
            "train_acc": round(correct / seen, 5),
            "val_acc": round(val_acc, 5),
        })
        print(json.dumps(history[-1]), flush=True)
        first_step, order, sums = 0, None, (0, 0, 0.0)
        save_state(epoch + 1, 0, None, sums)
    train_time = time_before + time.perf_counter() - start

    # Ship a plain conv/ReLU/pool network: fold BatchNorm (if any) into the convs.
    # The ResNet ships with its BatchNorm layers: check that the layer stack's folding matches.
    trained = model.eval()
    if args.model == "smallresnet":
        from invnb.inverse import LayerStack
        folded = LayerStack(trained)
    else:
        model = folded = trained.without_batchnorm()
    with torch.no_grad():
        x_check = normalize(val.images[:256])
        ref = trained(x_check)
        fold_error = ((folded(x_check) - ref).abs().max() / ref.abs().max()).item()
    if fold_error > 1e-4:
        raise RuntimeError(f"folding BatchNorm changed the logits (relative error {fold_error:.2e})")

    # Accuracy on the whole training pool in eval mode (no augmentation).
    train_acc, _ = accuracy(model, x_train, y_train, to_float)
    test = make_shapes(args.test_size, seed=seeds["test"], distractor_prob=args.distractor_prob)
    test_acc, test_correct = accuracy(model, test.images, test.labels)
    dis = test.has_distractor
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.out)
    digest = sha256sum(args.out)
    # The file hash depends on the file name (torch.save's archive prefix);
    # this one only on the weights, to compare runs.
    weights_digest = hashlib.sha256()
    for key, value in model.state_dict().items():
        weights_digest.update(key.encode())
        weights_digest.update(value.contiguous().numpy().tobytes())

    area = test.masks.float().mean(dim=(1, 2))
    record = {
        "seed": args.seed,
        "command": shlex.join(["python", "scripts/train_embedded.py",
                               *(sys.argv[1:] if argv is None else argv)]),
        "checkpoint": args.out.name,
        "sha256": digest,
        "weights_sha256": weights_digest.hexdigest(),
        **({"model": "SmallResNet", "module": "invnb.models.small_resnet"} if args.model == "smallresnet" else {}),
        "architecture": model.architecture(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "class_names": list(CLASS_NAMES),
        "normalization": {"mean": list(MEAN), "std": list(STD)},
        "data": {
            "generator": "invnb.datasets.make_shapes",
            "image_size": IMAGE_SIZE,
            "distractor_prob": args.distractor_prob,
            "train_size": args.train_size,
            "train_seeds": train_seeds,
            "chunk": CHUNK,
            "val_size": args.val_size,
            "val_seed": seeds["val"],
            "test_size": args.test_size,
            "test_seed": seeds["test"],
            "storage": "training images quantised to uint8",
            "augmentation": "random per-image transpose, horizontal and vertical flips",
        },
        "training": {
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "optimizer": "AdamW",
            "lr": args.lr,
            "weight_decay": args.weight_decay,
            "schedule": "linear warm-up (1/4 epoch), cosine decay to 0, per step",
            "loss": "cross-entropy",
            "threads": args.threads,
            "deterministic_algorithms": True,
            "batch_norm": True if args.model == "smallresnet" else args.batch_norm,
            "batch_norm_folded_rel_error": fold_error,
            "history": history,
        },
        "accuracy": {
            "train": round(train_acc, 5),
            "val": history[-1]["val_acc"],
            "test": round(test_acc, 5),
            "test_with_distractor": round(test_correct[dis].float().mean().item(), 5),
            "test_without_distractor": round(test_correct[~dis].float().mean().item(), 5),
            "test_n_with_distractor": int(dis.sum()),
            "test_n_without_distractor": int((~dis).sum()),
        },
        "test_object_area": {
            "mean_fraction": round(area.mean().item(), 5),
            "min_fraction": round(area.min().item(), 5),
            "max_fraction": round(area.max().item(), 5),
        },
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "wall_time_s": round(time_before + time.perf_counter() - start, 1),
        "train_time_s": round(train_time, 1),
        "cpu_time_s": round(cpu_before + time.process_time() - cpu_start, 1),
        "resumed": resumed,
    }
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    state_file.unlink(missing_ok=True)
    pool_file.unlink(missing_ok=True)
    print(json.dumps(record["accuracy"], indent=2))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) and {args.out.with_suffix('.json')}"
          f" in {record['wall_time_s']} s")
    return record


if __name__ == "__main__":
    main()
