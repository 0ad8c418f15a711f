"""Attribution methods behind one call shape, and their registry.

Every method is a class over :class:`AttributionMethod`, built from a model and
called per batch (``method.attribute(x, target) -> (N, H, W)``); each module
registers its methods by name (:func:`register`), in the benchmark's table
order: gradients, Grad-CAM, perturbation, extremal perturbation, references,
the inverse. :func:`make_method` builds one by name.
"""

# imported in table order: each module registers its methods
from invnb.attribution.adapters import InverseAttribution, quantus_explain_func
from invnb.attribution.base import (
           AttributionMethod,
           available_methods,
           make_method,
           register,
)
from invnb.attribution.cam import GradCam
from invnb.attribution.extremal import ExtremalPerturbation
from invnb.attribution.gradients import CaptumMethod, GuidedBackpropMethod
from invnb.attribution.inverse import InverseMethod
from invnb.attribution.perturbation import OcclusionMethod, Rise
from invnb.attribution.reference import ConstantMap, RandomMap, SobelMap

__all__ = ["AttributionMethod", "CaptumMethod", "ConstantMap", "ExtremalPerturbation", "GradCam",
           "GuidedBackpropMethod", "InverseAttribution", "InverseMethod", "OcclusionMethod", "RandomMap", "Rise",
           "SobelMap", "available_methods", "make_method", "quantus_explain_func", "register"]
