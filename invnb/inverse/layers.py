"""A CNN seen as a flat stack of invertible layers, and its recorded forward pass.

The layer-wise inverse walks a network from the top down, one leaf layer at a
time, so it needs the network as a plain sequence: Conv2d, ReLU, pooling,
Flatten, Dropout and Linear layers applied one after another. `LayerStack`
builds that sequence from a torchvision VGG or any `nn.Sequential`-style
model, folds BatchNorm into the convolution before it, and records every
layer's input during a forward pass.

Before building it, the model's ``forward`` is traced with `torch.fx`
(symbolically, without running it) and refused unless it is a plain chain:
each leaf layer called once, in registration order, on the previous one's
output, with only flatten/reshape between them. Skip connections (ResNet),
functional ops in ``forward`` (``torch.sigmoid``, ``F.relu``) and unsupported
layer types are named in the error. A ``forward`` that cannot be traced
(e.g. it branches on the input's shape, like VDSR's input check) is checked
one submodule down instead; its top-level order is then only verified by
running it (`LayerStack.check_matches`).
"""

from __future__ import annotations

import copy
import operator
from typing import Iterator

import torch
from torch import nn

__all__ = ["SUPPORTED_LAYERS", "UnsupportedLayerError", "check_plain_chain", "fold_batchnorm", "LayerStack"]


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


