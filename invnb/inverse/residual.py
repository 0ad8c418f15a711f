"""Residual networks as a stack of invertible layers: residual sums as single layers.

A residual block computes ``y = relu(S(x) + F(x))``: a branch ``F`` (for
torchvision's ``BasicBlock``: conv-BN-ReLU-conv-BN; ``Bottleneck``: three
convs) and a shortcut ``S`` (the identity, or a 1x1 conv + BN where the shape
changes) read the same input and are added. The layer-wise inverse walks a
network one layer at a time, so this module turns the *sum*
``z = S(x) + F(x)`` into one layer, `ResidualSum`, whose inverse is a single
problem over the block input ``x`` (:class:`invnb.inverse.LayerwiseInverse`
solves it with the same objective, box and mask as a convolution;
``book/method_residual.md`` states it and its deviations). The ReLU after the sum stays a separate layer of the
stack, as after a convolution.

`residual_layers` reads a model's ``forward`` with `torch.fx` (symbolically,
without running it) and, when it contains residual sums, builds the flat
layer list in *call* order: plain layers (BatchNorm folded into the conv
before it, as in a plain chain), flatten ops as ``nn.Flatten``, and one
`ResidualSum` for each fork whose two paths meet again in an addition. Every
other branching (concatenation, multiplication as in attention or gating,
a skip inside a residual branch, an op applied to both paths) and every
unsupported layer or functional op is refused, naming the cause.
"""

from __future__ import annotations

import copy
import operator
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from invnb.inverse.chain import (
    SUPPORTED_LAYERS,
    SUPPORTED_TEXT,
    UnsupportedLayerError,
    flatten_dims_problem,
    fold_batchnorm,
    op_text,
)

__all__ = ["CompositeLayer", "ResidualSum", "PooledConv", "residual_layers", "RESIDUAL_TEXT", "BRANCH_LAYERS"]

#: Layer types allowed inside a residual branch or shortcut (BatchNorm2d only right after a Conv2d).
BRANCH_LAYERS = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.Identity, nn.Dropout)

RESIDUAL_TEXT = (
    "residual sums are supported too: a fork whose two paths (plain chains of Conv2d, BatchNorm2d right "
    "after a Conv2d, ReLU, MaxPool2d, AvgPool2d, Identity or Dropout, one of them possibly empty: the "
    "identity) meet again in one addition, as in torchvision's ResNet"
)

_ADD_FUNCS = (operator.add, operator.iadd, torch.add)
_ADD_METHODS = ("add", "add_", "__add__", "__iadd__")
_RELU_FUNCS = (F.relu, torch.relu, torch.relu_)
_RELU_METHODS = ("relu", "relu_")
_FLATTEN_FUNCS = (torch.flatten,)
_FLATTEN_METHODS = ("flatten", "view", "reshape")
_SHAPE_METHODS = ("size", "dim")


class CompositeLayer(nn.Module):
    """A few layers the inverse treats as one: its data term is their composition as the network computes it.

    Subclasses define ``forward`` and `linear_part`; :class:`invnb.inverse.LayerwiseInverse`
    solves them like a convolution (same box, mask, penalty and target scaling).

    Examples
    --------
    >>> isinstance(ResidualSum(nn.Sequential(nn.Conv2d(2, 2, 1))), CompositeLayer)
    True
    """

    def linear_part(self, v: torch.Tensor) -> torch.Tensor:
        """A linear map whose operator norm bounds (or estimates) the layer's gain, for the first step size."""
        raise NotImplementedError


