"""The super-resolution experiments: the MATLAB-compatible pipeline, SR samples and data sets, PSNR/SSIM,
the chirp and the DCT frequency analysis, the VDSR inversion, and the ground truth it is judged by: an SR
network's measured frequency response on gratings, its per-band error, the agreement of attribution curves
with both, and LAM (Local Attribution Maps).
"""

from invnb.sr.agreement import (
    Band,
    FrequencyAgreement,
    as_curve,
    extreme_band,
    frequency_agreement,
    overlap,
)
from invnb.sr.analysis import (
    VDSRInversion,
    VDSRReport,
    analyse_samples,
    center_crop,
    invert_chirp,
    invert_sample,
    invert_vdsr,
    output_fidelity,
)
from invnb.sr.band_error import (
    DEFAULT_EDGES,
    BandError,
    band_error,
    chirp_band_error,
    mean_relative_error,
    radial_power,
)
from invnb.sr.chirp import (
    PAPER_SIZE,
    ChirpBand,
    FrequencyBins,
    bin_by_frequency,
    chirp_frequencies,
    chirp_hr,
    chirp_image,
    chirp_profiles,
    lowest_band,
    lr_nyquist,
)
from invnb.sr.chirp_runs import (
    chirp_record,
    chirp_report_text,
    load_chirp_images,
    save_chirp_images,
)
from invnb.sr.datasets import (
    EMBEDDED_SR_IMAGES,
    SR_DATASETS,
    SRDataset,
    download_sr_dataset,
    embedded_hr_images,
    hr_image_paths,
    load_embedded_sr_set,
    load_sr_folder,
)
from invnb.sr.findings import (
    FINDINGS_MARGIN,
    chirp_agreements,
    derived_numbers,
    findings,
    refresh_derived,
    rounded,
)
from invnb.sr.frequency import (
    FrequencyProfile,
    attribution_ratio,
    band_retention,
    block_dct,
    frequency_profile,
    high_band_share,
    image_patches,
    mean_band_retention,
    mean_frequency_profile,
    zigzag_band,
    zigzag_indices,
)
from invnb.sr.gratings import (
    alias_frequencies,
    fit_sinusoid,
    fold_frequency,
    grating,
    grating_frequency,
    sinusoid_distance,
    sr_input,
    wave_vector,
)
from invnb.sr.ground_truth import (
    LAM_WINDOW_FREQUENCIES,
    QUICK_RESPONSE,
    GroundTruthConfig,
    chirp_window,
    image_record,
    run_ground_truth,
    run_scale,
)
from invnb.sr.lam import (
    LAMResult,
    LocalAttributionMap,
    blur,
    blur_path_visibility,
    diffusion_index,
    gaussian_kernel,
    gradient_magnitude,
    whole_image_target,
    window_target,
)
from invnb.sr.matlab import imresize, modcrop, rgb2ycbcr, ycbcr2rgb
from invnb.sr.metrics import (
    PAIRS,
    DaDeTable,
    da_de_table,
    mean_da_de_table,
    mse,
    psnr,
    shave,
    ssim,
)
from invnb.sr.networks import (
    SR_NETWORKS,
    SRNetwork,
    load_embedded_srcnn_residual,
    load_srcnn_residual,
    receptive_radius,
    sr_network,
    with_residual,
)
from invnb.sr.response import DEFAULT_FREQUENCIES, FrequencyResponse, frequency_response
from invnb.sr.samples import (
    SRSample,
    load_sr_mat,
    make_sr_sample,
    read_image,
    y_to_tensor,
)
from invnb.sr.srcnn_training import (
    TRAIN_IMAGES,
    SRCNNTraining,
    TrainingPair,
    draw_batch,
    patch_positions,
    srcnn_psnr_table,
    state_digest,
    train_srcnn,
    training_pairs,
)

__all__ = [
    "Band", "BandError", "ChirpBand", "DEFAULT_EDGES", "DEFAULT_FREQUENCIES", "DaDeTable",
    "EMBEDDED_SR_IMAGES", "FINDINGS_MARGIN", "FrequencyAgreement", "FrequencyBins", "FrequencyProfile",
    "FrequencyResponse", "GroundTruthConfig", "LAMResult", "LAM_WINDOW_FREQUENCIES", "LocalAttributionMap",
    "PAIRS", "PAPER_SIZE", "QUICK_RESPONSE", "SRDataset", "SRNetwork", "SRSample", "SR_DATASETS",
    "SR_NETWORKS", "VDSRInversion", "VDSRReport", "alias_frequencies", "analyse_samples", "as_curve",
    "attribution_ratio", "band_error", "band_retention", "bin_by_frequency", "block_dct", "blur",
    "blur_path_visibility", "center_crop", "chirp_agreements", "chirp_band_error", "chirp_frequencies",
    "chirp_hr", "chirp_image", "chirp_profiles", "chirp_record", "chirp_report_text", "chirp_window",
    "da_de_table", "derived_numbers", "diffusion_index", "download_sr_dataset", "embedded_hr_images",
    "extreme_band", "findings", "fit_sinusoid", "fold_frequency", "frequency_agreement", "frequency_profile",
    "frequency_response", "gaussian_kernel", "gradient_magnitude", "grating", "grating_frequency",
    "high_band_share", "hr_image_paths", "image_patches", "image_record", "imresize", "invert_chirp",
    "invert_sample", "invert_vdsr", "load_chirp_images", "load_embedded_sr_set", "load_embedded_srcnn_residual",
    "load_sr_folder", "load_sr_mat", "load_srcnn_residual", "lowest_band", "lr_nyquist", "make_sr_sample",
    "mean_band_retention", "mean_da_de_table",
    "mean_frequency_profile", "mean_relative_error", "modcrop", "mse", "output_fidelity", "overlap", "psnr",
    "radial_power", "read_image", "receptive_radius", "refresh_derived", "rgb2ycbcr", "rounded",
    "run_ground_truth", "run_scale", "save_chirp_images", "shave", "sinusoid_distance", "sr_input",
    "sr_network", "ssim", "wave_vector", "whole_image_target", "window_target", "with_residual",
    "y_to_tensor", "ycbcr2rgb", "zigzag_band", "zigzag_indices",
    "SRCNNTraining", "TRAIN_IMAGES", "TrainingPair", "draw_batch", "patch_positions", "srcnn_psnr_table",
    "state_digest", "train_srcnn", "training_pairs",
]
