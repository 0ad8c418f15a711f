"""What the layer stack accepts: the invertible layer types, the plain-chain check, BatchNorm folding.

The layer-wise inverse walks a network from the top down, one leaf layer at a
time, so it needs the network as a sequence of layers it can invert: Conv2d,
ReLU, pooling, Flatten, Dropout and Linear layers applied one after another.
:func:`check_plain_chain` traces a model's ``forward`` with `torch.fx`
(symbolically, without running it) and refuses it unless it is a plain chain:
each leaf layer called once, in registration order, on the previous one's
output, with only flatten/reshape between them. Skip connections, functional
ops in ``forward`` (``torch.sigmoid``, ``F.relu``) and unsupported layer types
are named in the error. A ``forward`` that cannot be traced (e.g. it branches
on the input's shape, like VDSR's input check) is checked one submodule down
instead. :func:`plain_layers` lists a plain chain's layers with BatchNorm
folded into the conv before it (:func:`fold_batchnorm`). Residual networks are
read by :mod:`invnb.inverse.residual` instead.
"""

from __future__ import annotations

import copy
import operator
from typing import Iterator

import torch
from torch import nn

__all__ = ["SUPPORTED_LAYERS", "SUPPORTED_TEXT", "UnsupportedLayerError", "check_plain_chain", "flatten_dims_problem",
           "fold_batchnorm", "op_text", "plain_layers"]


#: Leaf layer types the inverse knows how to invert (BatchNorm2d is folded away).
SUPPORTED_LAYERS = (
    nn.Conv2d,
    nn.Linear,
    nn.ReLU,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
    nn.Flatten,
    nn.Dropout,
    nn.BatchNorm2d,
    nn.Identity,
)


class UnsupportedLayerError(TypeError):
    """A model contains a layer the layer-wise inverse cannot invert, or is not a plain chain."""


SUPPORTED_TEXT = (
    "supported: a plain chain of Conv2d, Linear, ReLU, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, "
    "AdaptiveMaxPool2d, Flatten, Dropout, Identity and BatchNorm2d (right after a Conv2d) modules, "
    "each called once, in the order they are registered, on the previous one's output, with only "
    "torch.flatten / .view / .reshape before a Linear (like torchvision's VGG)"
)


# ops allowed between layers: they only flatten a feature map before a Linear, or read shapes
_FLATTEN_FUNCS = {torch.flatten}


_FLATTEN_METHODS = {"flatten", "view", "reshape", "contiguous"}


_SHAPE_METHODS = {"size", "dim"}


def flatten_dims_problem(node) -> str | None:
    """Why a traced ``torch.flatten`` / ``.flatten`` op cannot be a layer of the stack, or None.

    The stack flattens a feature map from dim 1 on, before a Linear (``torch.flatten(x, 1)``);
    a flatten over other dims (the default ``start_dim=0`` of both forms, or ``flatten(2)``)
    would be replaced by that silently. ``.view`` / ``.reshape`` are not checked here.
    """
    if not ((node.op == "call_function" and node.target is torch.flatten)
            or (node.op == "call_method" and node.target == "flatten")):
        return None
    dims = (list(node.args[1:]) + [None, None])[:2]
    start = node.kwargs.get("start_dim", 0 if dims[0] is None else dims[0])
    end = node.kwargs.get("end_dim", -1 if dims[1] is None else dims[1])
    if (start, end) == (1, -1):
        return None
    return (f"{op_text(node)} flattens dims {start}..{end}: the layer stack only flattens a feature map "
            "from dim 1 on, before a Linear (torch.flatten(x, 1))")


def op_text(node) -> str:
    """How an error message names a traced op: ``"torch.sigmoid"``, ``"F.relu"``, ``"addition (+)"``.

    Parameters
    ----------
    node : torch.fx.Node
        A ``call_function`` or ``call_method`` node of a traced graph.

    Returns
    -------
    str

    Examples
    --------
    >>> import torch.fx
    >>> graph = torch.fx.symbolic_trace(lambda t: torch.sigmoid(t)).graph
    >>> [op_text(n) for n in graph.nodes if n.op == "call_function"]
    ['torch.sigmoid']
    """
    if node.op == "call_method":
        return f"tensor method .{node.target}()"
    mod = getattr(node.target, "__module__", None) or ""
    name = getattr(node.target, "__name__", str(node.target))
    if node.target in (operator.add, operator.iadd):
        return "addition (+)"
    prefix = {"torch": "torch", "torch.nn.functional": "F", "_operator": "operator"}.get(mod, mod)
    return f"{prefix}.{name}" if prefix else name


