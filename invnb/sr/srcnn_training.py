"""Training the embedded SRCNNs (:func:`invnb.models.load_embedded_srcnn`) on public-domain photographs.

One SRCNN 9-5-5 per scale, as in the paper (a single network for x2, x3 and x4 together, as VDSR is
trained, over-sharpens at x2: 33.30 dB on Set5 against bicubic's 33.69). Training pairs are made exactly
as every SR test sample (:func:`invnb.sr.make_sr_sample`: modcrop, MATLAB ``rgb2ycbcr``, MATLAB bicubic
down- and up-scaling, Y channel in [0, 1]); the loss is the mean squared error of the network's output
against the ground-truth Y over the whole patch (zero padding included, as at test time). The network
starts as the identity (:func:`invnb.models.srcnn_identity_init_`), so training begins at bicubic
quality; Adam, linear warm-up then cosine decay. ``scripts/train_embedded_srcnn.py`` is the command line.

Training images (:data:`TRAIN_IMAGES`): photographs and textures shipped in scikit-image's wheel whose
documentation releases them to the public domain or under CC0 (or states no known copyright
restrictions); none is one of the embedded SR test images (:data:`invnb.sr.EMBEDDED_SR_IMAGES`), so a
PSNR on those is held out.

References
----------
Dong, Loy, He, Tang, "Image Super-Resolution Using Deep Convolutional Networks", IEEE TPAMI 38(2), 2016.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from invnb.models.srcnn import SRCNN, srcnn_identity_init_
from invnb.sr.metrics import psnr
from invnb.sr.samples import SRSample, make_sr_sample, y_to_tensor

__all__ = ["SRCNNTraining", "TRAIN_IMAGES", "TrainingPair", "draw_batch", "patch_positions", "srcnn_psnr_table",
           "state_digest", "train_srcnn", "training_pairs"]

#: scikit-image ``skimage.data`` images used for training, with the licence their documentation states
#: (scikit-image 0.26).
TRAIN_IMAGES = {
    "brick": "CC0 (CC0Textures, Bricks25)",
    "grass": "CC0 (DeviantArt, linolafett, Grass-01)",
    "gravel": "CC0 (CC0Textures, Gravel04)",
    "text": "public domain (Wikipedia, File:Corner.png)",
    "coins": "no known copyright restrictions (Brooklyn Museum collection)",
    "hubble_deep_field": "public domain (NASA, HubbleSite 2012/37)",
    "retina": "CC0 1.0 (Wikimedia Commons, Mikael Haggstrom)",
    "immunohistochemistry": "no known copyright restrictions (CMMI)",
    "cell": "CC0 (qpformat data, Mueller et al.)",
}


@dataclasses.dataclass(frozen=True)
class TrainingPair:
    """One training image at one scale: ``x`` bicubic Y and ``gt`` ground-truth Y, ``(H, W)`` float32 in [0, 1]."""

    name: str
    scale: int
    x: np.ndarray
    gt: np.ndarray


@dataclasses.dataclass(frozen=True)
class SRCNNTraining:
    """The hyper-parameters of :func:`train_srcnn` (the defaults made the shipped checkpoints).

    Attributes
    ----------
    steps, batch_size, patch : int
        Optimiser steps, patches per step, side of the HR training patches.
    kernel_sizes, channels : tuple of int
        The architecture (:class:`invnb.models.SRCNN`).
    lr : float
        Peak learning rate of Adam.
    warmup : int
        Steps of linear warm-up (then cosine decay to 0).
    min_std : float
        Patches whose ground truth has a smaller standard deviation are not drawn (flat background).
    seed : int
        Master seed; the network for ``scale`` uses ``1000 * seed + scale``.
    """

    steps: int = 2000
    batch_size: int = 32
    patch: int = 41
    kernel_sizes: tuple[int, ...] = (9, 5, 5)
    channels: tuple[int, ...] = (64, 32)
    lr: float = 1e-3
    warmup: int = 100
    min_std: float = 0.02
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "patch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def scale_seed(self, scale: int) -> int:
        """The seed of the network for ``scale`` (independent of which other scales are trained)."""
        return 1000 * self.seed + int(scale)


def training_pairs(scales: Sequence[int], names: Sequence[str] | None = None) -> list[TrainingPair]:
    """Every training image (:data:`TRAIN_IMAGES`, or ``names``) at every scale, through the SR test pipeline.

    Parameters
    ----------
    scales : sequence of int
        SR factors (>= 2).
    names : sequence of str, optional
        A subset of :data:`TRAIN_IMAGES`.

    Returns
    -------
    list of TrainingPair

    Examples
    --------
    >>> p = training_pairs([3], names=["coins"])[0]
    >>> p.name, p.scale, p.x.shape == p.gt.shape, p.x.dtype
    ('coins', 3, True, dtype('float32'))
    """
    import skimage.data

    names = list(TRAIN_IMAGES if names is None else names)
    unknown = [n for n in names if n not in TRAIN_IMAGES]
    if unknown or any(int(s) < 2 for s in scales):
        raise ValueError(f"need names from TRAIN_IMAGES and scales >= 2, got {unknown or names} and {list(scales)}")
    pairs = []
    for name in names:
        img = getattr(skimage.data, name)()
        for scale in scales:
            s = make_sr_sample(img, int(scale), name=name)
            pairs.append(TrainingPair(name, int(scale), (s.im_b_y / 255.0).astype(np.float32),
                                      (s.im_gt_y / 255.0).astype(np.float32)))
    return pairs


def patch_positions(gt: np.ndarray, patch: int, min_std: float, stride: int = 4) -> np.ndarray:
    """Top-left corners ``(K, 2)`` on a ``stride`` grid whose ``patch``-square of ``gt`` has std >= ``min_std``.

    Examples
    --------
    >>> gt = np.zeros((8, 8)); gt[:, 4:] = 1.0
    >>> patch_positions(gt, 4, 0.1, stride=2).tolist()
    [[0, 2], [2, 2], [4, 2]]
    """
    c1 = np.pad(gt.astype(np.float64), ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    c2 = np.pad(gt.astype(np.float64) ** 2, ((1, 0), (1, 0))).cumsum(0).cumsum(1)

    def box(c):
        return c[patch:, patch:] - c[:-patch, patch:] - c[patch:, :-patch] + c[:-patch, :-patch]

    n = patch * patch
    var = box(c2) / n - (box(c1) / n) ** 2
    ok = np.zeros_like(var, dtype=bool)
    ok[::stride, ::stride] = True
    ok &= var >= min_std ** 2
    return np.argwhere(ok)


def draw_batch(pairs: Sequence[TrainingPair], positions: Sequence[np.ndarray], batch_size: int, patch: int,
               gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of ``(B, 1, patch, patch)`` bicubic and ground-truth patches, randomly transposed and flipped.

    An image is drawn uniformly, then one of its pairs, then a position of ``positions`` (one array per pair).

    Examples
    --------
    >>> pair = TrainingPair("flat", 2, np.zeros((8, 8), np.float32), np.ones((8, 8), np.float32))
    >>> x, y = draw_batch([pair], [np.array([[0, 0], [4, 4]])], 3, 4, torch.Generator().manual_seed(0))
    >>> tuple(x.shape), float(y.mean())
    ((3, 1, 4, 4), 1.0)
    """
    xs, ys = [], []
    names = sorted({p.name for p in pairs})
    for _ in range(batch_size):
        name = names[int(torch.randint(len(names), (1,), generator=gen))]
        choices = [i for i, p in enumerate(pairs) if p.name == name]
        k = choices[int(torch.randint(len(choices), (1,), generator=gen))]
        pos = positions[k]
        r, c = pos[int(torch.randint(len(pos), (1,), generator=gen))]
        xs.append(torch.from_numpy(pairs[k].x[r:r + patch, c:c + patch]))
        ys.append(torch.from_numpy(pairs[k].gt[r:r + patch, c:c + patch]))
    x, y = torch.stack(xs)[:, None], torch.stack(ys)[:, None]
    bits = (torch.rand((3, batch_size), generator=gen) < 0.5)[:, :, None, None, None]
    xy = torch.cat([x, y], dim=1)
    xy = torch.where(bits[0], xy.transpose(-1, -2), xy)
    xy = torch.where(bits[1], xy.flip(-1), xy)
    xy = torch.where(bits[2], xy.flip(-2), xy)
    return xy[:, :1].contiguous(), xy[:, 1:].contiguous()


