"""Properties of the synthetic shape generator (invnb.datasets.synthetic)."""

import pytest
import torch
import torch.nn.functional as F

from invnb.datasets import (
    CLASS_NAMES,
    MEAN,
    STD,
    ShapesData,
    denormalize,
    make_shapes,
    normalize,
)

FIELDS = ("images", "labels", "masks", "distractor_masks", "has_distractor", "distractor_labels")


@pytest.fixture(scope="module")
def data() -> ShapesData:
    return make_shapes(700, seed=11)


def test_shapes_dtypes_ranges(data):
    n = len(data)
    assert n == 700
    assert data.images.shape == (n, 3, 64, 64) and data.images.dtype == torch.float32
    assert data.labels.shape == (n,) and data.labels.dtype == torch.int64
    assert data.masks.shape == (n, 64, 64) and data.masks.dtype == torch.bool
    assert data.distractor_masks.shape == (n, 64, 64) and data.distractor_masks.dtype == torch.bool
    assert data.has_distractor.shape == (n,) and data.has_distractor.dtype == torch.bool
    assert data.images.min() >= 0.0 and data.images.max() <= 1.0
    assert data.labels.min() >= 0 and data.labels.max() < len(CLASS_NAMES)
    assert data.class_names == CLASS_NAMES
    assert 5 <= len(CLASS_NAMES) <= 8


def test_same_seed_is_bit_identical_and_other_seed_differs():
    a, b = make_shapes(24, seed=3), make_shapes(24, seed=3)
    for name in FIELDS:
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    c = make_shapes(24, seed=4)
    assert not torch.equal(a.images, c.images)
    assert not torch.equal(a.masks, c.masks)
    # Each image differs from every other one (no repeated samples).
    flat = a.images.flatten(1)
    dist = torch.cdist(flat, flat) + torch.eye(len(flat)) * 1e9
    assert dist.min() > 1.0


