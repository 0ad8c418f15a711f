"""One inversion of the chirp as a record of numbers, and the chirp images saved beside a run's summary.

:func:`chirp_record` inverts an SR network on the chirp (:func:`invnb.sr.invert_chirp`) and
returns the run with a JSON-ready record: amount, output fidelity, the lowest-attribution band
per axis (:func:`invnb.sr.lowest_band`), the binned profiles and the per-band DCT retention.
:func:`save_chirp_images` / :func:`load_chirp_images` keep the images a figure needs.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from invnb.sr.analysis import invert_chirp
from invnb.sr.chirp import FrequencyBins, chirp_profiles, lowest_band, lr_nyquist
from invnb.sr.frequency import attribution_ratio, band_retention

__all__ = ["chirp_record", "chirp_report_text", "load_chirp_images", "save_chirp_images"]


def chirp_record(model, inverse, scale: int, setting: str, size: int, rate: float, device=None,
                 overrides: dict | None = None):
    """Invert `model` on the chirp with `inverse`; returns ``(VDSRInversion, record)``.

    Parameters
    ----------
    model : nn.Module
        SR network returning the residual.
    inverse : invnb.inverse.LayerwiseInverse
        The configured inverse (e.g. ``LayerwiseInverse.from_setting(model, "vdsr")``).
    scale, size, rate
        SR factor, chirp side and chirp constant (:func:`invnb.sr.invert_chirp`).
    setting : str
        The setting's name, written into the record.
    device : optional
        Where to run.
    overrides : dict, optional
        The keyword overrides the inverse was built with, written into the record.

    Returns
    -------
    run : invnb.sr.VDSRInversion
    record : dict
        ``scale, setting, size, rate, overrides, amount, psnr_dB, fidelity, seconds, lr_nyquist``,
        ``band`` and ``profiles`` per axis (radial, x, y), ``retention`` and ``retention_projection``
        (64 zigzag bands).
    """
    r = invert_chirp(model, scale, size, rate, inverse, device)
    profiles = chirp_profiles(attribution_ratio(r.x_hat, r.x), rate)
    rec = {
        "scale": scale, "setting": setting, "size": size, "rate": rate, "overrides": overrides or {},
        "amount": r.amount, "psnr_dB": r.fidelity, "fidelity": r.output_fidelity, "seconds": r.seconds,
        "lr_nyquist": lr_nyquist(scale),
        "band": {k: lowest_band(v).to_dict() for k, v in profiles.items()},
        "profiles": {k: v.to_dict() for k, v in profiles.items()},
        "retention": band_retention(r.x_hat, r.x).tolist(),
        "retention_projection": band_retention(r.x_hat, r.x, mode="projection").tolist(),
    }
    return r, rec


def chirp_report_text(result: dict, width: float = 0.01) -> str:
    """The lowest-attribution bands (profiles re-binned to `width` cycles/px) and retention of a chirp summary."""
    lines = [f"{result['command']}  (commit {result['commit']}, weights sha256 {result['weights_sha256'][:12]})"]
    for c in result["chirp"]:
        f = c["fidelity"]
        lines.append(f"\n{c['size']}px chirp x{c['scale']} {c['setting']}: amount {c['amount']:.3f}, "
                     f"{c['psnr_dB']:.2f} dB, relative error {f['relative_error']:.3f}, correlation "
                     f"{f['correlation']:.3f}, |y_hat|/|y| {f['norm_ratio']:.3f}; LR Nyquist {c['lr_nyquist']:.3f}")
        for axis in ("radial", "x", "y"):
            bins = FrequencyBins.from_dict(c["profiles"][axis])
            k = max(1, int(round(width / float(np.diff(bins.edges[:2])[0]))))
            lines.append(f"  {axis:>6} ({width:g} bins): {lowest_band(bins.coarsen(k))}")
        for key in ("retention", "retention_projection"):
            lines.append(f"  {key} per zigzag band (0..63): " + " ".join(f"{v:.2f}" for v in c[key]))
    for c in result.get("set5", []):
        crop = f" {c['crop']}px crops" if c.get("crop") else ""
        lines.append(f"\nSet5{crop} x{c['scale']} {c['setting']}: amount {c['amount']:.3f}, focused/unfocused "
                     f"high-band ratio {c['focused_unfocused']['ratio']:.2f}")
        for key in ("retention", "retention_projection"):
            lines.append(f"  {key} per zigzag band (0..63): " + " ".join(f"{v:.2f}" for v in c[key]))
    return "\n".join(lines)


def save_chirp_images(path: str | Path, images: dict) -> None:
    """Write each chirp run's input and inverse input (float16), keyed by ``(scale, setting)``."""
    arrays = {}
    for (scale, setting), r in images.items():
        arrays[f"x{scale}_{setting}_x"] = np.asarray(r.x, dtype=np.float16)
        arrays[f"x{scale}_{setting}_x_hat"] = np.asarray(r.x_hat, dtype=np.float16)
    np.savez_compressed(path, **arrays)


def load_chirp_images(path: str | Path, result: dict) -> dict:
    """The chirp runs of the summary `result` with ``x``, ``x_hat`` read from `path` (``{}`` when absent).

    Returns ``{(scale, setting): namespace(x, x_hat, amount)}``, what :func:`invnb.plot.plot_chirp_grid` draws.
    """
    path = Path(path)
    if not path.is_file():
        return {}
    with np.load(path) as z:
        return {(c["scale"], c["setting"]): SimpleNamespace(
                    x=z[f"x{c['scale']}_{c['setting']}_x"].astype(np.float32),
                    x_hat=z[f"x{c['scale']}_{c['setting']}_x_hat"].astype(np.float32), amount=c["amount"])
                for c in result["chirp"]}