@torch.no_grad()
def srcnn_psnr_table(model: SRCNN, samples: Sequence[SRSample], scale: int) -> dict:
    """Mean PSNR (Y, peak 1, ``scale`` pixels shaved, SR clipped to [0, 1]) of bicubic and of ``model``.

    Parameters
    ----------
    model : SRCNN
        Its :meth:`~invnb.models.SRCNN.super_resolve` gives the SR image.
    samples : sequence of SRSample
        At ``scale``.
    scale : int

    Returns
    -------
    dict
        ``{"bicubic": dB, "srcnn": dB, "images": [{"image", "bicubic", "srcnn"}, ...]}``.

    Examples
    --------
    >>> from invnb.models import load_embedded_srcnn
    >>> from invnb.sr import load_embedded_sr_set
    >>> t = srcnn_psnr_table(load_embedded_srcnn(4), load_embedded_sr_set(4, names=["camera"]), 4)
    >>> bool(t["srcnn"] > t["bicubic"])
    True
    """
    rows = []
    for s in samples:
        gt = s.im_gt_y / 255.0
        sr = model.super_resolve(y_to_tensor(s.im_b_y)).clamp(0, 1)[0, 0].double().numpy()
        rows.append({"image": s.name, "bicubic": round(psnr(s.im_b_y / 255.0, gt, data_range=1.0, border=scale), 4),
                     "srcnn": round(psnr(sr, gt, data_range=1.0, border=scale), 4)})
    return {"bicubic": round(float(np.mean([r["bicubic"] for r in rows])), 4),
            "srcnn": round(float(np.mean([r["srcnn"] for r in rows])), 4), "images": rows}


