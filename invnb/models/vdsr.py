"""VDSR (Kim et al., CVPR 2016) and safe loaders for its public checkpoints.

The network has 20 3x3 convolutions with 64 channels and no biases, a ReLU
after every convolution but the last, and predicts the *residual*: the
super-resolved luminance is ``x + model(x)`` where ``x`` is the bicubic
upscaling in [0, 1].

Two sets of weights: the paper's (a download, :func:`download_vdsr_weights`)
and an embedded one that ships in ``invnb/data/`` (:func:`load_embedded_vdsr`:
pytorch-vdsr's trained weights, MIT licence, converted once to a plain state
dict by ``scripts/convert_embedded_vdsr.py``).

Checkpoints come from the internet and unpickling can run arbitrary code.
The paper's plain state dict is read with ``torch.load(weights_only=True)``.
A pytorch-vdsr checkpoint (a pickled ``{"epoch": ..., "model": vdsr.Net}``,
often a Python 2 pickle in torch's legacy format, which ``weights_only``
cannot parse) is read by torch's loader with a restricted
``pickle.Unpickler`` whose ``find_class`` admits *only* the names such a file
contains - tensor rebuild functions, ``collections.OrderedDict``,
``vdsr.Net``/``vdsr.Conv_ReLU_Block`` and torch's Conv2d/ReLU/Sequential,
the modules mapped to inert stand-in classes that merely store their
attributes; the weights are then collected from the stand-ins. Any other
global (``os.system``, ``builtins.eval``, ...) is refused before anything
is called.

References
----------
Kim, Lee, Lee, "Accurate Image Super-Resolution Using Very Deep
Convolutional Networks", CVPR 2016. Kwon et al., IEEE TNNLS 2021 (the
released weights, ``models/vdsr.pth`` of github.com/hjkwonispl/inv_cnn).
"""

from __future__ import annotations

import json
import os
import pickle
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from invnb.datasets.download import (
    default_data_dir,
    download,
    sha256sum,
)
from invnb.models.checkpoints import (
    NET_NAMES,
    StandIn,
    UnsafeCheckpointError,
    collect_state_dict,
    require_checkpoint_file,
    safe_torch_load,
)
from invnb.paths import DATA_DIR

__all__ = ["VDSR_URL", "VDSR_SHA256", "EMBEDDED_VDSR_CHECKPOINT", "VDSR", "load_vdsr_state_dict", "load_pytorch_vdsr_checkpoint", "load_vdsr", "load_embedded_vdsr", "download_vdsr_weights"]


#: The paper's released weights (raw file of the authors' repository at the
#: commit that added them) and their SHA-256.
VDSR_URL = (
    "https://raw.githubusercontent.com/hjkwonispl/inv_cnn/"
    "a2f77a979a3b0476dd834e3d98ec172ec44485ee/models/vdsr.pth"
)


VDSR_SHA256 = "bba8b44e2d124bafe7928964925f205a115580a401dfe7bd4cca7fd79bfa8500"


#: The embedded VDSR: pytorch-vdsr's trained weights (MIT licence, epoch 50),
#: converted once by ``scripts/convert_embedded_vdsr.py`` into a plain state
#: dict; provenance and SHA-256 in the JSON beside it, licence notice too.
EMBEDDED_VDSR_CHECKPOINT = DATA_DIR / "vdsr_pytorch_vdsr_epoch50.pt"


EMBEDDED_VDSR_META = DATA_DIR / "vdsr_pytorch_vdsr_epoch50.json"


EMBEDDED_VDSR_LICENSE = DATA_DIR / "vdsr_pytorch_vdsr_LICENSE"