def check_plain_chain(model: nn.Module, label: str | None = None) -> bool:
    """Refuse a model whose ``forward`` is not a plain chain of supported layers (traced with torch.fx).

    Parameters
    ----------
    model : nn.Module
        The model (not run; only its ``forward`` code is traced symbolically).
    label : str, optional
        Name used in messages (default: the class name).

    Returns
    -------
    bool
        True when the whole ``forward`` was traced; False when it could not be
        traced and its children were checked one level down instead.

    Raises
    ------
    UnsupportedLayerError
        Naming the cause: a skip connection, a functional op, a layer called
        twice or out of order, or an unsupported layer type.
    """
    import torch.fx as fx

    label = label or type(model).__name__
    if not list(model.children()):
        _check_leaf_type(label, model)
        return True
    try:
        graph = fx.Tracer().trace(model)
    except Exception:  # noqa: BLE001 - data-dependent control flow etc.: check one level down
        children = list(model.named_children())
        if not children:
            _check_leaf_type(label, model)
            return False
        for name, child in children:
            check_plain_chain(child, f"{label}.{name}" if label != type(model).__name__ else name)
        return False
    _check_graph(model, graph, label)
    return True


def _check_leaf_type(name: str, layer: nn.Module, where: str = "") -> None:
    if not isinstance(layer, SUPPORTED_LAYERS):
        raise UnsupportedLayerError(
            f"{where}`{name}` is a {type(layer).__name__}, which the layer-wise inverse cannot invert; {SUPPORTED_TEXT}."
        )


def _check_graph(model: nn.Module, graph, label: str) -> None:
    """Walk a traced graph; raise UnsupportedLayerError at the first node that breaks the chain."""
    modules = dict(model.named_modules())
    order = [name for name, _ in _leaves(model)]
    where = f"{label}: " if label else ""
    current = None  # the node whose output is the chain's current tensor
    called: list[str] = []
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise UnsupportedLayerError(
            f"{where}forward takes {len(placeholders)} inputs; the layer-wise inverse needs one input tensor; "
            f"{SUPPORTED_TEXT}."
        )

    def tensor_users(node):
        return [u for u in node.users if not (u.op == "call_method" and u.target in _SHAPE_METHODS)
                and not (u.op == "call_function" and u.target is getattr)]

    def describe(node):
        return f"`{node.target}`" if node.op == "call_module" else op_text(node)

    for node in graph.nodes:
        if node.op == "placeholder":
            current = node
        elif node.op == "call_module":
            layer = modules[node.target]
            _check_leaf_type(node.target, layer, where)
            if node.args[:1] != (current,):
                raise UnsupportedLayerError(
                    f"{where}`{node.target}` is not applied to the previous layer's output; {SUPPORTED_TEXT}."
                )
            if node.target in called:
                raise UnsupportedLayerError(
                    f"{where}`{node.target}` ({type(layer).__name__}) is called more than once in forward "
                    f"(the layer stack would apply it once); {SUPPORTED_TEXT}."
                )
            called.append(node.target)
            current = node
        elif node.op == "call_function" or node.op == "call_method":
            if node.op == "call_method" and node.target in _SHAPE_METHODS:
                continue
            if node.op == "call_function" and (
                node.target is getattr or (node.target is operator.getitem and node.args[0] is not current)
            ):
                continue  # shape arithmetic (x.shape[0], x.size(0)) off the chain
            is_flatten = (node.op == "call_function" and node.target in _FLATTEN_FUNCS) or (
                node.op == "call_method" and node.target in _FLATTEN_METHODS
            )
            if not is_flatten:
                uses_chain = current in node.all_input_nodes
                raise UnsupportedLayerError(
                    f"{where}functional op {op_text(node)} in forward"
                    + (f" (applied to the output of {describe(current)})" if uses_chain else "")
                    + f": the layer stack only sees modules, so it would skip this op; {SUPPORTED_TEXT}."
                )
            problem = flatten_dims_problem(node)
            if problem:
                raise UnsupportedLayerError(f"{where}{problem}; {SUPPORTED_TEXT}.")
            if node.args[:1] != (current,):
                raise UnsupportedLayerError(
                    f"{where}{op_text(node)} is not applied to the previous layer's output; {SUPPORTED_TEXT}."
                )
            current = node
        elif node.op == "get_attr":
            raise UnsupportedLayerError(
                f"{where}forward reads the tensor `{node.target}` directly (not through a layer); {SUPPORTED_TEXT}."
            )
        elif node.op == "output":
            if node.args[0] is not current:
                raise UnsupportedLayerError(
                    f"{where}forward does not return the last layer's output; {SUPPORTED_TEXT}."
                )
            continue
        users = tensor_users(current)
        if len(users) > 1:
            names = " and ".join(describe(u) for u in users)
            adds = [u for u in users if u.op == "call_function" and u.target in (operator.add, operator.iadd, torch.add, torch.cat)]
            why = " (a skip connection)" if adds else " (the chain branches)"
            raise UnsupportedLayerError(
                f"{where}the output of {describe(current)} is used by {names}{why}; "
                f"the layer-wise inverse needs a plain chain without skip connections; {SUPPORTED_TEXT}."
            )
    skipped = [name for name in order if name not in called and not isinstance(modules[name], nn.Identity)]
    if skipped:
        raise UnsupportedLayerError(
            f"{where}layer(s) {', '.join(f'`{n}`' for n in skipped)} are registered but never called in "
            f"forward (the layer stack would apply them); {SUPPORTED_TEXT}."
        )
    registered = [n for n in order if n in called]
    if registered != called:
        first = next(i for i, (a, b) in enumerate(zip(registered, called)) if a != b)
        raise UnsupportedLayerError(
            f"{where}forward calls `{called[first]}` where the registration order has `{registered[first]}`: "
            f"layers are not applied in the order they are registered; {SUPPORTED_TEXT}."
        )