def train_srcnn(pairs: Sequence[TrainingPair], scale: int, config: SRCNNTraining = SRCNNTraining(),
                log: Callable[[dict], None] | None = None, every: int = 250) -> tuple[SRCNN, list[dict]]:
    """Train the SRCNN for ``scale`` on the pairs of that scale.

    Deterministic under ``config.seed`` for a fixed thread count and torch build (call
    ``torch.use_deterministic_algorithms(True)`` first for bit-identical runs).

    Parameters
    ----------
    pairs : sequence of TrainingPair
        :func:`training_pairs`; those of other scales are ignored.
    scale : int
    config : SRCNNTraining
    log : callable, optional
        Receives each history row as it is made.
    every : int, default 250
        Steps per history row (and the last step).

    Returns
    -------
    model : SRCNN
        Eval mode.
    history : list of dict
        ``{"step", "train_mse", "train_psnr", "elapsed_s"}`` (mean over the steps since the previous row).

    Raises
    ------
    ValueError
        No pair at ``scale``, or an image has no patch with std >= ``config.min_std``.

    Examples
    --------
    >>> pairs = training_pairs([2], names=["coins"])
    >>> model, history = train_srcnn(pairs, 2, SRCNNTraining(steps=2, batch_size=2, channels=(4, 2)))
    >>> [h["step"] for h in history]
    [2]
    """
    start = time.perf_counter()
    pairs = [p for p in pairs if p.scale == int(scale)]
    if not pairs:
        raise ValueError(f"no training pair at scale {scale}")
    positions = [patch_positions(p.gt, config.patch, config.min_std) for p in pairs]
    empty = [p.name for p, pos in zip(pairs, positions) if len(pos) == 0]
    if empty:
        raise ValueError(f"no patch of {config.patch} px with std >= {config.min_std} in {empty}; lower min_std")
    seed = config.scale_seed(scale)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = SRCNN(config.kernel_sizes, config.channels)
    srcnn_identity_init_(model, gen)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)

    def lr_at(step: int) -> float:
        if step < config.warmup:
            return (step + 1) / config.warmup
        return 0.5 * (1 + math.cos(math.pi * (step - config.warmup) / max(1, config.steps - config.warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    history, loss_sum, seen = [], 0.0, 0
    model.train()
    for step in range(config.steps):
        x, y = draw_batch(pairs, positions, config.batch_size, config.patch, gen)
        loss = torch.mean((model(x) - y) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        loss_sum, seen = loss_sum + loss.item(), seen + 1
        if (step + 1) % every == 0 or step + 1 == config.steps:
            mse = loss_sum / seen
            history.append({"step": step + 1, "train_mse": round(mse, 8),
                            "train_psnr": round(10 * math.log10(1 / mse), 3),
                            "elapsed_s": round(time.perf_counter() - start, 1)})
            loss_sum, seen = 0.0, 0
            if log is not None:
                log({"scale": int(scale), **history[-1]})
    return model.eval(), history


def state_digest(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict's keys and tensor bytes (independent of the file format).

    Examples
    --------
    >>> state_digest({"w": torch.zeros(2)}) == state_digest({"w": torch.zeros(2)})
    True
    """
    import hashlib

    h = hashlib.sha256()
    for key, value in state.items():
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
