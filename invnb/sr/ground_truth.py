"""Ground truth for an SR network's frequency claim: measured gain, per-band error, attributions, LAM.

For each scale, on one SR network (:data:`invnb.sr.networks.SR_NETWORKS`, VDSR by default),
:func:`run_ground_truth` measures

1. the network's frequency response on gratings, and bicubic's (:func:`invnb.sr.frequency_response`);
2. the per-band error of the network and of bicubic: on the chirp by local frequency
   (:func:`invnb.sr.chirp_band_error`), on the embedded images (the paper's 512-px "Artificial" chirp and
   scikit-image's photographs) and, when a data folder has them, Set5 / Set14 by radial spectrum
   (:func:`invnb.sr.band_error`);
3. the chirp's attribution against frequency for the inverse (each of ``settings``) and for LAM (dense:
   the gradient-magnitude target summed over the whole output), and their agreement with gain and error
   (:func:`invnb.sr.frequency_agreement`; :func:`derived_numbers`);
4. LAM with its published defaults on three windows of the chirp (:data:`LAM_WINDOW_FREQUENCIES`), with
   their Diffusion Index.

The record is JSON-ready (``scripts/sr_ground_truth.py`` writes it with its command, commit and device);
every number :func:`derived_numbers` adds follows from the curves stored beside it, so
:func:`refresh_derived` recomputes them from a stored record without running the network.

References
----------
Kwon et al., IEEE TNNLS 2021 (the claim); Gu & Dong, CVPR 2021 (LAM).

Examples
--------
>>> cfg = GroundTruthConfig(scales=(2,), settings=(), quick=True)
>>> cfg.network, cfg.response_kwargs()["orientations"]
('vdsr', (0.0, 45.0))
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch
from scipy.stats import spearmanr

from invnb.sr.analysis import invert_chirp
from invnb.sr.band_error import BandError, band_error, chirp_band_error, mean_relative_error
from invnb.sr.chirp import chirp_frequencies, chirp_hr, chirp_profiles, lr_nyquist
from invnb.sr.datasets import load_embedded_sr_set, load_sr_folder
from invnb.sr.findings import chirp_agreements, derived_numbers
from invnb.sr.frequency import attribution_ratio
from invnb.sr.lam import LocalAttributionMap, blur_path_visibility, diffusion_index, whole_image_target
from invnb.sr.metrics import psnr
from invnb.sr.networks import receptive_radius, sr_network
from invnb.sr.response import frequency_response
from invnb.sr.samples import SRSample, make_sr_sample, y_to_tensor

__all__ = ["GroundTruthConfig", "LAM_WINDOW_FREQUENCIES", "QUICK_RESPONSE", "chirp_window", "image_record",
           "run_ground_truth", "run_scale"]

#: Radial local frequencies (cycles/px) of the chirp windows LAM explains.
LAM_WINDOW_FREQUENCIES = (0.05, 0.1, 0.15)
#: The gratings of a quick (smoke) run: 12 frequencies, two orientations, one phase.
QUICK_RESPONSE = {"orientations": (0.0, 45.0), "phases": (0.0,),
                  "frequencies": tuple(np.round(np.arange(0.02, 0.5, 0.04), 10))}
#: The embedded images of a quick run.
QUICK_IMAGES = ("artificial", "camera")


@dataclasses.dataclass
class GroundTruthConfig:
    """What :func:`run_ground_truth` measures.

    Attributes
    ----------
    network : str
        Key of :data:`invnb.sr.networks.SR_NETWORKS`.
    scales : tuple of int
        SR factors.
    settings : tuple of str
        Inverse settings of the network (``"default"``, ``"paper"``) whose chirp attribution is compared;
        empty: LAM only.
    chirp_size : int
        Side of the chirp (its constant is ``2 * chirp_size``: 0..0.159 cycles/px per axis).
    sets : tuple of str
        Benchmark folders under ``<data_dir>/sr`` used when present.
    lam_steps, lam_sigma, lam_batch : int, float, int
        LAM's integration steps, baseline blur and path images per forward/backward call.
    quick : bool
        A smoke run: :data:`QUICK_RESPONSE` gratings, two embedded images, two images per set.
    device : str
        Where the network runs.
    response : dict, optional
        Keywords of :func:`invnb.sr.frequency_response` that replace the defaults (and the quick ones).
    images : tuple of str, optional
        Embedded images (keys of :data:`invnb.sr.EMBEDDED_SR_IMAGES`); default all (quick: two).
    """

    network: str = "vdsr"
    scales: tuple[int, ...] = (2, 3, 4)
    settings: tuple[str, ...] = ("default", "paper")
    chirp_size: int = 128
    sets: tuple[str, ...] = ("Set5", "Set14")
    lam_steps: int = 50
    lam_sigma: float = 1.2
    lam_batch: int = 10
    quick: bool = False
    device: str = "cpu"
    response: dict | None = None
    images: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        net = sr_network(self.network)
        unknown = [s for s in self.settings if s not in net.settings]
        if unknown:
            raise ValueError(f"{net.label} has the inverse settings {sorted(net.settings)}, not {unknown}")
        if not self.scales:
            raise ValueError("need at least one scale")

    @property
    def rate(self) -> float:
        """The chirp constant ``c``."""
        return 2.0 * self.chirp_size

    def response_kwargs(self) -> dict:
        """Keywords of :func:`invnb.sr.frequency_response` for this run."""
        return {**(QUICK_RESPONSE if self.quick else {}), **(self.response or {})}


class _Clock:
    """CPU (process) and wall seconds of a block."""

    def __enter__(self):
        self.cpu0, self.wall0 = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.cpu, self.wall = time.process_time() - self.cpu0, time.perf_counter() - self.wall0


def _quiet(_: str) -> None:
    pass


def image_record(sr_model: Callable, sample: SRSample, source: str, device) -> tuple[dict, np.ndarray]:
    """Per-band error and PSNR of an SR model and of bicubic on one SR sample.

    Parameters
    ----------
    sr_model : callable
        Bicubic input ``(1, 1, H, W)`` in [0, 1] -> SR estimate (e.g. ``SRNetwork.sr_model(model)``).
    sample : SRSample
        The image.
    source : str
        Where it comes from (``"chirp"``, ``"embedded"``, ``"Set5"``, ...).
    device : str or torch.device
        Where the model runs.

    Returns
    -------
    record : dict
        ``psnr_model``, ``psnr_bicubic`` (dB, peak 1, ``scale`` border shaved), ``band_error_model`` and
        ``band_error_bicubic`` (:meth:`invnb.sr.BandError.to_dict`), CPU and wall seconds.
    sr : numpy.ndarray
        ``(H, W)`` the model's SR estimate, clipped to [0, 1].

    Examples
    --------
    >>> s = make_sr_sample(np.random.default_rng(0).integers(0, 256, (32, 32), dtype=np.uint8), 2)
    >>> rec, out = image_record(lambda x: x, s, "noise", "cpu")
    >>> round(rec["psnr_model"], 1) == round(rec["psnr_bicubic"], 1), out.shape
    (True, (32, 32))
    """
    with _Clock() as c:
        gt, bic = sample.im_gt_y / 255.0, sample.im_b_y / 255.0
        with torch.no_grad():
            x = y_to_tensor(sample.im_b_y, device)
            out = np.clip(sr_model(x)[0, 0].double().cpu().numpy(), 0.0, 1.0)
        b = sample.scale
        rec = {"name": sample.name, "source": source, "shape": list(gt.shape),
               "psnr_model": psnr(out, gt, data_range=1.0, border=b),
               "psnr_bicubic": psnr(bic, gt, data_range=1.0, border=b),
               "band_error_model": band_error(out, gt, border=b).to_dict(),
               "band_error_bicubic": band_error(bic, gt, border=b).to_dict()}
    rec.update(cpu_seconds=c.cpu, wall_seconds=c.wall)
    return rec, out


def chirp_window(f_radial: float, rate: float, window: int, size: int) -> tuple[int, int]:
    """Top-left pixel of the window centred on the chirp's diagonal where the radial local frequency is ``f``.

    Parameters
    ----------
    f_radial : float
        Radial local frequency, cycles/px (:func:`invnb.sr.chirp_frequencies`).
    rate : float
        The chirp constant ``c``.
    window : int
        Side of the window.
    size : int
        Side of the chirp (the window is kept inside it, one pixel from the bottom-right edge).

    Returns
    -------
    (int, int)
        Row and column of the window's top-left pixel (equal: the diagonal).

    Examples
    --------
    >>> chirp_window(0.1, 256.0, 16, 128)
    (48, 48)
    """
    p = int(round(f_radial / np.sqrt(2) * rate * np.pi)) - 1
    top = int(np.clip(p - window // 2, 0, size - window - 2))
    return top, top


def _response_lines(resp, label: str) -> list[str]:
    def row(values):
        return " ".join(f"{v:5.2f}" for v in values)

    lines = [f"  f     {row(resp.frequencies)}", f"  {label[:5]:<5} {row(resp.gain('model'))}",
             f"  bicub {row(resp.gain('bicubic'))}"]
    lines += [f"  {label} contrast {c:g}: {row(resp.gain('model', ci))}" for ci, c in enumerate(resp.contrasts)]
    lines += ["  total relative error of the output on the gratings:", f"  {label[:5]:<5} {row(resp.error('model'))}",
              f"  bicub {row(resp.error('bicubic'))}", f"  {label} harmonics (2k, 3k) / HR: {row(resp.harmonics())}"]
    return lines


def _samples(scale: int, config: GroundTruthConfig, data_dir: Path | None) -> list[tuple[str, SRSample]]:
    size = config.chirp_size
    chirp = make_sr_sample(chirp_hr(size), scale, cumulative_crop=True, name=f"chirp{size}")
    names = config.images if config.images is not None else (QUICK_IMAGES if config.quick else None)
    images = [("chirp", chirp)] + [("embedded", s) for s in load_embedded_sr_set(
        scale, names=None if names is None else list(names))]
    for set_name in config.sets if data_dir is not None else ():
        folder = Path(data_dir) / "sr" / set_name
        if folder.is_dir():
            images += [(set_name, s) for s in load_sr_folder(folder, scale, limit=2 if config.quick else None)]
    return images


def _lam_dense(lam: LocalAttributionMap, x: torch.Tensor, scale: int,
               config: GroundTruthConfig) -> tuple[dict, np.ndarray]:
    with _Clock() as c:
        dense = lam.attribute(x, target=whole_image_target(margin=scale), batch_size=config.lam_batch)
    a = dense.attributions[0, 0].double().cpu().numpy()
    prof = chirp_profiles(np.abs(a), config.rate)["radial"]
    populated = prof.count >= max(1, int(0.2 * np.median(prof.count[prof.count > 0])))
    theta = np.radians([0.0, 22.5, 45.0, 67.5, 90.0])
    vis = np.mean([blur_path_visibility(prof.centers * np.cos(t), prof.centers * np.sin(t), config.lam_sigma)
                   for t in theta], axis=0)
    rec = {"profile": prof.to_dict(), "target_change": float(dense.target_input[0] - dense.target_baseline[0]),
           "spearman_with_path_visibility": float(spearmanr(prof.mean[populated], vis[populated]).statistic),
           "delta": float(dense.delta[0]), "cpu_seconds": c.cpu, "wall_seconds": c.wall,
           "what": "|LAM| of the gradient-magnitude target summed over the whole output "
                   "(= the sum of LAM over a tiling of 16x16 windows)"}
    return rec, a


def _lam_window(lam: LocalAttributionMap, x: torch.Tensor, f: float,
                config: GroundTruthConfig) -> tuple[dict, np.ndarray]:
    h, w = chirp_window(f, config.rate, lam.window, config.chirp_size)
    with _Clock() as c:
        res = lam.attribute(x, target=(h, w), batch_size=config.lam_batch)
    a = res.attributions[0, 0].double().cpu().numpy()
    fy, fx = chirp_frequencies(a.shape, config.rate)
    fr = np.hypot(fx, fy)
    wts = np.abs(a) / max(np.abs(a).sum(), 1e-30)
    half = lam.window // 2
    rec = {"h": h, "w": w, "window": lam.window, "f_window": float(fr[h + half, w + half]),
           "diffusion_index": float(diffusion_index(res.attributions)[0]),
           "target_change": float(res.target_input[0] - res.target_baseline[0]), "delta": float(res.delta[0]),
           "f_attributed": float((wts * fr).sum()), "cpu_seconds": c.cpu, "wall_seconds": c.wall}
    return rec, a


def run_scale(model: torch.nn.Module, scale: int, config: GroundTruthConfig, data_dir: Path | None = None,
              log: Callable[[str], None] | None = None) -> tuple[dict, dict]:
    """Everything :func:`run_ground_truth` measures at one scale.

    Parameters
    ----------
    model : nn.Module
        The network ``config.network`` names, in eval mode on ``config.device``.
    scale : int
        SR factor.
    config : GroundTruthConfig
    data_dir : pathlib.Path, optional
        Folder whose ``sr/<set>`` benchmark folders are used when present (none: the clone's images only).
    log : callable, optional
        Receives one progress line at a time (e.g. ``print``).

    Returns
    -------
    record : dict
        JSON-ready: ``response``, ``images``, ``chirp_local_error``, ``mean_error``, ``attribution``,
        ``lam_windows`` and the numbers of :func:`invnb.sr.findings.derived_numbers`.
    maps : dict of str to numpy.ndarray
        The attribution maps (``x{scale}_...``) and the chirp input.
    """
    log = log or _quiet
    net = sr_network(config.network)
    sr = net.sr_model(model).eval()
    size, rate = config.chirp_size, config.rate
    out: dict = {"scale": scale, "lr_nyquist": lr_nyquist(scale)}
    maps: dict = {}
    log(f"\n=== x{scale} (LR Nyquist {lr_nyquist(scale):.3f} cycles/px) ===")
    with _Clock() as c:  # 1. frequency response
        resp = frequency_response(sr, scale, device=config.device, **config.response_kwargs())
    out["response"] = resp.to_dict()
    out["response_seconds"] = {"cpu": c.cpu, "wall": c.wall, "gratings": int(resp.model.size)}
    log(f"gratings ({resp.model.size}, {c.cpu:.0f} s CPU): half-gain frequency {net.label} {resp.cutoff(0.5):.3f}, "
        f"bicubic {resp.cutoff(0.5, 'bicubic'):.3f}; 0.9-gain {net.label} {resp.cutoff(0.9):.3f}, "
        f"bicubic {resp.cutoff(0.9, 'bicubic'):.3f}")
    for line in _response_lines(resp, net.label):
        log(line)
    out["images"] = []  # 2. per-band error
    for source, sample in _samples(scale, config, data_dir):
        rec, sr_img = image_record(sr, sample, source, config.device)
        out["images"].append(rec)
        if source == "chirp":
            chirp, chirp_sr = sample, sr_img
        log(f"  {source}/{sample.name} {tuple(rec['shape'])}: PSNR {net.label} {rec['psnr_model']:.2f} dB, bicubic "
            f"{rec['psnr_bicubic']:.2f} dB, {rec['cpu_seconds']:.1f} s CPU")
    gt, bic = chirp.im_gt_y / 255.0, chirp.im_b_y / 255.0
    out["chirp_local_error"] = {"model": chirp_band_error(chirp_sr, gt, rate).to_dict(),
                                "bicubic": chirp_band_error(bic, gt, rate).to_dict()}
    groups: dict = {}
    for rec in out["images"][1:]:
        group = rec["source"] if rec["source"] != "embedded" else (
            "artificial512" if rec["name"] == "artificial" else "photographs")
        groups.setdefault(group, []).append(rec)
    # on the chirp the error is binned by local frequency (the spectral form's window hides its extremes)
    out["mean_error"] = {"chirp": {k: BandError.from_dict(out["chirp_local_error"][k]).relative.tolist()
                                   for k in ("model", "bicubic")} | {"n_images": 1, "kind": "local frequency"}}
    for g, recs in groups.items():
        out["mean_error"][g] = {k: mean_relative_error([BandError.from_dict(r[f"band_error_{k}"]) for r in recs]
                                                       ).tolist() for k in ("model", "bicubic")}
        out["mean_error"][g].update(n_images=len(recs), kind="radial spectrum")
    out["attribution"] = {}  # 3. attribution curves on the chirp
    x = y_to_tensor(chirp.im_b_y, config.device)
    for setting in config.settings:
        with _Clock() as c:
            r = invert_chirp(model, scale, size, rate, net.inverse(model, setting, keep_features=False),
                             config.device)
        att = attribution_ratio(r.x_hat, r.x)
        out["attribution"][setting] = {"profile": chirp_profiles(att, rate)["radial"].to_dict(), "amount": r.amount,
                                       "fidelity": r.output_fidelity, "cpu_seconds": c.cpu, "wall_seconds": c.wall}
        maps[f"x{scale}_{setting}_attribution"] = att.astype(np.float16)
        log(f"  inverse {setting}: amount {r.amount:.3f}, correlation(y_hat, y) "
            f"{r.output_fidelity['correlation']:.3f}, norm ratio {r.output_fidelity['norm_ratio']:.3f}, "
            f"{c.cpu:.0f} s CPU")
    lam = LocalAttributionMap(sr, sigma=config.lam_sigma, steps=config.lam_steps, kernel_size=9, window=16,
                              receptive_radius=receptive_radius(model))
    rec, a = _lam_dense(lam, x, scale, config)
    out["attribution"]["LAM"] = rec
    maps[f"x{scale}_lam_dense"] = a.astype(np.float16)
    log(f"  dense LAM: completeness gap {rec['delta']:.3g} of {rec['target_change']:.3g}, Spearman with the blur "
        f"path's visibility {rec['spearman_with_path_visibility']:+.2f}, {rec['cpu_seconds']:.0f} s CPU")
    out["lam_windows"] = []  # 4. LAM on windows
    for f in LAM_WINDOW_FREQUENCIES:
        rec, a = _lam_window(lam, x, f, config)
        out["lam_windows"].append(rec)
        maps[f"x{scale}_lam_{rec['h']}_{rec['w']}"] = a.astype(np.float16)
        log(f"  LAM window ({rec['h']}, {rec['w']}) at {rec['f_window']:.3f} cycles/px: DI "
            f"{rec['diffusion_index']:.1f}, gap {rec['delta']:.2g} of {rec['target_change']:.3g}, "
            f"{rec['cpu_seconds']:.0f} s CPU")
    maps[f"x{scale}_x"] = (chirp.im_b_y / 255.0).astype(np.float16)
    out.update(derived_numbers(out, scale))  # 5. agreement and findings
    for name, agr in chirp_agreements(out, scale).items():
        log(f"  agreement {name}: {agr}")
    return out, maps


def run_ground_truth(model: torch.nn.Module | Mapping[int, torch.nn.Module], config: GroundTruthConfig,
                     data_dir: Path | None = None, log: Callable[[str], None] | None = None) -> tuple[dict, dict]:
    """Measure an SR network's frequency response, per-band error and attributions at every scale.

    Parameters
    ----------
    model : nn.Module or mapping of int to nn.Module
        The network ``config.network`` names (e.g. ``sr_network("vdsr").load()``), on ``config.device``;
        or one network per scale (``sr_network("srcnn").load_scales(config.scales)``), with every scale of
        ``config.scales``.
    config : GroundTruthConfig
    data_dir : pathlib.Path, optional
        Folder with ``sr/Set5``, ``sr/Set14`` (used when present).
    log : callable, optional
        Progress lines (e.g. ``print``).

    Returns
    -------
    result : dict
        JSON-ready: ``network``, ``chirp_size``, ``rate``, ``sets_found``, ``lam`` (its parameters and
        the blur path's visibility), ``scales`` (``{"2": run_scale record, ...}``), ``cpu_seconds_total``.
    maps : dict of str to numpy.ndarray
        Every scale's attribution maps.

    Examples
    --------
    >>> from invnb.models import VDSR
    >>> tiny = VDSR(depth=3, channels=4).eval()
    >>> cfg = GroundTruthConfig(scales=(2,), settings=(), chirp_size=64, images=(), lam_steps=2,
    ...                         response=dict(frequencies=[0.1], orientations=[0], phases=[0], contrasts=[0.4]))
    >>> result, maps = run_ground_truth(tiny, cfg)
    >>> rec = result["scales"]["2"]
    >>> sorted(rec["attribution"]), len(rec["lam_windows"]), maps["x2_x"].shape
    (['LAM'], 3, (64, 64))
    """
    net = sr_network(config.network)
    models = dict(model) if isinstance(model, Mapping) else dict.fromkeys(config.scales, model)
    missing = [s for s in config.scales if s not in models]
    if missing:
        raise ValueError(f"no network for the scales {missing} (given: {sorted(models)})")
    model = models[config.scales[0]]
    f = np.arange(0, 0.51, 0.01)
    sets_found = [s for s in config.sets if data_dir is not None and (Path(data_dir) / "sr" / s).is_dir()]
    result = {"network": config.network, "chirp_size": config.chirp_size, "rate": config.rate,
              "sets_found": sets_found,
              "lam": {"sigma": config.lam_sigma, "steps": config.lam_steps, "kernel_size": 9, "window": 16,
                      "receptive_radius": receptive_radius(model),
                      "visibility": {"frequency": np.round(f, 3).tolist(),
                                     "axis": blur_path_visibility(f, 0.0, config.lam_sigma).tolist(),
                                     "diagonal": blur_path_visibility(f / np.sqrt(2), f / np.sqrt(2),
                                                                      config.lam_sigma).tolist()}},
              "scales": {}}
    maps: dict = {}
    log = log or _quiet
    log(f"{net.label}, scales {list(config.scales)}, settings {list(config.settings)}; data sets found: "
        f"{sets_found or 'none'}")
    t0 = time.process_time()
    for scale in config.scales:
        rec, m = run_scale(models[scale], scale, config, data_dir, log)
        result["scales"][str(scale)] = rec
        maps.update(m)
    result["cpu_seconds_total"] = time.process_time() - t0
    log(f"\n{net.label}: total {result['cpu_seconds_total']:.0f} s CPU")
    return result, maps
