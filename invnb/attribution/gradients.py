"""Gradient methods: saliency, input x gradient, integrated gradients (captum), guided backprop."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable

import torch
from torch import Tensor, nn

from invnb.attribution.base import AttributionMethod, register

__all__ = ["CaptumMethod", "GuidedBackpropMethod", "one_relu_per_use"]


# --------------------------------------------------------------------------- captum wrappers
def _sum_abs(attr: Tensor) -> Tensor:
    return attr.abs().sum(dim=1)


def fresh_relus(model: nn.Module) -> nn.Module:
    """Deep copy of ``model`` whose every ReLU is a new, distinct, out-of-place module.

    captum's Guided Backprop and layer hooks need this: an in-place ReLU
    overwrites the tensor a hook captured, and a ReLU module registered in
    several places would receive one backward hook per use.
    """
    clone = copy.deepcopy(model)
    for parent in clone.modules():
        for child_name, child in list(parent.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(parent, child_name, nn.ReLU(inplace=False))
    return clone


def follow_device(module: nn.Module, x: Tensor) -> None:
    """Move a private model copy to ``x``'s device (the caller may have moved the original)."""
    p = next(module.parameters(), None)
    if p is not None and p.device != x.device:
        module.to(x.device)


def _relus_reused(model: nn.Module, x: Tensor) -> bool:
    """Whether some ReLU module is called more than once in ``model(x[:1])``."""
    counts: dict[int, int] = {}
    handles = [
        m.register_forward_hook(lambda mod, inp, out: counts.__setitem__(id(mod), counts.get(id(mod), 0) + 1))
        for m in model.modules()
        if isinstance(m, nn.ReLU)
    ]
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in handles:
            h.remove()
    return any(c > 1 for c in counts.values())


def one_relu_per_use(model: nn.Module) -> nn.Module:
    """A copy of `model` in which every call of a ReLU module is its own out-of-place ``nn.ReLU``.

    torchvision's residual blocks call one ``self.relu`` two or three times; a backward hook on
    it (Guided Backprop) would then fire once per use on one module. The copy's ``forward`` is
    the model's, traced with `torch.fx`; the k-th call of ReLU module ``name`` becomes module
    ``name_use<k>``. Functional ReLUs (``F.relu``) stay functional.

    Parameters
    ----------
    model : nn.Module
        Not modified.

    Returns
    -------
    torch.fx.GraphModule
        Computes what `model` computes.

    Raises
    ------
    ValueError
        ``forward`` cannot be traced (e.g. it branches on the input's values).

    Examples
    --------
    >>> import torchvision
    >>> net = one_relu_per_use(torchvision.models.resnet18())
    >>> sorted(n for n, m in net.named_modules() if n.startswith("layer1.0.relu"))
    ['layer1.0.relu', 'layer1.0.relu_use1', 'layer1.0.relu_use2']
    """
    import torch.fx as fx

    try:
        traced = fx.symbolic_trace(copy.deepcopy(model))
    except Exception as err:  # noqa: BLE001 - any tracing failure: say what is needed
        raise ValueError(
            "a ReLU module is called more than once in the model's forward pass (e.g. `self.relu` reused in a "
            "residual block), and forward cannot be traced with torch.fx to give each use its own module "
            f"({type(err).__name__}: {err}); Guided Backprop needs one ReLU module per use. Give each use its "
            "own nn.ReLU.") from err
    uses: dict[str, int] = {}
    for node in traced.graph.nodes:
        if node.op == "call_module" and isinstance(traced.get_submodule(node.target), nn.ReLU):
            uses[node.target] = uses.get(node.target, 0) + 1
            name = f"{node.target}_use{uses[node.target]}"
            traced.add_submodule(name, nn.ReLU(inplace=False))
            node.target = name
    traced.recompile()
    return traced


