"""Loading third-party VDSR checkpoints without running their pickled code."""

from __future__ import annotations

import pickle
import types
import warnings
from collections import OrderedDict
from pathlib import Path

import torch

from invnb.datasets.download import (
    require_torch_file,
)

__all__ = ["UnsafeCheckpointError"]


# --------------------------------------------------------------------------
# Safe loading
# --------------------------------------------------------------------------
class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint references code that a VDSR checkpoint never contains."""


class StandIn:
    """Inert placeholder for a pickled module: keeps its attributes, runs nothing."""

    pickled_name = "?"


def _stand_in(name: str) -> type:
    return type(f"StandIn[{name}]", (StandIn,), {"pickled_name": name, "__module__": __name__})


def _no_backend(*args, **kwargs):
    """Stand-in for ``torch.nn.backends.thnn._get_thnn_function_backend`` (old pickles)."""
    return None


NET_NAMES = ("vdsr.Net",)


_MODULE_NAMES = (
    "vdsr.Net",
    "vdsr.Conv_ReLU_Block",
    "torch.nn.modules.conv.Conv2d",
    "torch.nn.modules.activation.ReLU",
    "torch.nn.modules.container.Sequential",
)


_STAND_INS = {name: _stand_in(name) for name in _MODULE_NAMES}


def _reconstructor(cls, base, state):
    """Stand-in for ``copyreg._reconstructor`` limited to our stand-ins (protocol 0/1 pickles)."""
    if not (isinstance(cls, type) and issubclass(cls, StandIn)) or base is not object or state is not None:
        raise UnsafeCheckpointError(f"refused copyreg._reconstructor call for {cls!r}")
    return cls.__new__(cls)


def _rebuild_parameter(data, requires_grad, backward_hooks, *state):
    """Parameters become plain tensors; saved hooks and state are dropped, never run."""
    return data


def _parameter(data=None, requires_grad=True):
    """Stand-in for ``nn.Parameter(data, requires_grad)`` as old (torch < 0.4) files call it."""
    return data


#: Every global a VDSR checkpoint may reference, mapped to what it becomes.
#: Storage classes (``torch.FloatStorage``, ...) are resolved by torch's own
#: loader before this table is consulted.
_ALLOWED_GLOBALS = {
    **_STAND_INS,
    "collections.OrderedDict": OrderedDict,
    "builtins.set": set,
    "builtins.object": object,
    "copyreg._reconstructor": _reconstructor,
    "torch._utils._rebuild_tensor": torch._utils._rebuild_tensor,
    "torch._utils._rebuild_tensor_v2": torch._utils._rebuild_tensor_v2,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
    "torch.nn.parameter.Parameter": _parameter,
    "torch.nn.backends.thnn._get_thnn_function_backend": _no_backend,
}


_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose globals are limited to :data:`_ALLOWED_GLOBALS`.

    ``find_class`` is the only door through which a pickle reaches code
    (REDUCE/NEWOBJ/BUILD can only call what it returned), so refusing every
    other name here makes the payload of a crafted file unreachable. See
    https://docs.python.org/3/library/pickle.html#restricting-globals
    """

    def find_class(self, module: str, name: str):
        module = _PY2_MODULES.get(module, module)
        full = f"{module}.{name}"
        if full in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[full]
        raise UnsafeCheckpointError(
            f"the checkpoint references {full}, which a VDSR checkpoint never contains "
            "(allowed: tensors, OrderedDict, vdsr.Net, vdsr.Conv_ReLU_Block, torch.nn "
            "Conv2d/ReLU/Sequential); loading stopped before anything from the file ran. "
            "The file may be malicious or not a VDSR checkpoint: do not open it with plain "
            "torch.load unless you trust its source."
        )


def _restricted_load(file, **kwargs):
    return _RestrictedUnpickler(file, **kwargs).load()


# torch.load(pickle_module=...) wants a module-like object with Unpickler/load.
_restricted_pickle = types.ModuleType("invnb_restricted_pickle")


_restricted_pickle.Unpickler = _RestrictedUnpickler


_restricted_pickle.load = _restricted_load


def require_checkpoint_file(path: Path) -> None:
    require_torch_file(path, "the paper's VDSR state dict or a pytorch-vdsr model_epoch_*.pth")


def safe_torch_load(path: Path, map_location) -> object:
    """Load ``path`` through torch's loader with the restricted unpickler."""
    require_checkpoint_file(path)
    with warnings.catch_warnings():
        # Old files embed module source code that torch compares with the
        # class; our stand-ins have none, which only triggers a warning.
        warnings.filterwarnings("ignore", message="Couldn't retrieve source code")
        try:
            return torch.load(path, map_location=map_location, pickle_module=_restricted_pickle, weights_only=False)
        except UnsafeCheckpointError as err:
            raise UnsafeCheckpointError(f"refused to load {path}: {err}") from None
        except (RuntimeError, EOFError, pickle.UnpicklingError) as err:  # truncated or damaged file
            raise ValueError(
                f"{path} could not be read as a PyTorch checkpoint ({type(err).__name__}: {err}); "
                "it may be truncated or damaged: download it again"
            ) from err


def collect_state_dict(obj: StandIn, prefix: str = "") -> "OrderedDict[str, torch.Tensor]":
    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    attrs = vars(obj)
    for group in ("_parameters", "_buffers"):
        for key, value in (attrs.get(group) or {}).items():
            if value is None:
                continue
            if not isinstance(value, torch.Tensor):
                raise ValueError(f"{prefix + key} holds a {type(value).__name__}, not a tensor")
            state[prefix + key] = value.detach().clone()
    for key, child in (attrs.get("_modules") or {}).items():
        if child is None:
            continue
        if not isinstance(child, StandIn):
            raise UnsafeCheckpointError(f"unexpected object {type(child).__name__} at {prefix + key}")
        state.update(collect_state_dict(child, prefix + key + "."))
    return state