class _ConvReLU(nn.Module):
    """3x3 convolution (no bias) followed by a ReLU; keys ``conv``, ``relu``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False)
        # Not in-place: the inverse engine records every layer's input.
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x))


class VDSR(nn.Module):
    """VDSR returning the residual only.

    Its leaf modules, in registration order, are exactly the forward pass:
    ``input`` (Conv2d 1->64), ``relu``, ``residual_layer.{k}.conv`` and
    ``residual_layer.{k}.relu`` for ``k = 0..depth-3``, ``output`` (Conv2d
    64->1, no ReLU). This is what :class:`invnb.inverse.LayerStack` relies on.
    State-dict keys: ``input.weight``, ``residual_layer.{k}.conv.weight``,
    ``output.weight``.

    Parameters
    ----------
    depth : int, default 20
        Number of convolutions (>= 2).
    channels : int, default 64
        Width of the hidden layers.

    Examples
    --------
    >>> model = load_vdsr("data/downloads/vdsr/vdsr.pth")  # doctest: +SKIP
    >>> hr = model.super_resolve(x)  # x: (N, 1, H, W) bicubic Y in [0, 1]  # doctest: +SKIP
    """

    def __init__(self, depth: int = 20, channels: int = 64) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"depth must be at least 2 (input and output convolutions), got {depth}")
        self.input = nn.Conv2d(1, channels, kernel_size=3, padding=1, bias=False)
        self.relu = nn.ReLU(inplace=False)
        self.residual_layer = nn.Sequential(*[_ConvReLU(channels) for _ in range(depth - 2)])
        self.output = nn.Conv2d(channels, 1, kernel_size=3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predict the residual.

        Parameters
        ----------
        x : torch.Tensor
            ``(N, 1, H, W)`` bicubic-upscaled luminance in [0, 1].

        Returns
        -------
        torch.Tensor
            ``(N, 1, H, W)`` residual; the HR estimate is ``x + forward(x)``.
        """
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"VDSR expects (N, 1, H, W) luminance in [0, 1], got shape {tuple(x.shape)}")
        return self.output(self.residual_layer(self.relu(self.input(x))))

    def super_resolve(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x + self(x)``, the super-resolved luminance (not clipped)."""
        return x + self(x)


def load_vdsr_state_dict(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> "OrderedDict[str, torch.Tensor]":
    """Read the paper's VDSR state dict (``models/vdsr.pth``).

    Parameters
    ----------
    path : str or os.PathLike
        File written by ``torch.save(model.state_dict())``.
    map_location : str or torch.device, default "cpu"
        Passed to ``torch.load``.

    Returns
    -------
    collections.OrderedDict
        ``{"input.weight": (64, 1, 3, 3), "residual_layer.{k}.conv.weight":
        (64, 64, 3, 3), "output.weight": (1, 64, 3, 3)}`` float tensors.

    Raises
    ------
    UnsafeCheckpointError
        The file references anything but tensors and containers.
    """
    path = Path(path)
    require_checkpoint_file(path)
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(
            f"refused to load {path} as a plain state dict: {err}. If it is a pytorch-vdsr "
            "checkpoint, use load_pytorch_vdsr_checkpoint (or load_vdsr, which detects it)."
        ) from err
    except (RuntimeError, EOFError) as err:  # truncated or damaged file
        raise ValueError(
            f"{path} could not be read as a PyTorch checkpoint ({type(err).__name__}: {err}); "
            "it may be truncated or damaged: download it again"
        ) from err
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(
            f"{path} does not hold a state dict (a mapping of names to tensors) but a "
            f"{type(obj).__name__}; for a pytorch-vdsr checkpoint use load_pytorch_vdsr_checkpoint"
        )
    return OrderedDict(obj)


def load_pytorch_vdsr_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> "OrderedDict[str, torch.Tensor]":
    """Rebuild the state dict of a pytorch-vdsr checkpoint without its code.

    Such a file (github.com/twtygqyy/pytorch-vdsr, ``model_epoch_*.pth``)
    pickles ``{"epoch": int, "model": vdsr.Net}``; the class lives in a
    module named ``vdsr`` that need not be importable here. Only the names
    listed in the module docstring are admitted, mapped to inert stand-ins.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint (zip or legacy torch format).
    map_location : str or torch.device, default "cpu"
        Passed to ``torch.load``.

    Returns
    -------
    collections.OrderedDict
        The network's weights under VDSR's keys (identical in both
        projects). Note that pytorch-vdsr's ``Net`` adds the input to its
        output while :class:`VDSR` returns the residual: the weights are the
        same, ``VDSR.super_resolve`` gives pytorch-vdsr's output.

    Raises
    ------
    UnsafeCheckpointError
        Anything else is referenced (for example ``os.system``); nothing
        from the file is executed.
    ValueError
        The file is safe but not a pytorch-vdsr checkpoint.
    """
    path = Path(path)
    return _state_from_pytorch_vdsr(safe_torch_load(path, map_location), path)


def _state_from_pytorch_vdsr(obj: object, path: Path) -> "OrderedDict[str, torch.Tensor]":
    model = obj.get("model") if isinstance(obj, Mapping) else obj
    if not isinstance(model, StandIn) or model.pickled_name not in NET_NAMES:
        raise ValueError(
            f"{path} is not a pytorch-vdsr checkpoint: expected a dict with 'model' holding a "
            f"vdsr.Net, got {type(obj).__name__} with keys "
            f"{sorted(obj) if isinstance(obj, Mapping) else '-'}"
        )
    return collect_state_dict(model)


def load_vdsr(
    path: str | os.PathLike,
    map_location: str | torch.device = "cpu",
) -> VDSR:
    """Build a :class:`VDSR` in eval mode from either checkpoint format.

    Parameters
    ----------
    path : str or os.PathLike
        The paper's state dict or a pytorch-vdsr checkpoint (detected).
    map_location : str or torch.device, default "cpu"
        Device of the returned model.

    Returns
    -------
    VDSR
        Eval mode, ``requires_grad`` left on (the inverse engine needs none
        of the parameter gradients but does not mind).

    Raises
    ------
    UnsafeCheckpointError
        The file references code outside the allow-list.
    ValueError
        Unknown format, or the weights do not fit VDSR (missing/unexpected
        keys or shapes are listed).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist; fetch the paper's weights with invnb.models.download_vdsr_weights()"
        )
    obj = safe_torch_load(path, map_location)
    if isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state = OrderedDict(obj)
    elif isinstance(obj, Mapping) and isinstance(obj.get("model"), StandIn):
        state = _state_from_pytorch_vdsr(obj, path)
    elif isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        state = OrderedDict(obj["state_dict"])
    else:
        raise ValueError(f"{path} holds neither a VDSR state dict nor a pytorch-vdsr checkpoint")
    depth = 2 + len({k.split(".")[1] for k in state if k.startswith("residual_layer.")})
    channels = state["input.weight"].shape[0] if "input.weight" in state else 64
    model = VDSR(depth=depth, channels=channels)
    missing, unexpected = (set(model.state_dict()) - set(state)), (set(state) - set(model.state_dict()))
    if missing or unexpected:
        raise ValueError(
            f"{path} does not fit VDSR: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{path} does not fit VDSR: {err}") from err
    return model.to(map_location).eval()