class PooledConv(CompositeLayer):
    """``maxpool(relu(conv(x)))`` as one layer: a residual network's stem.

    The inverse matches the target at the pool's output through the real
    max pool, instead of max-unpooling it first: an unpooled target is zero
    at 3 of every 4 positions, which the image-level convolution of an
    attenuated image cannot reproduce (see `residual_layers`).

    Parameters
    ----------
    conv : nn.Conv2d
        The convolution (BatchNorm folded into it).
    relu : nn.ReLU
        The ReLU after it.
    pool : nn.MaxPool2d
        The max pool after the ReLU.

    Examples
    --------
    >>> stem = PooledConv(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
    >>> stem(torch.zeros(1, 3, 8, 8)).shape
    torch.Size([1, 4, 4, 4])
    """

    def __init__(self, conv: nn.Conv2d, relu: nn.ReLU, pool: nn.MaxPool2d):
        super().__init__()
        self.conv, self.relu, self.pool = conv, relu, pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``maxpool(relu(conv(x)))``."""
        return self.pool(self.relu(self.conv(x)))

    def linear_part(self, v: torch.Tensor) -> torch.Tensor:
        """The convolution without bias, whose operator norm sets the first step size.

        ReLU does not raise the gain; a max pool with overlapping windows (torchvision's 3x3,
        stride 2) can, by up to the number of windows sharing an input, and the solver's
        backtracking corrects a step that is too long.
        """
        c = self.conv
        return F.conv2d(v, c.weight, None, c.stride, c.padding, c.dilation, c.groups)


class ResidualSum(CompositeLayer):
    """The sum ``z = F(x) + S(x)`` of a residual block, as one layer.

    Parameters
    ----------
    branch : nn.Sequential
        ``F``: the residual branch, a plain chain of `BRANCH_LAYERS` with
        every BatchNorm already folded into its conv.
    shortcut : nn.Sequential
        ``S``: the other path; empty for the identity shortcut, a (folded)
        1x1 convolution where the shape changes.

    Notes
    -----
    The ReLU after the sum (``y = relu(z)``) is not part of this layer: the
    stack keeps it as the next layer, so the inverse treats it as after a
    convolution (folded into the data term, the target masked by the
    forward pass's active set).

    Examples
    --------
    >>> block = ResidualSum(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
    ...                                   nn.Conv2d(4, 4, 3, padding=1)), nn.Sequential())
    >>> block(torch.zeros(1, 4, 8, 8)).shape
    torch.Size([1, 4, 8, 8])
    """

    def __init__(self, branch: nn.Sequential, shortcut: Optional[nn.Sequential] = None):
        super().__init__()
        self.branch = branch
        self.shortcut = nn.Sequential() if shortcut is None else shortcut
        for part in (self.branch, self.shortcut):
            for layer in part:
                if not isinstance(layer, BRANCH_LAYERS) or isinstance(layer, nn.BatchNorm2d):
                    raise UnsupportedLayerError(
                        f"a ResidualSum takes Conv2d, ReLU, MaxPool2d, AvgPool2d, Identity and Dropout layers "
                        f"(BatchNorm folded into its conv), got {type(layer).__name__}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``F(x) + S(x)``, shaped like the block's output."""
        return self.branch(x) + self.shortcut(x)

    def linear_part(self, v: torch.Tensor) -> torch.Tensor:
        """``A v`` of the block linearised with every ReLU on: convolutions without bias, pools as they are.

        Used only for a step-size estimate (its operator norm), which must
        not depend on any image: it is the same map for every sample.
        """
        return _linear_chain(self.branch, v) + _linear_chain(self.shortcut, v)

    def extra_repr(self) -> str:
        return "identity shortcut" if len(self.shortcut) == 0 else "projection shortcut"


def _linear_chain(chain: nn.Sequential, v: torch.Tensor) -> torch.Tensor:
    for layer in chain:
        if isinstance(layer, nn.Conv2d):
            v = F.conv2d(v, layer.weight, None, layer.stride, layer.padding, layer.dilation, layer.groups)
        elif isinstance(layer, (nn.ReLU, nn.Dropout, nn.Identity)):
            continue
        else:
            v = layer(v)
    return v


# --------------------------------------------------------------------------- reading forward
def _is_add(node) -> bool:
    return (node.op == "call_function" and node.target in _ADD_FUNCS) or (
        node.op == "call_method" and node.target in _ADD_METHODS)


def _is_relu_op(node) -> bool:
    return (node.op == "call_function" and node.target in _RELU_FUNCS) or (
        node.op == "call_method" and node.target in _RELU_METHODS)


def _is_flatten_op(node) -> bool:
    return (node.op == "call_function" and node.target in _FLATTEN_FUNCS) or (
        node.op == "call_method" and node.target in _FLATTEN_METHODS)