def test_classes_balanced(data):
    counts = torch.bincount(data.labels, minlength=len(CLASS_NAMES))
    assert torch.all(counts == 700 // len(CLASS_NAMES))
    odd = make_shapes(704, seed=2)
    counts = torch.bincount(odd.labels, minlength=len(CLASS_NAMES))
    assert counts.max() - counts.min() <= 1
    # Labels are shuffled, not in cyclic order.
    assert not torch.equal(odd.labels, torch.arange(704) % len(CLASS_NAMES))


def test_distractor_rate(data):
    rate = data.has_distractor.float().mean().item()
    # Binomial(700, 0.3): standard deviation 0.017.
    assert abs(rate - 0.3) < 0.07
    assert not make_shapes(50, seed=0, distractor_prob=0.0).has_distractor.any()
    full = make_shapes(50, seed=0, distractor_prob=1.0)
    assert full.has_distractor.all()
    assert full.distractor_masks.flatten(1).any(1).all()


def test_distractor_is_other_class_smaller_and_apart(data):
    d = data.has_distractor
    assert torch.all(data.distractor_labels[d] != data.labels[d])
    assert torch.all((data.distractor_labels[d] >= 0) & (data.distractor_labels[d] < len(CLASS_NAMES)))
    assert torch.all(data.distractor_labels[~d] == -1)
    assert not data.distractor_masks[~d].any()
    main_area = data.masks.sum((1, 2))
    dis_area = data.distractor_masks.sum((1, 2))
    assert torch.all(dis_area[d] > 0)
    # "Smaller" in extent (the radius of its bounding circle), and on average
    # in area (a large disc may outweigh a small star).
    assert torch.all(_extent(data.distractor_masks[d]) < _extent(data.masks[d]))
    assert dis_area[d].float().mean() < 0.5 * main_area[d].float().mean()
    overlap = (data.masks & data.distractor_masks).sum((1, 2))
    frac = overlap[d].float() / dis_area[d].float()
    assert frac.max() <= 0.1
    assert frac.mean() <= 0.01
    # Distractor classes cover all classes, not a fixed partner.
    assert len(torch.unique(data.distractor_labels[d])) == len(CLASS_NAMES)


def _extent(masks):
    """Largest distance (pixels) of a mask pixel from the mask's centroid, per mask."""
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    m = masks.float()
    a = m.sum((1, 2))
    cy = (m * yy).sum((1, 2)) / a
    cx = (m * xx).sum((1, 2)) / a
    dist = ((yy - cy[:, None, None]) ** 2 + (xx - cx[:, None, None]) ** 2).sqrt()
    return (dist * m).amax((1, 2))


def test_masks_nonempty_and_inside_image(data):
    area = data.masks.float().mean((1, 2))
    assert area.min() > 0.03 and area.max() < 0.5
    border = torch.zeros(64, 64, dtype=torch.bool)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    assert not (data.masks & border).any()
    assert not (data.distractor_masks & border).any()


def _plane_fit_residuals(image, mask):
    """Residuals of a per-channel least-squares fit ``a + b*x + c*y`` over ``mask``."""
    ys, xs = torch.nonzero(mask, as_tuple=True)
    design = torch.stack([torch.ones_like(xs), xs, ys], 1).double()
    values = image[:, ys, xs].T.double()  # (pixels, 3)
    coef = torch.linalg.lstsq(design, values).solution
    return values - design @ coef, coef


def _ring(mask, width=2):
    grown = F.max_pool2d(mask[None, None].float(), 2 * width + 1, stride=1, padding=width)[0, 0] > 0
    return grown & ~mask


def test_masks_cover_exactly_the_object_pixels(data):
    # The object is one colour plus a gentle linear ramp plus pixel noise
    # (std 0.02), so a plane fit over the mask leaves only noise; a mask that
    # included background, or missed part of the object, would not.
    rms, outside_rms, inside_bad = [], [], []
    for i in range(60):
        image, mask = data.images[i], data.masks[i]
        res, coef = _plane_fit_residuals(image, mask)
        rms.append(res.pow(2).mean().sqrt())
        inside_bad.append((res.abs() > 0.1).double().mean())
        # The same plane extrapolated to a 2-pixel ring just outside the mask
        # (away from the distractor) does not fit: that is background.
        ring = _ring(mask) & ~data.distractor_masks[i]
        ys, xs = torch.nonzero(ring, as_tuple=True)
        design = torch.stack([torch.ones_like(xs), xs, ys], 1).double()
        out = image[:, ys, xs].T.double() - design @ coef
        outside_rms.append(out.pow(2).mean().sqrt())
    rms, outside_rms = torch.stack(rms), torch.stack(outside_rms)
    assert rms.max() < 0.04
    assert torch.stack(inside_bad).max() < 0.01
    assert outside_rms.median() > 0.15
    assert (outside_rms > 3 * rms).float().mean() > 0.9


def test_distractor_masks_cover_their_object():
    d = make_shapes(30, seed=5, distractor_prob=1.0)
    for i in range(30):
        visible = d.distractor_masks[i] & ~d.masks[i]
        res, _ = _plane_fit_residuals(d.images[i], visible)
        assert res.pow(2).mean().sqrt() < 0.04


def test_label_matches_drawn_shape(data):
    # Rings are the only class whose mask misses its own centre of mass;
    # bars are the only elongated class (inertia eigenvalue ratio).
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    for i in range(140):
        m = data.masks[i].float()
        a = m.sum()
        cy, cx = (m * yy).sum() / a, (m * xx).sum() / a
        centre_in = bool(data.masks[i, int(cy.round()), int(cx.round())])
        name = CLASS_NAMES[data.labels[i]]
        assert centre_in == (name != "ring"), (i, name)
        dy, dx = yy - cy, xx - cx
        cov = torch.tensor([[(m * dx * dx).sum(), (m * dx * dy).sum()],
                            [(m * dx * dy).sum(), (m * dy * dy).sum()]]) / a
        ev = torch.linalg.eigvalsh(cov)
        elongated = bool(ev[1] / ev[0] > 3.0)
        assert elongated == (name == "bar"), (i, name, (ev[1] / ev[0]).item())


def test_other_image_size_scales_objects():
    big = make_shapes(140, seed=1, image_size=96)
    small = make_shapes(140, seed=1)
    assert big.images.shape == (140, 3, 96, 96)
    ratio = big.masks.float().mean() / small.masks.float().mean()
    assert 0.9 < ratio < 1.1


def test_normalize_roundtrip_and_statistics(data):
    x = normalize(data.images)
    assert x.shape == data.images.shape and x.dtype == data.images.dtype
    # The frozen constants match the generator (not the other way round).
    mean = x.mean((0, 2, 3))
    std = x.std((0, 2, 3))
    assert torch.all(mean.abs() < 0.05), mean
    assert torch.all((std - 1).abs() < 0.05), std
    assert torch.allclose(denormalize(x), data.images, atol=1e-6)
    single = data.images[0].double()
    assert normalize(single).dtype == torch.float64
    expected = (single - torch.tensor(MEAN, dtype=torch.float64)[:, None, None]) / torch.tensor(
        STD, dtype=torch.float64)[:, None, None]
    assert torch.allclose(normalize(single), expected)


def test_subset_and_to(data):
    sub = data.subset(data.has_distractor)
    assert len(sub) == int(data.has_distractor.sum())
    assert sub.has_distractor.all()
    same = data.subset(slice(0, 5)).to("cpu")
    assert torch.equal(same.images, data.images[:5])


@pytest.mark.parametrize(
    "kwargs, error, text",
    [
        ({"n": 0}, ValueError, "positive int"),
        ({"n": 2.5}, ValueError, "positive int"),
        ({"n": 4, "seed": 1.5}, TypeError, "seed"),
        ({"n": 4, "distractor_prob": 1.5}, ValueError, "distractor_prob"),
        ({"n": 4, "image_size": 16}, ValueError, "image_size"),
    ],
)
def test_bad_arguments(kwargs, error, text):
    with pytest.raises(error, match=text):
        make_shapes(**kwargs)


def test_normalize_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        normalize(torch.zeros(2, 1, 8, 8))
    with pytest.raises(TypeError, match="floating"):
        normalize(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(TypeError, match="torch.Tensor"):
        denormalize([[0.0]])
