"""Procedurally generated shape images with ground-truth object masks.

The embedded default model of :mod:`invnb` is trained on these images. Each
64x64 RGB image shows one main object of one of seven shape classes, in a
random colour, size, position and rotation, on a textured clutter background
(smooth colour noise, soft stripes, small blobs). With some probability a
second, smaller *distractor* object of another class is drawn as well. The
label is the main object's class, and the masks say exactly which pixels
belong to which object, so attribution maps can be scored against ground
truth.

Everything is generated with one :class:`torch.Generator` seeded by the
caller: the same seed gives bit-identical images on every run (same torch
build and CPU type; other builds may differ in the last bits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["CLASS_NAMES", "IMAGE_SIZE", "HELD_OUT_SEED", "MEAN", "STD", "ShapesData", "make_shapes", "normalize", "denormalize"]


#: Shape classes, in label order.
CLASS_NAMES: tuple[str, ...] = ("disc", "square", "triangle", "cross", "ring", "star", "bar")


#: Default side length of the images, in pixels.
IMAGE_SIZE = 64


#: First seed of the held-out benchmark images: training and validation use seeds
#: below 10**6, the embedded model's test set 10**6 + seed.
HELD_OUT_SEED = 2_000_000


#: Per-channel mean of :func:`make_shapes` images (RGB, in [0, 1]). Measured
#: once on 20000 images (seeds 0..19, distractor_prob 0.3) and then frozen:
#: the embedded model was trained with exactly these constants.
MEAN: tuple[float, float, float] = (0.500, 0.500, 0.499)


#: Per-channel standard deviation matching :data:`MEAN`.
STD: tuple[float, float, float] = (0.219, 0.219, 0.219)


# Radii (in pixels at 64x64) of the bounding circle of the main object and of
# the distractor. The ranges are disjoint so "the big one" is well defined.
_MAIN_RADIUS = (14.0, 22.0)


_DISTRACTOR_RADIUS = (6.0, 9.0)


# Random candidate positions tried for the distractor (plus the four
# corners); the one farthest from the main object (bounding circles) wins, so
# the two rarely touch.
_DISTRACTOR_CANDIDATES = 24


# Candidate colours tried per object; the one most different from the
# background under the object wins, so every object is visible.
_COLOUR_CANDIDATES = 8


_MAX_BLOBS = 8


_PIXEL_NOISE = 0.02


@dataclass(frozen=True)
class ShapesData:
    """A batch of synthetic shape images with their ground truth.

    Attributes
    ----------
    images : torch.Tensor
        ``(N, 3, H, W)`` float32 RGB in [0, 1] (not normalised; see
        :func:`normalize`).
    labels : torch.Tensor
        ``(N,)`` int64 class index of the main object, into ``class_names``.
    masks : torch.Tensor
        ``(N, H, W)`` bool, True on the pixels of the main object.
    distractor_masks : torch.Tensor
        ``(N, H, W)`` bool, True on the pixels of the distractor's shape
        (its full shape: where it touches the main object, the main object is
        drawn on top). All False where there is no distractor.
    has_distractor : torch.Tensor
        ``(N,)`` bool.
    distractor_labels : torch.Tensor
        ``(N,)`` int64 class of the distractor, ``-1`` where there is none.
    class_names : tuple of str
        Name of each class index.
    """

    images: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor
    distractor_masks: torch.Tensor
    has_distractor: torch.Tensor
    distractor_labels: torch.Tensor
    class_names: tuple[str, ...] = CLASS_NAMES

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, index) -> ShapesData:
        """Return the images selected by ``index`` (slice, bool mask or ints)."""
        return ShapesData(
            images=self.images[index],
            labels=self.labels[index],
            masks=self.masks[index],
            distractor_masks=self.distractor_masks[index],
            has_distractor=self.has_distractor[index],
            distractor_labels=self.distractor_labels[index],
            class_names=self.class_names,
        )

    def to(self, device) -> ShapesData:
        """Return a copy with every tensor on ``device``."""
        return ShapesData(
            images=self.images.to(device),
            labels=self.labels.to(device),
            masks=self.masks.to(device),
            distractor_masks=self.distractor_masks.to(device),
            has_distractor=self.has_distractor.to(device),
            distractor_labels=self.distractor_labels.to(device),
            class_names=self.class_names,
        )


def make_shapes(
    n: int,
    seed: int = 0,
    *,
    distractor_prob: float = 0.3,
    image_size: int = IMAGE_SIZE,
) -> ShapesData:
    """Generate ``n`` shape images with labels and object masks.

    Parameters
    ----------
    n : int
        Number of images, >= 1.
    seed : int, default 0
        Seed of the random generator; the same seed (and the same other
        arguments) gives bit-identical data.
    distractor_prob : float, default 0.3
        Probability, per image, of a second, smaller object of another class.
    image_size : int, default 64
        Side length in pixels (>= 32); object sizes scale with it.

    Returns
    -------
    ShapesData
        ``images`` ``(n, 3, image_size, image_size)`` float32 in [0, 1],
        ``labels`` ``(n,)`` int64 (classes balanced to within one image),
        ``masks`` and ``distractor_masks`` ``(n, image_size, image_size)``
        bool, ``has_distractor`` ``(n,)`` bool, ``distractor_labels`` ``(n,)``.

    Examples
    --------
    >>> data = make_shapes(8, seed=0)
    >>> data.images.shape, data.labels.shape
    (torch.Size([8, 3, 64, 64]), torch.Size([8]))
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0.0 <= float(distractor_prob) <= 1.0:
        raise ValueError(f"distractor_prob must lie in [0, 1], got {distractor_prob!r}")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 32:
        raise ValueError(f"image_size must be an int >= 32, got {image_size!r}")

    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    size = image_size
    scale = size / IMAGE_SIZE
    k = len(CLASS_NAMES)

    def rand(*shape):
        return torch.rand(shape, generator=gen)

    # Balanced labels: each class n // k or n // k + 1 times, in random order.
    labels = (torch.arange(n) % k)[torch.randperm(n, generator=gen)]

    background = _background(n, size, gen)

    # Main object: size, centre (bounding circle inside the image), rotation.
    r_main = (_MAIN_RADIUS[0] + (_MAIN_RADIUS[1] - _MAIN_RADIUS[0]) * rand(n)) * scale
    c_main = _centres(r_main, size, rand(n, 2))
    main_masks = _shape_masks(labels, c_main, r_main, 2 * math.pi * rand(n), size)

    # Distractor: another class, smaller, placed away from the main object.
    has_distractor = rand(n) < distractor_prob
    d_labels = (labels + 1 + torch.randint(0, k - 1, (n,), generator=gen)) % k
    r_dis = (_DISTRACTOR_RADIUS[0] + (_DISTRACTOR_RADIUS[1] - _DISTRACTOR_RADIUS[0]) * rand(n)) * scale
    # Random candidates plus the four corners (always room for it there).
    corners = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]).expand(n, 4, 2)
    u = torch.cat([rand(n, _DISTRACTOR_CANDIDATES, 2), corners], dim=1)
    cand = _centres(r_dis[:, None], size, u)
    gap = (cand - c_main[:, None, :]).norm(dim=-1) - r_main[:, None] - r_dis[:, None]
    c_dis = cand[torch.arange(n), gap.argmax(dim=1)]
    dis_masks = _shape_masks(d_labels, c_dis, r_dis, 2 * math.pi * rand(n), size)
    dis_masks &= has_distractor[:, None, None]
    d_labels = torch.where(has_distractor, d_labels, torch.full_like(d_labels, -1))

    # Paint distractor first, the main object on top.
    images = background
    for masks in (dis_masks, main_masks):
        colour = _contrasting_colour(images, masks, gen)
        shade = _shading(n, size, gen)
        obj = (colour[:, :, None, None] + shade).clamp(0.0, 1.0)
        images = torch.where(masks[:, None], obj, images)

    images = images + _PIXEL_NOISE * torch.randn(images.shape, generator=gen)
    images = images.clamp(0.0, 1.0).contiguous()
    return ShapesData(
        images=images,
        labels=labels,
        masks=main_masks,
        distractor_masks=dis_masks,
        has_distractor=has_distractor,
        distractor_labels=d_labels,
    )