class CaptumMethod(AttributionMethod):
    """Wrap a captum gradient attribution class, reducing channels by ``sum |.|``.

    Parameters
    ----------
    model : nn.Module
        Classifier in eval mode.
    captum_cls : type
        A captum attribution class taking ``forward_func`` at construction
        (``Saliency``, ``InputXGradient``, ``IntegratedGradients``, ...).
    name : str
        Name used in tables.
    batch_size : int, optional
        Images per captum call.
    **attribute_kw
        Extra keyword arguments of captum's ``attribute`` (e.g. ``n_steps``).

    Examples
    --------
    >>> from captum.attr import Saliency
    >>> CaptumMethod(model, Saliency, "saliency").attribute(x).shape
    torch.Size([2, 64, 64])
    """

    def __init__(self, model: nn.Module, captum_cls: type, name: str, batch_size: int | None = None, **attribute_kw):
        super().__init__(model, batch_size)
        self.name = name
        self._method = captum_cls(model)
        self._attribute_kw = attribute_kw

    def _attribute(self, x: Tensor, classes: Tensor) -> Tensor:
        inp = x.clone().requires_grad_(True)
        attr = self._method.attribute(inp, target=classes, **self._attribute_kw)
        return _sum_abs(attr.detach())


def _captum(cls_name: str, name: str, **fixed) -> Callable[..., AttributionMethod]:
    def factory(model: nn.Module, batch_size: int | None = None, **kw) -> AttributionMethod:
        import captum.attr

        return CaptumMethod(model, getattr(captum.attr, cls_name), name, batch_size, **{**fixed, **kw})

    return factory


def _integrated_gradients(model: nn.Module, batch_size: int | None = None, n_steps: int = 50, **kw):
    from captum.attr import IntegratedGradients

    return CaptumMethod(model, IntegratedGradients, "integrated_gradients", batch_size,
                        n_steps=n_steps, baselines=0.0, internal_batch_size=batch_size, **kw)


register("saliency")(_captum("Saliency", "saliency"))
register("input_x_gradient")(_captum("InputXGradient", "input_x_gradient"))
register("integrated_gradients")(_integrated_gradients)


@register("guided_backprop")
class GuidedBackpropMethod(CaptumMethod):
    """captum ``GuidedBackprop`` on a copy of the model with fresh, out-of-place ReLUs.

    Guided Backprop overrides the gradient of every ``nn.ReLU`` module through
    backward hooks. Those break on in-place ReLUs (torchvision's VGG uses
    them) and on ReLU modules reused in several places, so the method runs on
    a deep copy whose ReLUs are all new ``nn.ReLU(inplace=False)`` modules,
    one per use where the model calls one module several times (torchvision's
    ResNet: :func:`one_relu_per_use`); the caller's model is untouched. ReLUs applied functionally
    (``F.relu`` in ``forward``) are not seen by captum and keep their plain
    gradient. Reduction: sum over channels of ``|attr|``.

    Parameters
    ----------
    model : nn.Module
        Classifier in eval mode (copied once, at construction: later changes
        to its weights are not seen).
    batch_size : int, optional
        Images per captum call.
    """

    def __init__(self, model: nn.Module, batch_size: int | None = None):
        from captum.attr import GuidedBackprop

        self._copy = fresh_relus(model)
        super().__init__(self._copy, GuidedBackprop, "guided_backprop", batch_size)
        self.model = model  # predictions come from the caller's model
        self._checked = False

    def _attribute(self, x: Tensor, classes: Tensor) -> Tensor:
        follow_device(self._copy, x)
        if not self._checked:
            if _relus_reused(self._copy, x):
                from captum.attr import GuidedBackprop

                self._copy = one_relu_per_use(self._copy)
                self._method = GuidedBackprop(self._copy)
            self._checked = True
        with warnings.catch_warnings():
            # captum warns on every call that it sets (and later removes) ReLU hooks.
            warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
            return super()._attribute(x, classes)


# --------------------------------------------------------------------------- registry
