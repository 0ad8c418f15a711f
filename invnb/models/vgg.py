"""torchvision's VGGs with ImageNet weights from a local file or the torch hub cache.

:func:`load_torchvision` is the loader itself, for any torchvision classifier family
(:func:`invnb.models.load_resnet` uses it for the ResNets).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import torch
import torchvision
from torch import nn

__all__ = ["VGG_NAMES", "load_torchvision", "load_vgg", "torchvision_weights_file", "vgg_weights_file"]


#: Model names :func:`load_vgg` accepts.
VGG_NAMES = (
    "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
)


PathLike = Union[str, os.PathLike]


def vgg_weights_file(name: str = "vgg16", weights: str = "IMAGENET1K_V1") -> Path:
    """Where :func:`load_vgg` looks for torchvision's weights of ``name``.

    Parameters
    ----------
    name : str, default "vgg16"
        One of :data:`VGG_NAMES`.
    weights : str, default "IMAGENET1K_V1"
        A member name of the torchvision weights enum (e.g. ``"DEFAULT"``).

    Returns
    -------
    pathlib.Path
        ``torch.hub.get_dir()/checkpoints/<file name of the weights' URL>``
        (it honours ``$TORCH_HOME``), whether or not the file exists.
    """
    return torchvision_weights_file(name, weights, VGG_NAMES)


def torchvision_weights_file(name: str, weights: str, names: tuple[str, ...]) -> Path:
    """Where torchvision's weights `weights` of model `name` (one of `names`) sit in the torch hub cache.

    Examples
    --------
    >>> torchvision_weights_file("vgg11", "IMAGENET1K_V1", VGG_NAMES).name
    'vgg11-8a719046.pth'
    """
    return _hub_file(_weights_enum(name, weights, names))


def load_vgg(
    name: str = "vgg16",
    weights: str | PathLike | None = "IMAGENET1K_V1",
    device: str | torch.device = "cpu",
    *,
    download: bool = False,
    progress: bool = False,
) -> nn.Module:
    """Build a torchvision VGG in eval mode, without downloading unless asked.

    Parameters
    ----------
    name : str, default "vgg16"
        One of :data:`VGG_NAMES`: vgg11, vgg13, vgg16, vgg19 and their
        ``_bn`` variants.
    weights : str, os.PathLike or None, default "IMAGENET1K_V1"
        A torchvision weights name (``"IMAGENET1K_V1"``, ``"DEFAULT"``, ...),
        read from the torch hub cache (see :func:`vgg_weights_file`); or the
        path of a local state-dict file (loaded with ``weights_only=True``;
        ``num_classes`` follows its last layer); or None for random weights
        (tests, timing).
    device : str or torch.device, default "cpu"
        Where the model's parameters go.
    download : bool, default False
        Fetch missing torchvision weights into the hub cache (checking the
        hash in the file name). Off by default: nothing downloads implicitly.
    progress : bool, default False
        Show a progress bar while downloading.

    Returns
    -------
    torch.nn.Module
        A ``torchvision.models.VGG`` in eval mode on ``device``. It expects
        ImageNet-normalised 224x224 inputs (any size >= 32 works).

    Raises
    ------
    ValueError
        Unknown ``name`` or weights name.
    FileNotFoundError
        The weights file is neither cached nor given locally (the message
        names the file, where to put it and how to download it).

    Examples
    --------
    >>> vgg = load_vgg("vgg16", weights=None)  # random weights, no download
    >>> vgg = load_vgg("vgg16", weights="/path/to/vgg16-397923af.pth")  # doctest: +SKIP
    """
    return load_torchvision(name, weights, device, download=download, progress=progress, names=VGG_NAMES,
                            head="classifier.6.weight")


def load_torchvision(
    name: str,
    weights: str | PathLike | None,
    device: str | torch.device = "cpu",
    *,
    download: bool = False,
    progress: bool = False,
    names: tuple[str, ...] = VGG_NAMES,
    head: str = "classifier.6.weight",
    loader: str = "load_vgg",
) -> nn.Module:
    """Build torchvision classifier `name` in eval mode, without downloading unless asked.

    Parameters
    ----------
    name : str
        One of `names` (a ``torchvision.models`` builder).
    weights, device, download, progress
        As in :func:`load_vgg`.
    names : tuple of str
        The model names this family accepts (for the message of an unknown name).
    head : str
        State-dict key of the last Linear layer's weight (``num_classes`` follows a local
        file's): ``"classifier.6.weight"`` (VGG), ``"fc.weight"`` (ResNet).
    loader : str
        The function a missing-weights message tells the user to call (``"load_vgg"``).

    Returns
    -------
    torch.nn.Module
        In eval mode on `device`.

    Examples
    --------
    >>> load_torchvision("vgg11", None).training
    False
    """
    builder = _builder(name, names)
    if weights is None:
        return builder(weights=None).to(device).eval()

    if isinstance(weights, str) and _is_enum_name(name, weights, names):
        enum = _weights_enum(name, weights, names)
        file = _hub_file(enum)
        if not file.is_file():
            if not download:
                raise FileNotFoundError(
                    f"the {name} weights {enum} are not in the torch hub cache: missing file "
                    f"{file}. Either download {enum.url} and put it at that path (the "
                    f"directory honours $TORCH_HOME), pass a local file with "
                    f"{loader}({name!r}, weights='/path/to/{file.name}'), or call "
                    f"{loader}({name!r}, weights={weights!r}, download=True) to fetch it."
                )
            state = torch.hub.load_state_dict_from_url(
                enum.url, map_location=device, progress=progress, check_hash=True,
                weights_only=True,
            )
        else:
            state = read_state_dict(file, device)
        num_classes = len(enum.meta.get("categories") or range(1000))
        return _build_loaded(builder, num_classes, state, file, device)

    if isinstance(weights, (str, os.PathLike)):
        path = Path(weights).expanduser()
        if not path.is_file():
            members = ", ".join(_enum_names(name, names))
            raise FileNotFoundError(
                f"weights={str(weights)!r} is neither a torchvision weights name for {name} "
                f"({members}) nor an existing file; give a valid name or the path of a saved state dict."
            )
        state = read_state_dict(path, device)
        return _build_loaded(builder, _num_classes(state, path, head), state, path, device)

    raise TypeError(
        f"weights must be a torchvision weights name, a file path or None, got {type(weights).__name__}"
    )


def _builder(name: str, names: tuple[str, ...] = VGG_NAMES):
    if not isinstance(name, str) or name not in names:
        raise ValueError(f"unknown model name {name!r}; choose one of {', '.join(names)}")
    return getattr(torchvision.models, name)


def _enum_names(name: str, names: tuple[str, ...] = VGG_NAMES) -> list[str]:
    _builder(name, names)
    return list(torchvision.models.get_model_weights(name).__members__)


def _is_enum_name(name: str, weights: str, names: tuple[str, ...] = VGG_NAMES) -> bool:
    return weights in _enum_names(name, names)


def _weights_enum(name: str, weights: str, names: tuple[str, ...] = VGG_NAMES):
    members = _enum_names(name, names)
    if weights not in members:
        raise ValueError(
            f"unknown weights {weights!r} for {name}; choose one of {', '.join(members)}, "
            "a file path, or None"
        )
    return torchvision.models.get_model_weights(name)[weights]


def _hub_file(enum) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(enum.url)


def read_state_dict(path: Path, device) -> dict:
    from invnb.datasets.download import require_torch_file

    require_torch_file(path, "a state dict written by torch.save(model.state_dict(), path)")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # pickle errors, truncated files, ...
        raise ValueError(
            f"could not read a state dict from {path} with torch.load(weights_only=True): {err}. "
            "Expected a file written by torch.save(model.state_dict(), path)."
        ) from err
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(
            f"{path} does not hold a state dict (a dict of tensors); save one with "
            "torch.save(model.state_dict(), path)."
        )
    return state


def _num_classes(state: dict, path: Path, head: str = "classifier.6.weight") -> int:
    weight = state.get(head)
    if weight is None or weight.dim() != 2:
        family = "VGG" if head == "classifier.6.weight" else "classifier"
        raise ValueError(
            f"{path} is not a torchvision {family} state dict: it has no 2-D {head!r}."
        )
    return int(weight.shape[0])


def _build_loaded(builder, num_classes: int, state: dict, path: Path, device) -> nn.Module:
    # Build on the meta device and adopt the loaded tensors: skips the random
    # initialisation of ~10^8 parameters that would be overwritten anyway.
    with torch.device("meta"):
        model = builder(weights=None, num_classes=num_classes)
    load_weights_into(model, state, path, assign=True)
    return model.to(device).eval()


def load_weights_into(model: nn.Module, state: dict, path: Path, assign: bool = False) -> None:
    try:
        model.load_state_dict(state, strict=True, assign=assign)
    except RuntimeError as err:
        raise ValueError(
            f"the state dict in {path} does not fit {type(model).__name__}: {err}"
        ) from err