def normalize(images: torch.Tensor) -> torch.Tensor:
    """Standardise images with the embedded model's :data:`MEAN` and :data:`STD`.

    Parameters
    ----------
    images : torch.Tensor
        ``(N, 3, H, W)`` or ``(3, H, W)`` RGB in [0, 1].

    Returns
    -------
    torch.Tensor
        Same shape, ``(images - MEAN) / STD`` per channel, on the input's
        device and dtype. This is the space the embedded model (and the
        inverse's input box) works in.
    """
    mean, std = _stats_like(images)
    return (images - mean) / std


def denormalize(x: torch.Tensor) -> torch.Tensor:
    """Undo :func:`normalize`: ``x * STD + MEAN`` per channel (not clamped).

    Parameters
    ----------
    x : torch.Tensor
        ``(N, 3, H, W)`` or ``(3, H, W)`` normalised images.

    Returns
    -------
    torch.Tensor
        Same shape, back in the [0, 1] RGB scale.
    """
    mean, std = _stats_like(x)
    return x * std + mean


def _stats_like(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() not in (3, 4) or x.shape[-3] != 3:
        raise ValueError(
            f"expected images shaped (N, 3, H, W) or (3, H, W), got {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise TypeError(f"expected a floating-point tensor, got {x.dtype}; convert with .float()")
    mean = torch.tensor(MEAN, dtype=x.dtype, device=x.device).view(3, 1, 1)
    std = torch.tensor(STD, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return mean, std


def _grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates ``(yy, xx)``, each ``(size, size)``."""
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    return torch.meshgrid(coords, coords, indexing="ij")


def _centres(radius: torch.Tensor, size: int, u: torch.Tensor) -> torch.Tensor:
    """Centres ``(..., 2)`` (x, y) so a circle of ``radius`` (+5 %) fits inside."""
    margin = (1.05 * radius + 1.0).clamp(max=size / 2)
    lo = margin[..., None]
    return lo + (size - 2 * lo) * u


def _background(n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """Textured clutter ``(n, 3, size, size)`` in [0, 1]."""
    yy, xx = _grid(size)
    # Smooth colour noise: a random 5x5 colour field, bicubic upsampled.
    low = 0.15 + 0.7 * torch.rand((n, 3, 5, 5), generator=gen)
    bg = F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False)

    # Soft stripes of a random colour, period, angle and phase on half the images.
    on = (torch.rand(n, generator=gen) < 0.5).float()
    period = size * (0.08 + 0.17 * torch.rand(n, generator=gen))
    angle = math.pi * torch.rand(n, generator=gen)
    phase = 2 * math.pi * torch.rand(n, generator=gen)
    alpha = on * (0.25 + 0.35 * torch.rand(n, generator=gen))
    colour = torch.rand((n, 3), generator=gen)
    proj = xx * torch.cos(angle)[:, None, None] + yy * torch.sin(angle)[:, None, None]
    wave = 0.5 + 0.5 * torch.sin(2 * math.pi * proj / period[:, None, None] + phase[:, None, None])
    a = (alpha[:, None, None] * wave)[:, None]
    bg = bg * (1 - a) + colour[:, :, None, None] * a

    # Small blobs (discs and squares, 1.5-4 px radius at 64x64); where blobs
    # overlap, the last one is on top.
    scale = size / IMAGE_SIZE
    shape = (n, _MAX_BLOBS)
    count = torch.randint(2, _MAX_BLOBS + 1, (n, 1), generator=gen)
    r = ((1.5 + 2.5 * torch.rand(shape, generator=gen)) * scale)[..., None, None]
    cx = (size * torch.rand(shape, generator=gen))[..., None, None]
    cy = (size * torch.rand(shape, generator=gen))[..., None, None]
    square = (torch.rand(shape, generator=gen) < 0.5)[..., None, None]
    col = torch.rand((n, _MAX_BLOBS + 1, 3), generator=gen)
    # Separable per-axis costs: a pixel is inside when cost_x + cost_y <= r^2
    # (squared distances for discs, 0 / inf within / outside the half-width
    # for squares); unused blob slots get r^2 = -1.
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    dx = (coords - cx).abs()  # (n, B, 1, size)
    dy = (coords[:, None] - cy).abs()  # (n, B, size, 1)
    inf = torch.tensor(float("inf"))
    cost_x = torch.where(square, torch.where(dx <= 0.8 * r, 0.0, inf), dx**2)
    cost_y = torch.where(square, torch.where(dy <= 0.8 * r, 0.0, inf), dy**2)
    r2 = torch.where((torch.arange(_MAX_BLOBS) < count)[..., None, None], r**2, -1.0)
    inside = cost_x + cost_y <= r2
    # Index (1-based) of the topmost blob per pixel, 0 where there is none.
    order = torch.arange(1, _MAX_BLOBS + 1, dtype=torch.uint8)[None, :, None, None]
    top = (inside * order).amax(dim=1)
    blob_colour = torch.gather(
        col, 1, top.view(n, -1, 1).long().expand(-1, -1, 3)
    ).permute(0, 2, 1).view(n, 3, size, size)
    bg = torch.where((top > 0)[:, None], blob_colour, bg)
    return bg.clamp(0.0, 1.0)


def _shape_masks(
    labels: torch.Tensor,
    centre: torch.Tensor,
    radius: torch.Tensor,
    angle: torch.Tensor,
    size: int,
) -> torch.Tensor:
    """Boolean masks ``(n, size, size)`` of shapes ``labels`` at ``centre``.

    Each shape lies within (about) its bounding circle of ``radius`` pixels.
    """
    yy, xx = _grid(size)
    dx = xx - centre[:, 0, None, None]
    dy = yy - centre[:, 1, None, None]
    cos = torch.cos(angle)[:, None, None]
    sin = torch.sin(angle)[:, None, None]
    r = radius[:, None, None]
    # Coordinates in the object's frame, in units of its radius.
    u = (dx * cos + dy * sin) / r
    v = (-dx * sin + dy * cos) / r
    rho = torch.sqrt(u**2 + v**2)
    masks = torch.zeros(u.shape, dtype=torch.bool)
    for k, name in enumerate(CLASS_NAMES):
        sel = labels == k
        if bool(sel.any()):
            masks[sel] = _SHAPES[name](u[sel], v[sel], rho[sel])
    return masks


def _disc(u, v, rho):
    return rho <= 1.0


def _square(u, v, rho):
    return torch.maximum(u.abs(), v.abs()) <= 0.7


def _triangle(u, v, rho):
    # Equilateral triangle inscribed in the unit circle: three half-planes
    # whose outward normals point at angles 90, 210 and 330 degrees.
    inside = torch.ones_like(u, dtype=torch.bool)
    for deg in (90.0, 210.0, 330.0):
        t = math.radians(deg)
        inside &= u * math.cos(t) + v * math.sin(t) <= 0.5
    return inside


def _cross(u, v, rho):
    au, av = u.abs(), v.abs()
    return ((au <= 0.28) & (av <= 0.95)) | ((av <= 0.28) & (au <= 0.95))


def _ring(u, v, rho):
    return (rho <= 1.0) & (rho >= 0.55)


def _star(u, v, rho):
    # Five-pointed star (outer radius 1, inner 0.42): fold the angle into
    # [0, 36 deg] around a tip, then test against the edge from the tip (1, 0)
    # to the inner vertex at 36 degrees.
    sector = 2 * math.pi / 5
    phi = torch.atan2(v, u)
    phi = torch.remainder(phi + sector / 2, sector) - sector / 2
    phi = phi.abs()
    px, py = rho * torch.cos(phi), rho * torch.sin(phi)
    ix, iy = 0.42 * math.cos(sector / 2), 0.42 * math.sin(sector / 2)
    # Inside when on the origin's side of the line tip -> inner vertex.
    cross = (ix - 1.0) * (py - 0.0) - iy * (px - 1.0)
    return cross >= 0.0


def _bar(u, v, rho):
    return (u.abs() <= 0.95) & (v.abs() <= 0.3)


_SHAPES = {
    "disc": _disc,
    "square": _square,
    "triangle": _triangle,
    "cross": _cross,
    "ring": _ring,
    "star": _star,
    "bar": _bar,
}


def _contrasting_colour(images: torch.Tensor, masks: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Per image, the candidate colour ``(n, 3)`` farthest from the mean of
    ``images`` under ``masks`` (a random colour where the mask is empty)."""
    n = images.shape[0]
    cand = torch.rand((n, _COLOUR_CANDIDATES, 3), generator=gen)
    area = masks.sum(dim=(1, 2)).clamp(min=1).float()
    under = (images * masks[:, None]).sum(dim=(2, 3)) / area[:, None]
    dist = (cand - under[:, None, :]).norm(dim=-1)
    return cand[torch.arange(n), dist.argmax(dim=1)]


def _shading(n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """A gentle linear brightness ramp ``(n, 1, size, size)``, within +-0.085."""
    yy, xx = _grid(size)
    t = 2 * math.pi * torch.rand(n, generator=gen)
    ramp = (xx / size - 0.5) * torch.cos(t)[:, None, None] + (yy / size - 0.5) * torch.sin(t)[:, None, None]
    return (0.12 * ramp)[:, None]
