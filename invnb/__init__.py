"""invnb: the layer-wise inverse of CNNs (Kwon et al., IEEE TNNLS 2021), as a package and a book."""

from .inverse import DEFAULT_MASK_WEIGHT, InverseResult, LayerwiseInverse, attribution_map
from .layers import LayerStack, UnsupportedLayerError, fold_batchnorm
from .solver import LayerProblem, SolveResult, solve_fista, solve_paper

__all__ = [
    "DEFAULT_MASK_WEIGHT",
    "InverseResult",
    "LayerProblem",
    "LayerStack",
    "LayerwiseInverse",
    "SolveResult",
    "UnsupportedLayerError",
    "attribution_map",
    "fold_batchnorm",
    "solve_fista",
    "solve_paper",
]
__version__ = "0.1.0"
