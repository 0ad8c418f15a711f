"""The numbers a ground-truth run derives from its curves: agreements and findings.

Everything here is a function of the curves a run of :func:`invnb.sr.ground_truth.run_ground_truth` stores
(the gratings' complex gains and errors, the per-band errors, the attribution profiles), so a stored
record can be re-derived without the network (:func:`refresh_derived`): the agreement of each attribution
curve with the network's gain and error (:func:`chirp_agreements`, :func:`derived_numbers`) and the
findings (:func:`findings`): where the network's gain drops below 1 or below bicubic's, where its error
exceeds bicubic's, where its per-band error is worst.

Examples
--------
>>> rounded({"a": [1.23456789, float("nan")], "b": 2})
{'a': [1.23457, None], 'b': 2}
"""

from __future__ import annotations

import copy

import numpy as np

from invnb.sr.agreement import FrequencyAgreement, extreme_band, frequency_agreement
from invnb.sr.band_error import DEFAULT_EDGES, BandError
from invnb.sr.chirp import FrequencyBins, lr_nyquist
from invnb.sr.response import FrequencyResponse

__all__ = ["FINDINGS_MARGIN", "chirp_agreements", "derived_numbers", "findings", "refresh_derived", "rounded"]

#: How far (a fraction of the HR grating's amplitude) the network's gain or error must differ from 1 or
#: from bicubic's before a finding lists the frequency: 1 %. Far above the LR Nyquist frequency both
#: outputs have lost the grating and both errors are 1 to within a few 1e-3; without a margin their noise
#: would be listed as the network being worse than bicubic.
FINDINGS_MARGIN = 0.01


