"""The layer-wise inverse as an attribution method of the common loop."""

from __future__ import annotations

from torch import Tensor, nn

from invnb._utils.checks import check_images
from invnb.attribution.base import AttributionMethod, Explanation, register

__all__ = ["InverseMethod"]


# --------------------------------------------------------------------------- the inverse
@register("inverse")
class InverseMethod(AttributionMethod):
    """Adapter: :class:`invnb.inverse.LayerwiseInverse` in the common loop.

    Parameters
    ----------
    model : nn.Module
        Classifier in eval mode.
    setting : str
        A named setting of :mod:`invnb.inverse.settings` (``"default"``; ``"paper"``: the
        released code's exact setting, registered as ``inverse_paper``).
    **inverse_kw
        Keyword arguments of ``LayerwiseInverse`` that replace the setting's
        (``mask_weight``, ``penalty``, ``max_iter``, ...).

    Notes
    -----
    Reduction: the engine's `attribution_map` (the paper's setting:
    ``sum_c |x_hat| / (|x| + 1e-6)``), max-normalised per image by the engine
    (the only method here whose map is normalised, as in the paper).
    """

    def __init__(self, model: nn.Module, setting: str = "default", **inverse_kw):
        from invnb.inverse.engine import LayerwiseInverse

        super().__init__(model, None)
        self.setting = setting
        self.name = "inverse" if setting == "default" else f"inverse_{setting}"
        self.inverse = LayerwiseInverse.from_setting(model, setting, **inverse_kw)

    def attribute(self, x: Tensor, target=None) -> Tensor:
        """(N, H, W) in [0, 1], the inverse's attribution map."""
        check_images(x)
        return self.inverse.attribute(x, target=target)

    def explain(self, x: Tensor, target=None) -> Explanation:
        """The map, the inverse input as the kept input, failures and the chosen ``mask_weight`` per image."""
        check_images(x)
        res = self.inverse.invert(x, target=target)
        extra = {} if res.mask_weight is None else {"chosen_mask_weight": res.mask_weight.float()}
        inv = self.inverse
        postprocessed = bool(inv.map_sigma or inv.map_fill_sigma or inv.map_clip < 1)
        return Explanation(res.attribution, res.input, res.failed, extra, postprocessed)


register("inverse_paper")(lambda model, **kw: InverseMethod(model, setting="paper", **kw))