def _shape_nodes(graph) -> set:
    """Nodes that compute shapes, not tensors: ``x.size(0)``, ``x.shape[0]``, arithmetic on them."""
    shape = set()
    for n in graph.nodes:
        if (n.op == "call_method" and n.target in _SHAPE_METHODS) or (
                n.op == "call_function" and n.target is getattr):
            shape.add(n)
        elif n.op == "call_function" and n.all_input_nodes and all(a in shape for a in n.all_input_nodes):
            shape.add(n)
    return shape


def _is_noop(node) -> bool:
    return node.op == "call_method" and node.target == "contiguous"


def _tensor_args(node, shape=frozenset()) -> list:
    """The tensor nodes a node reads, in order and with repeats (also inside lists: ``torch.cat([a, b])``)."""
    import torch.fx as fx

    found: list = []
    fx.node.map_arg((node.args, node.kwargs), lambda a: found.append(a) or a)
    return [a for a in found if a not in shape]


def _has_residual_sum(graph) -> bool:
    """Whether some addition adds two computed tensors (not a tensor and a constant or a size)."""
    shape = _shape_nodes(graph)
    return any(_is_add(n) and len(_tensor_args(n, shape)) == 2 for n in graph.nodes)


def residual_layers(model: nn.Module) -> Optional[tuple[list[nn.Module], list[str]]]:
    """The model as a flat list of invertible layers, with each residual sum as one `ResidualSum`.

    Parameters
    ----------
    model : nn.Module
        The model; only its ``forward`` code is traced (`torch.fx`), it is not
        run and not modified (layers are copied, BatchNorm folded, ReLUs made
        out-of-place).

    Returns
    -------
    (layers, names) or None
        None when ``forward`` cannot be traced or adds no two computed
        tensors (no residual sum): the plain-chain rules of
        :class:`invnb.inverse.LayerStack` apply then. Otherwise the layers in the
        order ``forward`` calls them and their names: a module's qualified
        name (``"layer1.0.relu"``; a second call of one module gets
        ``"#2"`` appended), ``"<flatten>"`` for a flatten op, ``"<relu>"``
        for a functional ReLU, and for a `ResidualSum` the longest common
        prefix of its modules' names (``"layer1.0"``).

    Raises
    ------
    UnsupportedLayerError
        Naming the cause: a branching that is not a residual sum (a
        concatenation, a product as in attention, more than two users of
        one tensor, a skip connection inside a residual branch), a
        functional op other than flatten/ReLU, an unsupported layer type,
        a BatchNorm2d that does not follow a Conv2d.

    Examples
    --------
    >>> import torchvision
    >>> layers, names = residual_layers(torchvision.models.resnet18())
    >>> names[:3]
    ['conv1+relu+maxpool', 'layer1.0', 'layer1.0.relu']
    """
    import torch.fx as fx

    try:
        graph = fx.Tracer().trace(model)
    except Exception:  # noqa: BLE001 - not traceable: the plain-chain rules decide
        return None
    if not _has_residual_sum(graph):
        return None
    return _Builder(model, graph).build()


