"""A CNN seen as a flat stack of invertible layers, and its recorded forward pass.

The layer-wise inverse walks a network from the top down, one layer at a time,
so it needs the network as a sequence: Conv2d, ReLU, pooling, Flatten, Dropout
and Linear layers applied one after another. `LayerStack` builds that sequence
from a torchvision VGG or any `nn.Sequential`-style model (checked to be a plain
chain by :func:`invnb.inverse.chain.check_plain_chain`), folds BatchNorm into the
convolution before it, and records every layer's input during a forward pass. A
model whose ``forward`` adds two computed tensors (a residual network) is built
by :func:`invnb.inverse.residual.residual_layers` instead: in call order, each
residual sum one layer; branchings other than residual sums are refused there.
A ``forward`` that cannot be traced is checked one submodule down; its top-level
order is then only verified by running it (`LayerStack.check_matches`).
"""

from __future__ import annotations

import torch
from torch import nn

from invnb.inverse.chain import (
    SUPPORTED_LAYERS,
    SUPPORTED_TEXT,
    UnsupportedLayerError,
    check_plain_chain,
    fold_batchnorm,
    plain_layers,
)
from invnb.inverse.residual import residual_layers

__all__ = ["SUPPORTED_LAYERS", "UnsupportedLayerError", "check_plain_chain", "fold_batchnorm", "LayerStack"]


class LayerStack(nn.Module):
    """A model as a flat sequence of invertible leaf layers.

    Parameters
    ----------
    model : nn.Module
        A torchvision VGG (any depth, with or without BatchNorm) or a model whose
        forward pass applies its leaf modules one after another in the order they
        were registered, or a residual network (e.g. torchvision's ResNet), built in
        call order with each residual sum one layer
        (:func:`invnb.inverse.residual.residual_layers`). A Flatten is inserted where
        a Linear layer follows a 4-D feature map (torchvision's VGG flattens inside
        ``forward``). The model is not modified: layers are copied, BatchNorm2d is
        folded into the Conv2d before it and in-place ReLUs become out-of-place.

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
        If the model is neither a plain chain nor a residual network (a branching
        other than a residual sum, a functional op in ``forward``, a layer called
        twice or out of order) or a leaf layer's type cannot be inverted; the
        message names the cause.

    Examples
    --------
    >>> stack = LayerStack(model)
    >>> acts = stack.record(x)          # acts[k] is the input of stack.layers[k]
    >>> torch.allclose(stack.forward_from(3, acts[3]), model(x), atol=1e-5)
    True
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        built = residual_layers(model)  # None unless forward adds two computed tensors
        if built is None:
            self.traced = check_plain_chain(model)
            layers, names = plain_layers(model)
        else:
            self.traced = True
            layers, names = built
        if not layers:
            raise UnsupportedLayerError(f"{type(model).__name__} has no layers to invert.")
        self.layers = nn.ModuleList(layers)
        self.names = names
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def block_outputs(self) -> list[int]:
        """Indices k whose layer input ``acts[k]`` is a block's output: where chapter 01 draws the features.

        A block ends after each max pool (VGG), after a residual network's pooled stem, and
        after the ReLU of the last residual block of each stage (the block before one with a
        projection shortcut, and the last block).

        Returns
        -------
        list of int
            Increasing indices in ``1 .. len(layers)``.

        Examples
        --------
        >>> LayerStack(model).block_outputs()   # the embedded SmallVGG: after its 4 max pools
        [5, 10, 13, 16]
        """
        from invnb.inverse.residual import PooledConv, ResidualSum

        layers = list(self.layers)
        sums = [k for k, layer in enumerate(layers) if isinstance(layer, ResidualSum)]
        out = []
        for k, layer in enumerate(layers):
            if isinstance(layer, (nn.MaxPool2d, PooledConv)):
                out.append(k + 1)
            elif isinstance(layer, nn.ReLU) and k > 0 and isinstance(layers[k - 1], ResidualSum):
                later = [j for j in sums if j > k]
                if not later or len(layers[later[0]].shortcut) > 0:
                    out.append(k + 1)
        return out

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