def fold_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """Return a new Conv2d equal to ``bn(conv(x))`` in eval mode.

    Parameters
    ----------
    conv : nn.Conv2d
        Convolution whose output feeds `bn`; it is not modified.
    bn : nn.BatchNorm2d
        Batch normalisation with running statistics (eval mode semantics).

    Returns
    -------
    nn.Conv2d
        A convolution with bias, ``W' = W * g / s`` and ``b' = (b - mu) * g / s + beta``
        with ``s = sqrt(var + eps)``.
    """
    if bn.running_mean is None or bn.running_var is None:
        raise UnsupportedLayerError(
            "BatchNorm2d without running statistics (track_running_stats=False) cannot be "
            "folded into the convolution before it; construct it with track_running_stats=True."
        )
    fused = copy.deepcopy(conv)
    w = conv.weight.detach()
    scale = bn.running_var.detach().add(bn.eps).rsqrt()
    if bn.affine:
        scale = scale * bn.weight.detach()
        shift = bn.bias.detach()
    else:
        shift = torch.zeros_like(scale)
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(scale)
    fused.weight = nn.Parameter(w * scale.reshape(-1, 1, 1, 1))
    fused.bias = nn.Parameter((bias - bn.running_mean.detach()) * scale + shift)
    return fused


def _leaves(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    """Yield ``(qualified_name, leaf)`` in registration order."""
    children = list(module.named_children())
    if not children:
        yield prefix, module
        return
    for name, child in children:
        yield from _leaves(child, f"{prefix}.{name}" if prefix else name)


def plain_layers(model: nn.Module) -> tuple[list[nn.Module], list[str]]:
    """The leaf layers of a plain chain in registration order, and their names.

    Parameters
    ----------
    model : nn.Module
        A model whose leaves are :data:`SUPPORTED_LAYERS` (not modified: layers are copied,
        BatchNorm2d is folded into the Conv2d before it, in-place ReLUs become out-of-place,
        Identity layers are dropped).

    Returns
    -------
    layers : list of nn.Module
        The layers, with an ``nn.Flatten`` inserted where a Linear follows a feature map.
    names : list of str
        Each layer's qualified name (``"features.0"``); an inserted flatten is ``"<flatten>"``.

    Raises
    ------
    UnsupportedLayerError
        A leaf of another type, or a BatchNorm2d that does not follow a Conv2d.

    Examples
    --------
    >>> layers, names = plain_layers(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
    ...                                                  torch.nn.ReLU()))
    >>> names
    ['0', '2']
    """
    layers: list[nn.Module] = []
    names: list[str] = []
    for pos, (name, layer) in enumerate(_leaves(model)):
        if not isinstance(layer, SUPPORTED_LAYERS):
            supported = ", ".join(t.__name__ for t in SUPPORTED_LAYERS)
            raise UnsupportedLayerError(
                f"layer {pos} ({name or type(model).__name__!s}: {type(layer).__name__}) "
                f"cannot be inverted; supported layer types are {supported}. "
                "Models with skip connections or other layer types are not a plain stack."
            )
        if isinstance(layer, nn.Identity):
            continue
        if isinstance(layer, nn.BatchNorm2d):
            if not layers or not isinstance(layers[-1], nn.Conv2d):
                raise UnsupportedLayerError(
                    f"layer {pos} ({name}: BatchNorm2d) does not follow a Conv2d, so it "
                    "cannot be folded; only Conv2d -> BatchNorm2d pairs are supported."
                )
            layers[-1] = fold_batchnorm(layers[-1], layer)
            continue
        if isinstance(layer, nn.Linear) and _needs_flatten(layers):
            layers.append(nn.Flatten())
            names.append("<flatten>")
        layer = copy.deepcopy(layer)
        if isinstance(layer, nn.ReLU):
            layer.inplace = False
        layers.append(layer)
        names.append(name)
    return layers, names


def _needs_flatten(layers: list[nn.Module]) -> bool:
    """True when a Linear appended now would follow a spatial feature map."""
    for layer in reversed(layers):
        if isinstance(layer, (nn.Flatten, nn.Linear)):
            return False
        if isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d,
                              nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            return True
    return False