def _curve(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def chirp_agreements(record: dict, scale: int, error: str = "chirp") -> dict[str, FrequencyAgreement]:
    """Agreement of each chirp attribution of a scale's record with the network's gain and error.

    Parameters
    ----------
    record : dict
        One scale of a ground-truth run (``response``, ``chirp_local_error``, ``mean_error``,
        ``attribution``).
    scale : int
        Its SR factor.
    error : {"chirp", "gratings", "photographs"}
        Which error curve: the chirp's by local frequency, the gratings' total error, or the embedded
        photographs' mean per-band error (empty dict when the record has none).

    Returns
    -------
    dict of str to FrequencyAgreement
        Keyed like ``record["attribution"]``; the gain is the gratings' mean gain, bicubic's beside it.
    """
    resp = FrequencyResponse.from_dict(record["response"])
    gain = (resp.frequencies, resp.gain("model"))
    gain_bic = (resp.frequencies, resp.gain("bicubic"))
    if error == "chirp":
        err, err_bic = (BandError.from_dict(record["chirp_local_error"][k]) for k in ("model", "bicubic"))
    elif error == "gratings":
        err, err_bic = ((resp.frequencies, resp.error(k)) for k in ("model", "bicubic"))
    elif error == "photographs":
        photos = record["mean_error"].get("photographs")
        if not photos:
            return {}
        centers = 0.5 * (DEFAULT_EDGES[1:] + DEFAULT_EDGES[:-1])
        err, err_bic = ((centers, _curve(photos[k])) for k in ("model", "bicubic"))
    else:
        raise ValueError(f"error must be 'chirp', 'gratings' or 'photographs', got {error!r}")
    return {name: frequency_agreement(FrequencyBins.from_dict(att["profile"]), gain, err, scale, gain_bic, err_bic)
            for name, att in record["attribution"].items()}


def findings(resp: FrequencyResponse, mean_error: dict, scale: int, margin: float = FINDINGS_MARGIN) -> dict:
    """Where the network's gain drops below 1 or bicubic's, its error exceeds bicubic's, its band error peaks.

    Parameters
    ----------
    resp : FrequencyResponse
        The gratings.
    mean_error : dict
        ``{group: {"model": (B,), "bicubic": (B,)}}`` mean per-band relative errors on
        :data:`invnb.sr.band_error.DEFAULT_EDGES` (None or NaN where a band is empty).
    scale : int
        SR factor.
    margin : float, default :data:`FINDINGS_MARGIN`
        A frequency is listed only where the difference exceeds it.

    Returns
    -------
    dict
        ``half_gain`` and ``gain_0.9`` (:meth:`FrequencyResponse.cutoff`, model and bicubic),
        ``gain_above_1`` (gain > 1 + margin), ``below_bicubic`` (gain < bicubic's - margin),
        ``max_gain``, ``grating_error_above_bicubic`` (total error > bicubic's + margin),
        ``max_harmonics`` and ``error``: per image group, the worst band below the LR Nyquist frequency
        of the network's error and of its error over bicubic's, the mean improvement over bicubic in dB
        below and above that frequency, and the bands where the network is worse than bicubic.

    Examples
    --------
    >>> from invnb.sr.response import frequency_response
    >>> resp = frequency_response(lambda x: x, 2, frequencies=[0.05, 0.1], orientations=[0], phases=[0])
    >>> f = findings(resp, {}, 2)
    >>> f["below_bicubic"], f["grating_error_above_bicubic"], f["gain_above_1"]
    ([], [], [])
    """
    if not margin >= 0:
        raise ValueError(f"margin must be >= 0, got {margin!r}")
    f, gm, gb = resp.frequencies, resp.gain("model"), resp.gain("bicubic")
    em, eb = resp.error("model"), resp.error("bicubic")
    harm = resp.harmonics()
    res = {"half_gain": {"model": resp.cutoff(0.5), "bicubic": resp.cutoff(0.5, "bicubic")},
           "gain_0.9": {"model": resp.cutoff(0.9), "bicubic": resp.cutoff(0.9, "bicubic")},
           "gain_above_1": [float(v) for v, a in zip(f, gm) if a > 1 + margin],
           "below_bicubic": [float(v) for v, a, b in zip(f, gm, gb) if a < b - margin],
           "max_gain": {"value": float(np.nanmax(gm)), "at": float(f[np.nanargmax(gm)])},
           "grating_error_above_bicubic": [float(v) for v, a, b in zip(f, em, eb) if a > b + margin],
           "max_harmonics": {"value": float(np.nanmax(harm)), "at": float(f[np.nanargmax(harm)])},
           "margin": float(margin)}
    edges = DEFAULT_EDGES
    centers = 0.5 * (edges[1:] + edges[:-1])
    below = edges[1:] <= lr_nyquist(scale) + 1e-9
    worst = {}
    for group, curves in mean_error.items():
        m, b = _curve(curves["model"]), _curve(curves["bicubic"])
        try:
            band = extreme_band(edges[: below.sum() + 1], m[below], "max")
            worst_rel = extreme_band(edges[: below.sum() + 1], (m / b)[below], "max")
        except ValueError:  # no usable bin below or above ref_max
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            gain_db = -10 * np.log10(m / b)
        above = ~below & np.isfinite(gain_db)
        worst[group] = {"error_band": band.to_dict(), "least_improvement_band": worst_rel.to_dict(),
                        "improvement_dB_below_nyquist": float(np.nanmean(gain_db[below])),
                        "improvement_dB_above_nyquist": float(np.mean(gain_db[above])) if above.any() else None,
                        "bands_worse_than_bicubic": [float(c) for c, v in zip(centers, gain_db) if v < 0]}
    res["error"] = worst
    return res


def derived_numbers(record: dict, scale: int, margin: float = FINDINGS_MARGIN) -> dict:
    """The agreements and findings of one scale's record, from its stored curves.

    Parameters
    ----------
    record : dict
        One scale of a ground-truth run.
    scale : int
        Its SR factor.
    margin : float, default :data:`FINDINGS_MARGIN`
        See :func:`findings`.

    Returns
    -------
    dict
        ``agreement`` (chirp error), ``agreement_grating_error``, ``agreement_photographs`` (each
        ``{attribution name: FrequencyAgreement.to_dict()}``) and ``findings``.
    """
    out = {key: {name: agr.to_dict() for name, agr in chirp_agreements(record, scale, error).items()}
           for key, error in (("agreement", "chirp"), ("agreement_photographs", "photographs"),
                              ("agreement_grating_error", "gratings"))}
    out["findings"] = findings(FrequencyResponse.from_dict(record["response"]), record["mean_error"], scale, margin)
    return out


def refresh_derived(result: dict, margin: float = FINDINGS_MARGIN) -> dict:
    """A copy of a stored ground-truth result with every scale's :func:`derived_numbers` recomputed."""
    new = copy.deepcopy(result)
    for s, record in new["scales"].items():
        record.update(derived_numbers(record, int(s), margin))
    return new


def rounded(obj, digits: int = 6):
    """``obj`` with every float rounded to ``digits`` significant digits and NaN / inf as None (for JSON)."""
    if isinstance(obj, (float, np.floating)):
        return None if not np.isfinite(obj) else float(f"{float(obj):.{digits}g}")
    if isinstance(obj, dict):
        return {k: rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [rounded(v, digits) for v in obj]
    return obj
