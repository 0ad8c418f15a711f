"""invnb.sr.response: the measured gain of SR models whose response is known in closed form."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from invnb.sr import FrequencyResponse, frequency_response, with_residual


class GaussianBlur(torch.nn.Module):
    """A network that is a known linear filter: a sampled Gaussian of standard deviation `sigma`."""

    def __init__(self, sigma: float, radius: int = 9):
        super().__init__()
        r = torch.arange(-radius, radius + 1, dtype=torch.float64)
        g = torch.exp(-0.5 * (r / sigma) ** 2)
        g = g / g.sum()
        self.register_buffer("kernel", torch.outer(g, g)[None, None])
        self.radius = radius

    def forward(self, x):
        k = self.kernel.to(x.dtype)
        return F.conv2d(F.pad(x, (self.radius,) * 4, mode="reflect"), k)


def analytic_gain(sigma, f):
    """Gain of a continuous Gaussian at frequency f (its sampled version differs by < 1e-6 here)."""
    return np.exp(-2 * np.pi**2 * sigma**2 * np.asarray(f) ** 2)


FREQS = [0.03, 0.07, 0.12, 0.18, 0.3, 0.42]


def test_identity_has_gain_one_and_a_gaussian_its_analytic_gain_at_scale_1():
    ident = frequency_response(lambda x: x, 1, frequencies=FREQS, orientations=(0, 30), phases=(0, 90),
                               contrasts=(0.4,), border=12)
    np.testing.assert_allclose(np.abs(ident.model), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.angle(ident.model), 0.0, atol=1e-6)
    sigma = 1.5
    blur = frequency_response(GaussianBlur(sigma).double(), 1, frequencies=FREQS, orientations=(0, 30),
                              phases=(0, 90), contrasts=(0.4,), border=12)
    expected = analytic_gain(sigma, FREQS)[None, :, None, None]
    assert np.abs(blur.model - expected).max() < 1e-3
    np.testing.assert_allclose(blur.gain("model"), analytic_gain(sigma, FREQS), atol=1e-3)
    # the half-gain frequency of a Gaussian: sqrt(ln 2 / (2 pi^2 sigma^2)), found between two measured points
    half = np.sqrt(np.log(2) / (2 * np.pi**2 * sigma**2))
    lo, hi = max(f for f in FREQS if f < half), min(f for f in FREQS if f > half)
    g_lo, g_hi = analytic_gain(sigma, [lo, hi])
    assert blur.cutoff(0.5) == pytest.approx(lo + (0.5 - g_lo) * (hi - lo) / (g_hi - g_lo), abs=1e-4)
    assert np.isnan(ident.cutoff(0.5))
    # a linear filter's total error is |1 - H(f)| and it adds no harmonics
    np.testing.assert_allclose(ident.error("model"), 0.0, atol=1e-6)
    np.testing.assert_allclose(blur.error("model"), 1 - analytic_gain(sigma, FREQS), atol=1e-3)
    assert blur.harmonics().max() < 1e-6


def test_a_cubic_nonlinearity_has_its_known_third_harmonic():
    """out = x + a (x - m)^3 on m + A cos: (A cos)^3 = A^3 (3 cos + cos 3.) / 4, so |c_3k| / A = a A^2 / 4."""
    a, contrast = 2.0, 0.6
    amp = contrast / 2
    resp = frequency_response(lambda x: x + a * (x - 0.5) ** 3, 1, frequencies=[0.05, 0.09], orientations=(0, 30),
                              phases=(0, 45), contrasts=(contrast,), border=8)
    np.testing.assert_allclose(resp.harmonics(), a * amp**2 / 4, rtol=1e-6)
    np.testing.assert_allclose(np.abs(resp.model), 1 + 3 * a * amp**2 / 4, rtol=1e-6)  # the 3/4 part adds to k


@pytest.mark.parametrize("scale", [2, 3])
def test_a_linear_filter_after_bicubic_multiplies_bicubics_gain_by_its_own(scale):
    """Output = filter(bicubic(hr)): at the grating frequency its complex gain is H(k) times bicubic's."""
    freqs = [0.03, 0.07, 0.11] + ([0.16] if scale == 2 else [])
    kw = dict(frequencies=freqs, orientations=(0, 22.5, 45), phases=(0, 60), contrasts=(0.5,))
    sigma = 1.2
    resp = frequency_response(GaussianBlur(sigma), scale, **kw)
    expected = analytic_gain(sigma, freqs)[None, :, None, None]
    big = np.abs(resp.bicubic) > 0.1
    assert big.sum() > 10 and resp.resolved.all()
    assert np.abs(resp.model / resp.bicubic - expected)[big].max() < 1e-3
    # and the bicubic gain itself: near 1 at low frequency, falling towards the LR Nyquist frequency
    g = resp.gain("bicubic")
    assert g[0] > 0.98 and (np.diff(g) < 0).all()


def test_batching_does_not_change_the_response_and_round_trip():
    kw = dict(frequencies=[0.05, 0.2], orientations=(0, 45), phases=(0,), contrasts=(0.3, 0.6))
    model = with_residual(torch.nn.Conv2d(1, 1, 3, padding=1, bias=False)).double()
    with torch.no_grad():
        model.model.weight.copy_(torch.tensor([[[[0, -0.1, 0], [-0.1, 0.4, -0.1], [0, -0.1, 0]]]]))
    a = frequency_response(model, 2, batch_size=1, **kw)
    b = frequency_response(model, 2, batch_size=16, **kw)
    np.testing.assert_allclose(a.model, b.model, atol=1e-12)
    c = FrequencyResponse.from_dict(a.to_dict())
    np.testing.assert_allclose(c.model, a.model)
    np.testing.assert_array_equal(c.resolved, a.resolved)
    assert c.gain("bicubic", contrast=1).shape == (2,)


def test_frequency_response_bad_inputs():
    with pytest.raises(ValueError, match="frequencies"):
        frequency_response(lambda x: x, 2, frequencies=[0.0, 0.2])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        frequency_response(lambda x: x, 2, frequencies=[0.1], contrasts=(1.2,))
    with pytest.raises(ValueError, match="with_residual"):
        frequency_response(lambda x: x[..., 1:, :], 2, frequencies=[0.1], orientations=(0,), phases=(0,),
                           contrasts=(0.2,))
    with pytest.raises(ValueError, match="scale"):
        frequency_response(lambda x: x, 0, frequencies=[0.1])
    with pytest.raises(ValueError, match="which"):
        frequency_response(lambda x: x, 1, frequencies=[0.1], orientations=(0,), phases=(0,),
                           contrasts=(0.2,), border=4).gain("vdsr")
