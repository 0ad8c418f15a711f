"""invnb: the layer-wise inverse of CNNs (Kwon et al., IEEE TNNLS 2021), as a package and a book.

The engine (`LayerwiseInverse`) and the metrics are re-exported here; models,
data and the super-resolution analysis live in their modules
(`invnb.models`, `invnb.synthetic`, `invnb.vdsr`, `invnb.sr_data`,
`invnb.frequency`, `invnb.vdsr_analysis`), plotting in `invnb.plot` and
`invnb.plot_sr`.
"""

from .baselines import available_methods, make_method
from .inverse import DEFAULT_MASK_WEIGHT, InverseResult, LayerwiseInverse, attribution_map
from .layers import LayerStack, UnsupportedLayerError, fold_batchnorm
from .metrics import (CausalCurve, Reidentification, amount_of_activation, deletion_auc, deletion_curve,
                      insertion_auc, insertion_curve, mass_in_mask, pointing_game, reid_rates)
from .solver import LayerProblem, SolveResult, solve_fista, solve_paper
from .tradeoff import inverse_tradeoff, map_tradeoff

__all__ = [
    "DEFAULT_MASK_WEIGHT",
    "CausalCurve",
    "InverseResult",
    "LayerProblem",
    "LayerStack",
    "LayerwiseInverse",
    "Reidentification",
    "SolveResult",
    "UnsupportedLayerError",
    "amount_of_activation",
    "attribution_map",
    "available_methods",
    "deletion_auc",
    "deletion_curve",
    "fold_batchnorm",
    "insertion_auc",
    "insertion_curve",
    "inverse_tradeoff",
    "make_method",
    "map_tradeoff",
    "mass_in_mask",
    "pointing_game",
    "reid_rates",
    "solve_fista",
    "solve_paper",
]
__version__ = "0.1.0"