class _Builder:
    """Walk a traced graph that contains residual sums and collect its layers."""

    def __init__(self, model: nn.Module, graph):
        self.modules = dict(model.named_modules())
        self.graph = graph
        self.label = type(model).__name__
        self.layers: list[nn.Module] = []
        self.names: list[str] = []
        self.calls: dict[str, int] = {}
        self.shape = _shape_nodes(graph)

    # -- messages
    def refuse(self, why: str):
        raise UnsupportedLayerError(f"{self.label}: {why}; {SUPPORTED_TEXT}; {RESIDUAL_TEXT}.")

    @staticmethod
    def describe(node) -> str:
        if node.op == "call_module":
            return f"`{node.target}`"
        if node.op == "placeholder":
            return "the input"
        return op_text(node)

    def tensor_users(self, node) -> list:
        return [u for u in node.users if u not in self.shape]

    # -- the walk
    def build(self) -> tuple[list[nn.Module], list[str]]:
        placeholders = [n for n in self.graph.nodes if n.op == "placeholder"]
        if len(placeholders) != 1:
            self.refuse(f"forward takes {len(placeholders)} inputs; the layer-wise inverse needs one input tensor")
        for n in self.graph.nodes:
            if n.op == "get_attr":
                self.refuse(f"forward reads the tensor `{n.target}` directly (not through a layer)")
        current = placeholders[0]
        while True:
            users = self.tensor_users(current)
            if not users:
                self.refuse(f"the output of {self.describe(current)} is not used")
            if len(users) == 1 and users[0].op == "output":
                break
            if any(u.op == "output" for u in users):
                self.refuse(f"the output of {self.describe(current)} is returned and also used further")
            if len(users) == 1:
                current = self.step(users[0], current)
            elif len(users) == 2:
                current = self.residual(current, users)
            else:
                names = ", ".join(self.describe(u) for u in users)
                self.refuse(f"the output of {self.describe(current)} is used by {names}: the chain branches "
                            f"{len(users)} ways (a residual sum has two paths)")
        return self.layers, self.names

    def name_of(self, node) -> str:
        name = str(node.target)
        self.calls[name] = self.calls.get(name, 0) + 1
        return name if self.calls[name] == 1 else f"{name}#{self.calls[name]}"

    def check_input(self, node, prev, where=""):
        if _tensor_args(node, self.shape) != [prev] or (node.args[:1] != (prev,)):
            self.refuse(f"{where}{self.describe(node)} is not applied to the output of {self.describe(prev)} alone")

    def step(self, node, prev):
        """One node of the main chain; returns the new current node."""
        if _is_add(node):
            args = _tensor_args(node, self.shape)
            if len(args) == 2:  # both operands are prev: x + x
                self.refuse(f"{self.describe(node)} adds the output of {self.describe(prev)} to itself")
            self.refuse(f"{self.describe(node)} adds a constant to the output of {self.describe(prev)}")
        if _is_noop(node):
            self.check_input(node, prev)
            return node
        layer = self.layer_of(node, prev, where="")
        self.check_input(node, prev)
        if isinstance(layer, nn.BatchNorm2d):
            if not self.layers or not isinstance(self.layers[-1], nn.Conv2d):
                self.refuse(f"{self.describe(node)} (BatchNorm2d) does not follow a Conv2d, so it cannot be "
                            "folded; only Conv2d -> BatchNorm2d pairs are supported")
            self.layers[-1] = fold_batchnorm(self.layers[-1], layer)
            return node
        if isinstance(layer, nn.Identity):
            return node
        name = self.name_of(node) if node.op == "call_module" else (
            "<flatten>" if isinstance(layer, nn.Flatten) else "<relu>")
        if isinstance(layer, nn.MaxPool2d) and len(self.layers) >= 2 and isinstance(self.layers[-1], nn.ReLU) \
                and isinstance(self.layers[-2], nn.Conv2d):
            relu, conv = self.layers.pop(), self.layers.pop()
            relu_name, conv_name = self.names.pop(), self.names.pop()
            layer, name = PooledConv(conv, relu, layer), f"{conv_name}+{relu_name}+{name}"
        self.layers.append(layer)
        self.names.append(name)
        return node

    def layer_of(self, node, prev, where: str, allowed=SUPPORTED_LAYERS):
        """A copy of the layer a node applies (a flatten or ReLU op becomes its module)."""
        if node.op == "call_module":
            layer = self.modules[node.target]
            if not isinstance(layer, allowed):
                self.refuse(f"{where}`{node.target}` is a {type(layer).__name__}, which the layer-wise inverse "
                            "cannot invert" + (" inside a residual branch" if allowed is BRANCH_LAYERS else ""))
            layer = copy.deepcopy(layer)
            if isinstance(layer, nn.ReLU):
                layer.inplace = False
            return layer
        if _is_relu_op(node):
            return nn.ReLU()
        if _is_flatten_op(node) and allowed is SUPPORTED_LAYERS:
            problem = flatten_dims_problem(node)
            if problem:
                self.refuse(f"{where}{problem}")
            return nn.Flatten()
        uses = f" (applied to the output of {self.describe(prev)})" if prev in node.all_input_nodes else ""
        self.refuse(f"{where}functional op {op_text(node)} in forward{uses}: the layer stack only sees modules "
                    "(and flatten / ReLU ops), so it would skip this op")

    def residual(self, fork, users):
        """The two paths from `fork` must meet in one addition; returns that addition."""
        paths, ends = [], []
        for u in users:
            path, node = [], u
            while len(_tensor_args(node, self.shape)) < 2:  # stop where two tensors meet
                if node.op == "output":
                    self.refuse(f"the output of {self.describe(fork)} is returned and also used further")
                path.append(node)
                nxt = self.tensor_users(node)
                if len(nxt) != 1:
                    self.refuse(f"the output of {self.describe(node)}, inside the branch from {self.describe(fork)}, "
                                f"is used by {' and '.join(self.describe(n) for n in nxt) or 'nothing'} (a second "
                                "fork inside a residual branch: a nested skip connection or an attention/gating "
                                "product)")
                node = nxt[0]
            paths.append(path)
            ends.append(node)
        for end in ends:
            if not _is_add(end):
                why = {"cat": " (a concatenation)", "mul": " (a product, as in attention or gating)"}.get(
                    getattr(end.target, "__name__", str(end.target)).strip("_"), "")
                self.refuse(f"the paths from {self.describe(fork)} are joined by {self.describe(end)}{why}; only an "
                            "addition of two paths is a residual sum")
        if ends[0] is not ends[1]:
            self.refuse(f"the two paths from {self.describe(fork)} end in different additions "
                        f"({self.describe(ends[0])}, {self.describe(ends[1])}): they do not join each other")
        join = ends[0]
        if len(_tensor_args(join, self.shape)) != 2:
            self.refuse(f"{self.describe(join)} after the fork at {self.describe(fork)} has other operands")
        if _scales(join):
            self.refuse(f"{self.describe(join)} scales one operand (alpha): only a plain sum is a residual sum")
        if not paths[0] and not paths[1]:
            self.refuse(f"{self.describe(join)} adds the output of {self.describe(fork)} to itself")
        chains = []
        for path in paths:
            chains.append(self.path_layers(fork, path))
        # the longer path is the branch F, the other the shortcut S (the sum is the same)
        branch, shortcut = sorted(chains, key=len, reverse=True)
        block = ResidualSum(nn.Sequential(*branch), nn.Sequential(*shortcut))
        mods = [str(n.target) for p in paths for n in p if n.op == "call_module"]
        self.layers.append(block)
        self.names.append(_common_prefix(mods) or "<residual>")
        return join

    def path_layers(self, fork, path) -> list[nn.Module]:
        where = f"in the residual branch from {self.describe(fork)}: "
        layers: list[nn.Module] = []
        prev = fork
        for node in path:
            if _is_add(node):  # cannot happen: the path stops at an addition
                self.refuse(f"{where}a second addition")
            if _is_noop(node):
                self.check_input(node, prev, where)
                prev = node
                continue
            if node.op != "call_module" and not _is_relu_op(node):
                if _is_flatten_op(node):
                    self.refuse(f"{where}{op_text(node)} (a reshape inside a residual branch)")
                self.refuse(f"{where}functional op {op_text(node)} (applied to the output of "
                            f"{self.describe(prev)}): the layer stack only sees modules (and ReLU ops)")
            layer = self.layer_of(node, prev, where, allowed=BRANCH_LAYERS)
            self.check_input(node, prev, where)
            if isinstance(layer, nn.BatchNorm2d):
                if not layers or not isinstance(layers[-1], nn.Conv2d):
                    self.refuse(f"{where}{self.describe(node)} (BatchNorm2d) does not follow a Conv2d, so it "
                                "cannot be folded")
                layers[-1] = fold_batchnorm(layers[-1], layer)
            elif not isinstance(layer, (nn.Identity, nn.Dropout)):
                layers.append(layer)
            prev = node
        return layers


def _scales(node) -> bool:
    """Whether an addition node scales its second operand (``torch.add(a, b, alpha=2)``)."""
    alpha = node.kwargs.get("alpha", 1)
    return alpha != 1


def _common_prefix(names: list[str]) -> str:
    """Longest common dotted prefix: ``["layer1.0.conv1", "layer1.0.bn1"]`` -> ``"layer1.0"``."""
    if not names:
        return ""
    parts = [n.split(".") for n in names]
    common = []
    for level in zip(*parts):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    if len(common) == min(len(p) for p in parts) and len(set(names)) == 1:
        common = common[:-1]  # one module: its parent
    return ".".join(common)