def load_embedded_vdsr(map_location: str | torch.device = "cpu") -> VDSR:
    """The VDSR that ships with invnb: pytorch-vdsr's weights, no download.

    Reads :data:`EMBEDDED_VDSR_CHECKPOINT` with ``torch.load(weights_only=True)``
    after checking its SHA-256 against the provenance file beside it. These are
    not the paper's weights (:func:`download_vdsr_weights`) but the MIT-licensed
    re-implementation the paper's VDSR code builds on
    (github.com/twtygqyy/pytorch-vdsr, ``model/model_epoch_50.pth``).

    Parameters
    ----------
    map_location : str or torch.device, default "cpu"
        Device of the returned model.

    Returns
    -------
    VDSR
        Eval mode; input ``(N, 1, H, W)`` bicubic Y in [0, 1], output the residual.

    Raises
    ------
    FileNotFoundError
        The checkpoint or its provenance file is missing (an incomplete checkout).
    ValueError
        The checkpoint's SHA-256 differs from the recorded one.
    """
    for path in (EMBEDDED_VDSR_CHECKPOINT, EMBEDDED_VDSR_META):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: the embedded VDSR ships inside the package (invnb/data/)")
    expected = json.loads(EMBEDDED_VDSR_META.read_text())["sha256"]
    digest = sha256sum(EMBEDDED_VDSR_CHECKPOINT)
    if digest != expected:
        raise ValueError(
            f"{EMBEDDED_VDSR_CHECKPOINT.name} has sha256 {digest}, but {EMBEDDED_VDSR_META.name} records "
            f"{expected}; restore the file from git or rerun scripts/convert_embedded_vdsr.py"
        )
    state = torch.load(EMBEDDED_VDSR_CHECKPOINT, map_location="cpu", weights_only=True)
    model = VDSR()
    model.load_state_dict(state, strict=True)
    return model.to(map_location).eval()


def download_vdsr_weights(
    data_dir: str | os.PathLike | None = None, progress: bool = True
) -> Path:
    """Fetch the paper's VDSR weights (resumable, SHA-256 checked).

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        Data directory; the file lands in ``<data_dir>/vdsr/vdsr.pth``
        (default :func:`invnb.datasets.default_data_dir`).
    progress : bool, default True
        Progress bar.

    Returns
    -------
    pathlib.Path
        Path of the verified file (nothing is fetched when it is already
        there).
    """
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    return download(VDSR_URL, root / "vdsr" / "vdsr.pth", VDSR_SHA256, progress=progress)
