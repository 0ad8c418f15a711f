"""invnb: the layer-wise inverse of CNNs (Kwon et al., IEEE TNNLS 2021), as a package and a book.

The subpackages, lowest layer first (each imports only from those below it):

==================  ===================================================================
``invnb._utils``    private helpers shared across subpackages
``invnb.runs``      resumable per-item result store, serial or Dask execution, provenance
``invnb.datasets``  generated shapes with object masks, ImageNet validation, downloads
``invnb.models``    the embedded SmallVGG, torchvision's VGGs, VDSR, safe checkpoints
``invnb.inverse``   the engine: layer stack, per-layer problems and solvers, walk, maps, settings
``invnb.attribution``  every attribution method behind one call shape, and their registry
``invnb.eval``      deletion/insertion, re-identification, localisation, trade-off, sanity, benchmark
``invnb.sr``        super-resolution: MATLAB-compatible pipeline, metrics, chirp, frequency, VDSR analysis
``invnb.plot``      every figure (all of invnb's matplotlib)
``invnb.book``      the chapters' command line, their items, the interactive explorer
==================  ===================================================================

The names most code needs are re-exported here.

Examples
--------
>>> from invnb import LayerwiseInverse
>>> from invnb.models import load_embedded_model
>>> from invnb.datasets import make_shapes, normalize
>>> res = LayerwiseInverse(load_embedded_model()).invert(normalize(make_shapes(2, seed=1).images))
>>> tuple(res.attribution.shape)
(2, 64, 64)
"""

from invnb.attribution import available_methods, make_method
from invnb.eval import (
    CausalCurve,
    Reidentification,
    amount_of_activation,
    deletion_auc,
    deletion_curve,
    insertion_auc,
    insertion_curve,
    inverse_tradeoff,
    map_tradeoff,
    mass_in_mask,
    pointing_game,
    reid_rates,
)
from invnb.inverse import (
    InverseResult,
    LayerProblem,
    LayerStack,
    LayerwiseInverse,
    SolveResult,
    UnsupportedLayerError,
    attribution_map,
    fold_batchnorm,
    solve_fista,
    solve_paper,
)

__all__ = [
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
