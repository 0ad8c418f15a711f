"""Evaluation of attribution maps: deletion/insertion, re-identification and amount of activation,
localisation, the paper's trade-off, sanity checks and the synthetic benchmark's protocol.
"""

from invnb.eval.benchmark import (
    HARD_FRACTION,
    OBJECT_MASK,
    TIE_SEED,
    TOPK,
    BenchmarkConfig,
    benchmark_item,
    benchmark_keys,
    benchmark_methods,
    benchmark_task,
    run_benchmark,
    score_map,
    split_row,
)
from invnb.eval.benchmark_report import (
    COLUMNS,
    LOWER_BETTER,
    TABLE_COLUMNS,
    BenchmarkSummary,
    markdown,
    summarise_run,
)
from invnb.eval.causal import (
    TIE_ORDERS,
    CausalCurve,
    curve_auc,
    default_step,
    deletion_auc,
    deletion_curve,
    gaussian_blur,
    insertion_auc,
    insertion_curve,
    pixel_ranks,
    rise_blur_kernel,
    tie_keys,
)
from invnb.eval.intervals import gaps_markdown, tradeoff_auc_difference, tradeoff_gaps
from invnb.eval.localisation import POINTING_RTOL, mass_in_mask, pointing_game
from invnb.eval.reid import Reidentification, amount_of_activation, reid_rates
from invnb.eval.sanity import (
    MODES,
    SIMILARITIES,
    cascade_models,
    map_similarities,
    parametric_layers,
    randomisation_curves,
    randomisation_summary,
    randomise_layers,
    spearman,
    ssim_maps,
    topk_iou,
)
from invnb.eval.sanity_run import (
    MARGIN,
    SanityReport,
    criterion,
    criterion_text,
    run_sanity_checks,
    sanity_markdown,
)
from invnb.eval.tables import read_table, write_table
from invnb.eval.tradeoff import (
    DEFAULT_EXPONENTS,
    DEFAULT_FRACTIONS,
    MAP_KINDS,
    TRADEOFF_MAX_AMOUNT,
    inverse_tradeoff,
    keep_soft,
    keep_top_fraction,
    kept_input_scores,
    map_tradeoff,
    reid_at_amount,
    tradeoff_auc,
)

__all__ = [
    "BenchmarkConfig", "BenchmarkSummary", "COLUMNS", "CausalCurve", "DEFAULT_EXPONENTS", "DEFAULT_FRACTIONS",
    "HARD_FRACTION", "LOWER_BETTER", "MAP_KINDS", "MARGIN", "MODES", "OBJECT_MASK", "POINTING_RTOL",
    "Reidentification", "SIMILARITIES", "SanityReport", "TABLE_COLUMNS", "TIE_ORDERS", "TIE_SEED", "TOPK",
    "TRADEOFF_MAX_AMOUNT", "amount_of_activation", "benchmark_item", "benchmark_keys", "benchmark_methods",
    "benchmark_task", "cascade_models", "criterion", "criterion_text", "curve_auc", "default_step",
    "deletion_auc", "deletion_curve", "gaps_markdown", "gaussian_blur", "insertion_auc", "insertion_curve",
    "inverse_tradeoff", "keep_soft", "keep_top_fraction", "kept_input_scores", "map_similarities",
    "map_tradeoff", "markdown", "mass_in_mask", "parametric_layers", "pixel_ranks", "pointing_game",
    "randomisation_curves", "randomisation_summary", "randomise_layers", "read_table", "reid_at_amount",
    "reid_rates", "rise_blur_kernel", "run_benchmark", "run_sanity_checks", "sanity_markdown", "score_map",
    "spearman", "split_row", "ssim_maps", "summarise_run", "tie_keys", "topk_iou", "tradeoff_auc",
    "tradeoff_auc_difference", "tradeoff_gaps", "write_table",
]