def _op_text(node) -> str:
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
        return f"`{node.target}`" if node.op == "call_module" else _op_text(node)

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
                    f"{where}functional op {_op_text(node)} in forward"
                    + (f" (applied to the output of {describe(current)})" if uses_chain else "")
                    + f": the layer stack only sees modules, so it would skip this op; {SUPPORTED_TEXT}."
                )
            if node.args[:1] != (current,):
                raise UnsupportedLayerError(
                    f"{where}{_op_text(node)} is not applied to the previous layer's output; {SUPPORTED_TEXT}."
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


class LayerStack(nn.Module):
    """A model as a flat sequence of invertible leaf layers.

    Parameters
    ----------
    model : nn.Module
        A torchvision VGG (any depth, with or without BatchNorm) or a model whose
        forward pass applies its leaf modules one after another in the order they
        were registered. A Flatten is inserted where a Linear layer follows a 4-D
        feature map (torchvision's VGG flattens inside ``forward``). The model is
        not modified: layers are copied, BatchNorm2d is folded into the Conv2d
        before it and in-place ReLUs become out-of-place.

    Attributes
    ----------
    layers : nn.ModuleList
        The leaf layers in forward order.
    names : list of str
        Qualified name of each layer in the original model (``"features.0"``);
        inserted flattens are named ``"<flatten>"`` and folded convs keep the conv's name.
    traced : bool
        True when the model's whole ``forward`` was traced and checked to be a
        plain chain; False when it could not be traced (its children were
        checked instead), so only `check_matches` can confirm the top-level order.

    Raises
    ------
    UnsupportedLayerError
        If the model is not a plain chain (skip connection, functional op in
        ``forward``, a layer called twice or out of order) or a leaf layer's type
        cannot be inverted; the message names the cause.

    Examples
    --------
    >>> stack = LayerStack(model)
    >>> acts = stack.record(x)          # acts[k] is the input of stack.layers[k]
    >>> torch.allclose(stack.forward_from(3, acts[3]), model(x), atol=1e-5)
    True
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.traced = check_plain_chain(model)
        leaves = list(_leaves(model))
        layers: list[nn.Module] = []
        names: list[str] = []
        for pos, (name, layer) in enumerate(leaves):
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
        if not layers:
            raise UnsupportedLayerError(f"{type(model).__name__} has no layers to invert.")
        self.layers = nn.ModuleList(layers)
        self.names = names
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def __len__(self) -> int:
        return len(self.layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply every layer; equals the original model's output in eval mode."""
        return self.forward_from(0, x)

    def forward_from(self, k: int, h: torch.Tensor) -> torch.Tensor:
        """Apply ``layers[k:]`` to `h`, a tensor shaped like the input of layer `k`."""
        if not 0 <= k <= len(self.layers):
            raise IndexError(f"layer index {k} out of range 0..{len(self.layers)}")
        for layer in self.layers[k:]:
            h = layer(h)
        return h

    @torch.no_grad()
    def record(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Forward `x` and keep every layer's input.

        Parameters
        ----------
        x : torch.Tensor
            Batch of inputs, e.g. ``(N, C, H, W)``.

        Returns
        -------
        list of torch.Tensor
            ``len(layers) + 1`` tensors: ``acts[0] = x`` and
            ``acts[k + 1] = layers[k](acts[k])``; the last is the model output.
        """
        acts = [x]
        for layer in self.layers:
            acts.append(layer(acts[-1]))
        return acts

    def check_matches(self, model: nn.Module, x: torch.Tensor, rtol: float = 1e-4) -> None:
        """Raise ValueError unless the stack reproduces ``model(x)`` (eval mode).

        Catches models whose ``forward`` is not the plain sequence of their layers
        (skip connections, reordered modules, functional ops in ``forward``).
        """
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                ref = model(x)
                try:
                    out = self(x)
                except RuntimeError as exc:  # the flattened stack cannot even run: not a plain chain
                    raise ValueError(
                        f"{type(model).__name__}'s forward pass is not the plain sequence of its layers: "
                        f"applied one after another, they fail ({exc}). {SUPPORTED_TEXT}."
                    ) from exc
        finally:
            model.train(was_training)
        if ref.shape != out.shape or not torch.allclose(
            out, ref, rtol=rtol, atol=rtol * float(ref.abs().max().clamp_min(1e-12))
        ):
            raise ValueError(
                f"{type(model).__name__}'s forward pass is not the plain sequence of its layers "
                "(the layer stack gives a different output). The layer-wise inverse needs a "
                "feed-forward stack of Conv2d/ReLU/pooling/Flatten/Dropout/Linear layers applied "
                "in registration order, like torchvision's VGG."
            )


    def check_input(self, x: torch.Tensor) -> None:
        """Raise ValueError/TypeError with a clear message unless ``x`` fits the model.

        Checks, without running the model (shapes are propagated on the
        ``meta`` device): a floating tensor with the weights' dtype (the device
        is not checked: `LayerwiseInverse.invert` moves the stack to the input's),
        the number of dimensions and channels the first layer takes, and a
        size every layer can process (e.g. not an 8x8 image for a network
        that pools 32x). The size check is cached per ``(C, H, W)`` and dtype.

        Parameters
        ----------
        x : torch.Tensor
            The batch to invert, ``(N, C, H, W)`` for a convolutional model.
        """
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"the input must be a torch.Tensor, got {type(x).__name__}")
        param = next(self.parameters(), None)
        key = (tuple(x.shape[1:]), x.dtype)
        if not x.is_floating_point():
            raise TypeError(f"the input must be a floating tensor, got dtype {x.dtype}; convert it with x.float()")
        if param is not None and x.dtype != param.dtype:
            raise TypeError(
                f"the input is {x.dtype} but the model's weights are {param.dtype}; convert the input with "
                f"x.to({param.dtype}) (or the model with model.to({x.dtype}) before building the inverse)"
            )
        first = self.layers[0]
        if isinstance(first, nn.Conv2d):
            if x.ndim != 4:
                raise ValueError(
                    f"the model starts with a Conv2d and takes (N, C, H, W) batches; got shape {tuple(x.shape)}"
                    + (" (add a batch dimension with x.unsqueeze(0))" if x.ndim == 3 else "")
                )
            if x.shape[1] != first.in_channels:
                raise ValueError(
                    f"the model takes {first.in_channels}-channel images (layer `{self.names[0]}`: {first}); "
                    f"the input has {x.shape[1]} channels (shape {tuple(x.shape)})"
                )
        if x.shape[0] == 0:
            raise ValueError(f"the input batch is empty (shape {tuple(x.shape)})")
        if getattr(self, "_input_ok", None) == key:
            return  # this shape and dtype fitted before
        h = torch.empty((1, *x.shape[1:]), dtype=x.dtype, device="meta")
        for k, layer in enumerate(self.layers):
            params = {n: torch.empty_like(p, device="meta") for n, p in layer.named_parameters()}
            try:
                h = torch.func.functional_call(layer, params, (h,))
            except RuntimeError as exc:
                size = "x".join(str(d) for d in x.shape[2:])
                raise ValueError(
                    f"an input of shape {tuple(x.shape)} does not fit the model: layer {k} (`{self.names[k]}`: "
                    f"{type(layer).__name__}) cannot take its input of shape {tuple(h.shape)} ({exc}). "
                    + (f"The image ({size}) is too small or of the wrong size for this model; "
                       f"{self.min_size_text(x)}" if x.ndim == 4 else "")
                ) from exc
            if h.numel() == 0:
                raise ValueError(
                    f"an input of shape {tuple(x.shape)} is too small for the model: layer {k} "
                    f"(`{self.names[k]}`: {type(layer).__name__}) outputs an empty tensor {tuple(h.shape)}; "
                    f"{self.min_size_text(x)}"
                )
        self._input_ok = key

    def _fits(self, shape: tuple, dtype: torch.dtype) -> bool:
        h = torch.empty(shape, dtype=dtype, device="meta")
        try:
            for layer in self.layers:
                params = {n: torch.empty_like(p, device="meta") for n, p in layer.named_parameters()}
                h = torch.func.functional_call(layer, params, (h,))
                if h.numel() == 0:
                    return False
        except RuntimeError:
            return False
        return True

    def min_size_text(self, x: torch.Tensor) -> str:
        """Say which square sizes (up to 1024) the model takes, for error messages."""
        c = x.shape[1]
        ok = [s for s in (1, 2, 4, 8, 16, 32, 64, 128, 224, 256, 512, 1024)
              if self._fits((1, c, s, s), x.dtype)]
        if not ok:
            return "no square size up to 1024x1024 fits it"
        lo = max([s for s in (1, 2, 4, 8, 16, 32, 64, 128, 224, 256, 512, 1024) if s < ok[0]], default=0)
        while lo + 1 < ok[0] and self._fits((1, c, ok[0] - 1, ok[0] - 1), x.dtype):  # refine downwards
            ok[0] -= 1
        fixed = len(ok) == 1 or not self._fits((1, c, ok[0] + 1, ok[0] + 1), x.dtype)
        return (f"it takes exactly {ok[0]}x{ok[0]} inputs" if fixed
                else f"it needs inputs of at least {ok[0]}x{ok[0]}")


def _needs_flatten(layers: list[nn.Module]) -> bool:
    """True when a Linear appended now would follow a spatial feature map."""
    for layer in reversed(layers):
        if isinstance(layer, (nn.Flatten, nn.Linear)):
            return False
        if isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d,
                              nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            return True
    return False
