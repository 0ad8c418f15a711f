"""The layer-wise inverse engine (Kwon et al., IEEE TNNLS 2021).

``layers``    a model as a flat stack of invertible layers (BatchNorm folded) and its forward record
``chain``     what the stack accepts: the layer types, the plain-chain check of ``forward``, BatchNorm folding
``residual``  residual networks: each residual sum (and a ResNet's pooled stem) as one layer of the stack
``solver``    one layer's inverse problem and its two solvers (the paper's, batched FISTA)
``operators`` a layer's affine map as the solvers evaluate it (row-wise, adjoint, operator norm)
``engine``    :class:`LayerwiseInverse`: the top-down walk, class and output targets
``auto``      ``mask_weight="auto"``: per image, the largest candidate weight that keeps the class
``maps``      the attribution map of an inverse input
``output_fit`` the optional last step for output targets: fit the network's output (L-BFGS-B in the box)
``result``    what an inversion returns
``settings``  the named settings (``"default"``, ``"paper"``, ``"vdsr"``, ``"vdsr_paper"``)
"""

from invnb.inverse.engine import LayerwiseInverse
from invnb.inverse.chain import (
    SUPPORTED_LAYERS,
    UnsupportedLayerError,
    check_plain_chain,
    fold_batchnorm,
)
from invnb.inverse.layers import LayerStack
from invnb.inverse.maps import (
    ATTRIBUTIONS,
    FILL_SHARE,
    SMOOTHINGS,
    attribution_map,
    gaussian_smooth,
    postprocess_map,
    raw_map,
)
from invnb.inverse.operators import RowWise, operator_norm
from invnb.inverse.output_fit import OutputFit, fit_output
from invnb.inverse.residual import CompositeLayer, PooledConv, ResidualSum, residual_layers
from invnb.inverse.result import InverseResult, LayerStats
from invnb.inverse.settings import (
    SETTINGS,
    register_setting,
    setting_kwargs,
    setting_names,
)
from invnb.inverse.solver import LayerProblem, SolveResult, solve_fista, solve_paper
from invnb.inverse.targets import target_mask, unpool

__all__ = [
    "CompositeLayer", "PooledConv", "ResidualSum", "residual_layers",
    "ATTRIBUTIONS", "FILL_SHARE", "SETTINGS", "SMOOTHINGS", "SUPPORTED_LAYERS", "InverseResult", "LayerProblem",
    "LayerStack", "LayerStats", "OutputFit", "RowWise", "LayerwiseInverse", "SolveResult", "UnsupportedLayerError", "attribution_map",
    "check_plain_chain", "fit_output", "fold_batchnorm", "gaussian_smooth", "operator_norm", "postprocess_map", "raw_map", "register_setting", "setting_kwargs",
    "setting_names", "solve_fista", "solve_paper", "target_mask", "unpool",
]
