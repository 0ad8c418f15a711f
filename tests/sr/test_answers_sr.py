"""Answer-checking tests of invnb.sr / invnb.sr.metrics: values computed here
independently of the code under test."""

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import correlate

from invnb.sr import modcrop, mse, psnr, ssim, y_to_tensor


def _ssim_by_hand(a, b, data_range=1.0, sigma=1.5, radius=5):
    """Mean SSIM (Wang et al. 2004) with the paper's settings, written from the formula: an 11x11
    Gaussian window (sigma 1.5) applied where it fits inside the image ("valid"), population
    (1/N) moments, K1 = 0.01, K2 = 0.03."""
    r = np.arange(-radius, radius + 1)
    g1 = np.exp(-r**2 / (2 * sigma**2))
    w = np.outer(g1, g1)
    w /= w.sum()

    def f(img):  # the window where it fits: drop `radius` pixels on each side
        return correlate(img, w, mode="constant")[radius:-radius, radius:-radius]

    mu_a, mu_b = f(a), f(b)
    var_a = f(a * a) - mu_a**2
    var_b = f(b * b) - mu_b**2
    cov = f(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(s.mean())


@pytest.mark.parametrize("seed", [0, 1])
def test_ssim_matches_the_formula_with_the_papers_settings(seed):
    rng = np.random.default_rng(seed)
    a = rng.random((20, 24))
    b = np.clip(a + 0.3 * rng.standard_normal(a.shape), 0, 1)
    ref = _ssim_by_hand(a, b)
    assert 0.2 < ref < 0.9  # a pair where the settings matter
    assert ssim(a, b, data_range=1.0) == pytest.approx(ref, rel=1e-9)
    # border shaved first, then the same formula; data range 255 scales C1, C2
    assert ssim(a, b, data_range=1.0, border=2) == pytest.approx(_ssim_by_hand(a[2:-2, 2:-2], b[2:-2, 2:-2]), rel=1e-9)
    assert ssim(255 * a, 255 * b, data_range=255.0) == pytest.approx(ref, rel=1e-9)
    assert ssim(a, b, data_range=2.0) == pytest.approx(_ssim_by_hand(a, b, data_range=2.0), rel=1e-9)


def test_a_one_row_image_stays_two_dimensional():
    """(1, W) is an (H, W) image of one row: only leading singleton axes beyond two are dropped."""
    assert mse(np.zeros((1, 4)), np.full((1, 4), 0.5)) == pytest.approx(0.25)
    assert mse(np.zeros((1, 1, 3, 4)), np.full((3, 4), 0.5)) == pytest.approx(0.25)


def test_psnr_by_hand():
    a = np.zeros((4, 4))
    b = np.zeros((4, 4))
    b[0, 0] = 0.4  # MSE = 0.16 / 16 = 0.01 -> 20 dB at peak 1
    assert psnr(a, b, data_range=1.0) == pytest.approx(20.0, rel=1e-12)
    assert psnr(a, b, data_range=1.0, border=1) == math.inf  # the only error is on the border


@pytest.mark.parametrize("shape,scale,expected", [((7, 11), 3, (6, 9)), ((11, 7), 3, (9, 6)),
                                                  ((9, 14, 3), 4, (8, 12, 3)), ((8, 12), 4, (8, 12))])
def test_modcrop_height_and_width_with_different_remainders(shape, scale, expected):
    img = np.arange(math.prod(shape)).reshape(shape)
    out = modcrop(img, scale)
    assert out.shape == expected
    np.testing.assert_array_equal(out, img[: expected[0], : expected[1]])


def test_y_to_tensor_values_and_layout():
    y = np.array([[0.0, 51.0, 255.0], [127.5, 25.5, 204.0]])
    t = y_to_tensor(y)
    assert t.shape == (1, 1, 2, 3) and str(t.dtype) == "torch.float32"
    np.testing.assert_allclose(t[0, 0].numpy(), [[0.0, 0.2, 1.0], [0.5, 0.1, 0.8]], rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        y_to_tensor(np.zeros((2, 3, 3)))


def test_imresize_reproduces_a_linear_ramp_at_matlab_pixel_centres():
    """Cubic interpolation (a = -0.5), antialiased or not, reproduces linear functions exactly
    away from the border; MATLAB maps output pixel j to input coordinate (j + 0.5) / s - 0.5."""
    from invnb.sr import imresize

    j = np.arange(24.0)
    ramp = np.tile(3 * j + 5, (6, 1))
    for s, border in ((2.0, 4), (0.5, 3), (1 / 3, 2)):
        out = imresize(ramp, s)
        assert out.shape == (math.ceil(6 * s), math.ceil(24 * s))
        pos = (np.arange(out.shape[1]) + 0.5) / s - 0.5
        np.testing.assert_allclose(out[:, border:-border], np.tile(3 * pos + 5, (out.shape[0], 1))[:, border:-border],
                                   atol=1e-9)


def test_imresize_antialiases_when_shrinking():
    """Alternating columns (the Nyquist frequency) sampled at every third pixel would stay +-1;
    MATLAB's antialiasing (the kernel stretched by 3) averages them away."""
    from invnb.sr import imresize

    alt = np.tile((-1.0) ** np.arange(24), (6, 1))
    out = imresize(alt, 1 / 3)
    assert out.shape == (2, 8)
    assert np.abs(out[:, 2:-2]).max() < 0.05
    grey = imresize((128 + 100 * alt).astype(np.uint8), 1 / 3)
    assert grey.dtype == np.uint8 and np.abs(grey[:, 2:-2].astype(int) - 128).max() <= 5


# --------------------------------------------------------------------------- frequency analysis
def test_attribution_ratio_of_a_zero_pixel_is_zero_not_nan():
    from invnb.sr import attribution_ratio

    x = np.array([[0.0, 2.0], [-1.0, 4.0]])
    x_hat = np.array([[0.0, 1.0], [-1.0, 0.0]])
    np.testing.assert_allclose(attribution_ratio(x_hat, x), [[0.0, 0.5], [1.0, 0.0]], rtol=1e-5)


def test_profile_summary_ratio_by_hand():
    """Shares of the AC magnitude in bands >= 28: focused 3/4, unfocused 1/2 -> ratio 1.5; an
    unfocused curve with no high band at all gives share 0 and an undefined ratio (NaN)."""
    from invnb.sr import FrequencyProfile

    f, u = np.zeros(64), np.zeros(64)
    f[0], f[3], f[30] = 50.0, 1.0, 3.0
    u[0], u[5], u[60] = 7.0, 2.0, 2.0
    s = FrequencyProfile(focused=f, unfocused=u, all=(f + u) / 2, n_focused=1, n_unfocused=1).summary()
    assert s["focused"] == pytest.approx(0.75) and s["unfocused"] == pytest.approx(0.5)
    assert s["ratio"] == pytest.approx(1.5) and s["all"] == pytest.approx(2.5 / 4) and s["cut"] == 28
    u2 = np.zeros(64)
    u2[1] = 1.0
    s2 = FrequencyProfile(focused=f, unfocused=u2, all=f, n_focused=1, n_unfocused=1).summary()
    assert s2["unfocused"] == 0.0 and np.isnan(s2["ratio"])


def test_imresize_output_shape_antialiases_and_uint8_saturates():
    from invnb.sr import imresize

    alt = np.tile((-1.0) ** np.arange(24), (6, 1))
    np.testing.assert_allclose(imresize(alt, output_shape=(2, 8)), imresize(alt, 1 / 3), atol=1e-12)
    step = np.zeros((4, 8), dtype=np.uint8)
    step[:, 4:] = 255
    up = imresize(step, 2)  # the cubic kernel overshoots above 255 next to the edge: saturate, not wrap
    over = imresize(step.astype(np.float64), 2)
    assert over.max() > 255.5 and over.min() < -0.5  # the float result over- and undershoots
    assert up.dtype == np.uint8 and up[:, 9:].min() == 255 and up[:, :7].max() == 0


def test_da_de_ssim_uses_data_range_one_and_means_weigh_by_image_count():
    from invnb.sr import PAIRS, DaDeTable, da_de_table, mean_da_de_table

    rng = np.random.default_rng(3)
    x, gt = rng.random((24, 24)), rng.random((24, 24))
    y, y_hat, x_hat = 0.1 * rng.standard_normal((3, 24, 24))
    t = da_de_table(x, y, y_hat, x_hat, gt, scale=2)
    assert t.ssim["dD"] == pytest.approx(_ssim_by_hand((x + y)[2:-2, 2:-2], gt[2:-2, 2:-2]), rel=1e-9)
    a = DaDeTable(psnr={k: 10.0 for k in PAIRS}, ssim={k: 0.5 for k in PAIRS}, mse={k: 1.0 for k in PAIRS})
    b = DaDeTable(psnr={k: 30.0 for k in PAIRS}, ssim={k: 0.9 for k in PAIRS}, mse={k: 3.0 for k in PAIRS},
                  n_images=3)
    m = mean_da_de_table([a, b])
    assert m.n_images == 4 and m.psnr["dA"] == pytest.approx(25.0) and m.ssim["dE"] == pytest.approx(0.8)


# JPEG zigzag scan of an 8x8 block (ITU-T T.81, figure A.6): position k -> natural index 8*row + col
_JPEG_ZIGZAG = [0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48,
                41, 34, 27, 20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23,
                30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63]


def test_default_zigzag_is_the_jpeg_8x8_scan():
    from invnb.sr import zigzag_indices

    order = zigzag_indices()
    np.testing.assert_array_equal(order[:, 0] * 8 + order[:, 1], _JPEG_ZIGZAG)


def test_default_high_band_cut_is_the_main_anti_diagonal():
    """Default cut: the bands on and beyond the 8x8 block's main anti-diagonal (row + col >= 7)."""
    from invnb.sr import high_band_share

    rng = np.random.default_rng(0)
    curve = rng.uniform(0.5, 1.5, 64)  # zigzag order
    rows_cols = np.array([divmod(k, 8) for k in _JPEG_ZIGZAG])
    high = rows_cols.sum(axis=1) >= 7
    expected = curve[high].sum() / curve[1:].sum()
    assert high_band_share(curve) == pytest.approx(expected, rel=1e-12)


def test_band_retention_is_nan_where_the_input_has_nothing_even_with_no_floor():
    """An all-zero x has nothing to keep in any band: every band is NaN (not inf), whatever the
    floor, even though x_hat has energy there."""
    from invnb.sr import band_retention

    x_hat = np.cos(np.pi * (2 * np.arange(8) + 1) / 16)[None, :] * np.ones((8, 1)) + 1.0
    for mode in ("magnitude", "projection"):
        for floor in (0.0, 1e-9):
            assert np.isnan(band_retention(x_hat, np.zeros((8, 8)), rel_floor=floor, mode=mode)).all()


def test_mean_band_retention_keeps_a_band_seen_in_one_image_only():
    """A band that is NaN in one image and finite in the other is the finite value (mean over
    the images that have it), not NaN."""
    from invnb.sr import mean_band_retention

    x1 = np.ones((8, 8))  # only DC: AC bands NaN
    ramp = np.cos(np.pi * (2 * np.arange(8) + 1) / 16)[None, :] * np.ones((8, 1))
    x2 = np.ones((8, 8)) + ramp  # DC and one AC band
    out = mean_band_retention([(0.5 * x1, x1), (3 * x2, x2)])
    assert out[0] == pytest.approx((0.5 + 3.0) / 2, rel=1e-9)
    assert out[1] == pytest.approx(3.0, rel=1e-9)
    assert np.isnan(out[2:]).all()


def test_cumulative_crop_beyond_x4_also_crops_by_the_scale():
    """66 px cropped successively: x2 -> 66, x3 -> 66, x4 -> 64, then x5 -> 60 (and x6 from 64 -> 60)."""
    from invnb.sr import make_sr_sample

    hr = np.random.default_rng(0).integers(0, 256, (66, 66, 3), dtype=np.uint8)
    assert make_sr_sample(hr, 5, cumulative_crop=True).im_gt.shape[:2] == (60, 60)
    assert make_sr_sample(hr, 6, cumulative_crop=True).im_gt.shape[:2] == (60, 60)
    assert make_sr_sample(hr, 4, cumulative_crop=True).im_gt.shape[:2] == (64, 64)


def test_a_mat_file_without_the_sr_arrays_names_its_own_keys_only(tmp_path):
    """The error lists the file's variables, not scipy's ``__header__``/``__version__`` entries."""
    from scipy.io import savemat

    from invnb.sr import load_sr_mat

    f = tmp_path / "bird_GT_x2.mat"
    savemat(f, {"im_gt_y": np.zeros((4, 4)), "other": np.ones(2)})
    with pytest.raises(KeyError) as err:
        load_sr_mat(f)
    msg = str(err.value)
    assert "'im_b_y'" in msg and "['im_gt_y', 'other']" in msg and "__" not in msg


def test_image_paths_skip_files_inside_hidden_and_macos_folders(tmp_path):
    from invnb.sr import hr_image_paths

    for rel in ("a.png", "sub/b.png", "__MACOSX/a.png", ".cache/c.png", "sub/.d.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    assert [p.relative_to(tmp_path).as_posix() for p in hr_image_paths(tmp_path)] == ["a.png", "sub/b.png"]


def test_default_chirp_is_the_papers_512_artificial_image():
    """make_artificial_img.m: x, y = 1..512, sin(x^2/1024) sin(y^2/1024), min-max scaled, saved
    with im2uint8 rounding (round half up)."""
    from invnb.sr import chirp_hr, chirp_image

    t = np.arange(1, 513, dtype=np.float64)
    chirp = np.sin(t**2 / 1024)[:, None] * np.sin(t**2 / 1024)[None, :]
    ref = (chirp - chirp.min()) / np.ptp(chirp)
    img = chirp_image()
    assert img.shape == (512, 512)
    np.testing.assert_allclose(img, ref, atol=1e-12)
    hr = chirp_hr()
    assert hr.shape == (512, 512, 3) and hr.dtype == np.uint8
    assert (hr[..., 0] == hr[..., 2]).all()
    diff = np.abs(hr[..., 1].astype(int) - np.round(255 * ref).astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # only exact .5 ties may round apart


def test_sr_dataset_archive_flags_match_their_file_names():
    """Sets served as .tar.gz/.zip are unpacked; sets served as image files are not."""
    from invnb.sr import SR_DATASETS

    for name, spec in SR_DATASETS.items():
        names = [f[1] for f in spec.files]
        is_archive = [n.endswith((".tar.gz", ".tgz", ".zip", ".tar")) for n in names]
        assert all(a == spec.archive for a in is_archive), (name, names)
    assert {n for n, s in SR_DATASETS.items() if s.archive} == {"BSDS100", "Urban100"}


def test_read_image_scales_16_bit_grey_to_8_bit(tmp_path):
    """16-bit values v -> round(v * 255 / 65535): 0 -> 0, 257 -> 1, 32768 -> 128, 65535 -> 255."""
    from PIL import Image

    from invnb.sr import read_image

    vals = np.array([[0, 257], [32768, 65535]], dtype=np.uint16)
    f = tmp_path / "g16.png"
    Image.fromarray(vals).save(f)
    out = read_image(f)
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 1], [[0, 1], [128, 255]])


def test_embedded_sets_default_to_every_image_in_order():
    from invnb.sr import EMBEDDED_SR_IMAGES, embedded_hr_images, load_embedded_sr_set

    imgs = embedded_hr_images()
    assert list(imgs) == list(EMBEDDED_SR_IMAGES)
    assert all(im.ndim == 3 and im.shape[2] == 3 and im.dtype == np.uint8 for im in imgs.values())
    first = load_embedded_sr_set(4, limit=1)
    assert [s.name for s in first] == [next(iter(EMBEDDED_SR_IMAGES))] and first[0].im_gt.shape == (512, 512, 3)


def test_download_sr_dataset_unpacks_an_archive_once(tmp_path, monkeypatch):
    """An archive set: the archive goes to sr/_archives/, its contents to sr/<name>/, and a second
    call neither downloads anew nor unpacks again (a marker file records the unpacking)."""
    import io
    import tarfile

    from PIL import Image

    import invnb.sr.datasets as sr_data

    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buf, format="PNG")
    calls = []

    def fake_download(url, dest, sha256, progress=True):
        calls.append(Path(dest))
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(dest, "w:gz") as tar:
            info = tarfile.TarInfo("BSD100/HR/img_001.png")
            info.size = len(buf.getvalue())
            tar.addfile(info, io.BytesIO(buf.getvalue()))
        return Path(dest)

    monkeypatch.setattr(sr_data, "download", fake_download)
    folder = sr_data.download_sr_dataset("BSDS100", tmp_path, progress=False)
    assert folder == tmp_path / "sr" / "BSDS100"
    assert [p.parent for p in calls] == [tmp_path / "sr" / "_archives"]
    assert [p.name for p in sr_data.hr_image_paths(folder)] == ["img_001.png"]
    (folder / "BSD100" / "HR" / "img_001.png").unlink()
    sr_data.download_sr_dataset("BSDS100", tmp_path, progress=False)
    assert not (folder / "BSD100" / "HR" / "img_001.png").exists()  # not unpacked again


def test_frequency_functions_default_to_8x8_jpeg_blocks():
    """The paper analyses 8x8 DCT blocks: defaults give 64 bands and 8x8 tiles."""
    from invnb.sr import (
        band_retention,
        frequency_profile,
        image_patches,
        mean_band_retention,
        zigzag_band,
    )

    img = np.arange(16 * 20, dtype=np.float64).reshape(16, 20)
    tiles = image_patches(img)
    assert tiles.shape == (2, 2, 8, 8)
    np.testing.assert_array_equal(tiles[1, 0], img[8:16, 0:8])
    # (row, col) -> position in the JPEG table: (0, 1) is natural index 1, (7, 7) is 63, (2, 0) is 16
    assert [zigzag_band(0, 1), zigzag_band(2, 0), zigzag_band(7, 7)] == [
        _JPEG_ZIGZAG.index(1), _JPEG_ZIGZAG.index(16), _JPEG_ZIGZAG.index(63)]
    x = img[:16, :16] + 1.0
    assert frequency_profile(x, x).all.shape == (64,)
    assert band_retention(x, x).shape == (64,) and mean_band_retention([(x, x)]).shape == (64,)


def test_high_band_share_is_nan_without_a_finite_nonzero_ac_total():
    import warnings

    from invnb.sr import high_band_share

    inf_curve = np.zeros(64)
    inf_curve[[0, 2]] = [1.0, np.inf]  # the AC total is infinite: no share can be told
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no 0/0 warnings on the way
        assert np.isnan(high_band_share(inf_curve))
        assert np.isnan(high_band_share(np.eye(1, 64, 0).ravel()))  # DC only: AC total 0


def test_band_retention_modes_differ_for_a_sign_flipped_inverse():
    """x_hat = -x keeps every band's magnitude (1) but is the opposite of the input's own content
    (least-squares gain -1)."""
    from invnb.sr import band_retention

    x = np.random.default_rng(0).uniform(-1, 1, (16, 16))
    np.testing.assert_allclose(band_retention(-x, x, mode="magnitude"), 1.0, rtol=1e-9)
    np.testing.assert_allclose(band_retention(-x, x, mode="projection"), -1.0, rtol=1e-9)


def test_mean_profile_of_curves_that_are_all_nan_is_nan():
    """No image has a focused patch: the mean focused curve is NaN (64 bands), the rest averages."""
    from invnb.sr import FrequencyProfile, mean_frequency_profile

    nan, ones = np.full(64, np.nan), np.ones(64)
    p = FrequencyProfile(focused=nan, unfocused=ones, all=ones, n_focused=0, n_unfocused=4)
    q = FrequencyProfile(focused=nan, unfocused=3 * ones, all=3 * ones, n_focused=0, n_unfocused=4)
    m = mean_frequency_profile([p, q])
    assert m.focused.shape == (64,) and np.isnan(m.focused).all()
    np.testing.assert_allclose(m.unfocused, 2.0)
    assert m.n_unfocused == 8


def test_band_retention_magnitude_is_a_mean_of_magnitudes_over_patches():
    """Two tiles, the second the negative of the first (every DCT coefficient c, then -c); x_hat
    keeps the first tile only. Mean |DCT(x_hat)| = |c| / 2, mean |DCT(x)| = |c|: 1/2 in every
    band. (The magnitude of the mean, |c - c| / 2 = 0, would leave every band NaN.)"""
    from invnb.sr import band_retention

    tile = np.random.default_rng(1).uniform(-1, 1, (8, 8))
    x = np.concatenate([tile, -tile], axis=1)  # (8, 16): two 8x8 tiles
    x_hat = np.concatenate([tile, np.zeros((8, 8))], axis=1)
    np.testing.assert_allclose(band_retention(x_hat, x, mode="magnitude"), 0.5, rtol=1e-9)
