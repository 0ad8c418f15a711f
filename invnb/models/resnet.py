"""torchvision's ResNets with ImageNet weights from a local file or the torch hub cache, and one loader
for every ImageNet classifier the chapters take (VGGs and ResNets)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from invnb.models.vgg import VGG_NAMES, PathLike, load_torchvision, load_vgg, torchvision_weights_file

__all__ = ["IMAGENET_NAMES", "RESNET_NAMES", "load_imagenet_classifier", "load_resnet", "resnet_weights_file",
           "without_identity_shortcuts"]

#: Model names :func:`load_resnet` accepts.
RESNET_NAMES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")

#: Model names :func:`load_imagenet_classifier` accepts.
IMAGENET_NAMES = VGG_NAMES + RESNET_NAMES


def resnet_weights_file(name: str = "resnet50", weights: str = "IMAGENET1K_V1") -> Path:
    """Where :func:`load_resnet` looks for torchvision's weights of ``name``.

    Parameters
    ----------
    name : str, default "resnet50"
        One of :data:`RESNET_NAMES`.
    weights : str, default "IMAGENET1K_V1"
        A member name of the torchvision weights enum (``"IMAGENET1K_V2"``, ``"DEFAULT"``, ...).

    Returns
    -------
    pathlib.Path
        ``torch.hub.get_dir()/checkpoints/<file name of the weights' URL>`` (it honours
        ``$TORCH_HOME``), whether or not the file exists.

    Examples
    --------
    >>> resnet_weights_file("resnet50").name
    'resnet50-0676ba61.pth'
    """
    return torchvision_weights_file(name, weights, RESNET_NAMES)


def load_resnet(
    name: str = "resnet50",
    weights: str | PathLike | None = "IMAGENET1K_V1",
    device: str | torch.device = "cpu",
    *,
    download: bool = False,
    progress: bool = False,
) -> nn.Module:
    """Build a torchvision ResNet in eval mode, without downloading unless asked.

    Parameters
    ----------
    name : str, default "resnet50"
        One of :data:`RESNET_NAMES`.
    weights : str, os.PathLike or None, default "IMAGENET1K_V1"
        A torchvision weights name (``"IMAGENET1K_V1"``, ``"IMAGENET1K_V2"``, ``"DEFAULT"``, ...),
        read from the torch hub cache (see :func:`resnet_weights_file`); or the path of a local
        state-dict file (loaded with ``weights_only=True``; ``num_classes`` follows its
        ``fc.weight``); or None for random weights (tests, timing).
    device : str or torch.device, default "cpu"
        Where the model's parameters go.
    download : bool, default False
        Fetch missing torchvision weights into the hub cache (checking the hash in the file
        name). Off by default: nothing downloads implicitly.
    progress : bool, default False
        Show a progress bar while downloading.

    Returns
    -------
    torch.nn.Module
        A ``torchvision.models.ResNet`` in eval mode on ``device``. It expects
        ImageNet-normalised 224x224 inputs (any size >= 32 works); the layer-wise inverse
        takes it as a residual network (:mod:`invnb.inverse.residual`).

    Raises
    ------
    ValueError
        Unknown ``name`` or weights name, or a file that is not a ResNet state dict.
    FileNotFoundError
        The weights file is neither cached nor given locally (the message names the file,
        the URL to download it from and where to put it).

    Examples
    --------
    >>> resnet = load_resnet("resnet18", weights=None)  # random weights, no download
    >>> resnet = load_resnet("resnet50", weights="/path/to/resnet50-0676ba61.pth")  # doctest: +SKIP
    """
    return load_torchvision(name, weights, device, download=download, progress=progress, names=RESNET_NAMES,
                            head="fc.weight", loader="load_resnet")


def load_imagenet_classifier(
    name: str = "vgg16",
    weights: str | PathLike | None = "IMAGENET1K_V1",
    device: str | torch.device = "cpu",
    *,
    download: bool = False,
    progress: bool = False,
) -> nn.Module:
    """:func:`invnb.models.load_vgg` or :func:`load_resnet`, by name (one of :data:`IMAGENET_NAMES`).

    Parameters and errors are theirs.

    Examples
    --------
    >>> type(load_imagenet_classifier("resnet18", weights=None)).__name__
    'ResNet'
    """
    if name in RESNET_NAMES:
        return load_resnet(name, weights, device, download=download, progress=progress)
    if name in VGG_NAMES:
        return load_vgg(name, weights, device, download=download, progress=progress)
    raise ValueError(f"unknown model name {name!r}; choose one of {', '.join(IMAGENET_NAMES)}")


def _basic_block_without_identity(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return block.relu(block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x))))))


def _bottleneck_without_identity(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = block.relu(block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x))))))
    return block.relu(block.bn3(block.conv3(out)))


def without_identity_shortcuts(model: nn.Module) -> nn.Module:
    """A copy of a ResNet whose blocks with an identity shortcut lose it (an ablation).

    Each torchvision ``BasicBlock`` or ``Bottleneck`` without a ``downsample`` then computes its
    branch alone, ``relu(F(x))``: a plain chain. Blocks with a projection shortcut are unchanged.

    Parameters
    ----------
    model : torch.nn.Module
        A ResNet built from torchvision's blocks (``SmallResNet``, ``torchvision.models.resnet18()``, ...).

    Returns
    -------
    torch.nn.Module
        A deep copy; `model` is not changed.

    Raises
    ------
    ValueError
        `model` has no block with an identity shortcut.

    Examples
    --------
    >>> from invnb.models import SmallResNet
    >>> model = SmallResNet().eval()
    >>> plain = without_identity_shortcuts(model)
    >>> x = torch.rand(1, 24, 8, 8)
    >>> block = model.layer1[0]
    >>> branch = block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x)))))
    >>> bool(torch.allclose(plain.layer1[0](x), torch.relu(branch)))
    True
    """
    import copy
    import types

    from torchvision.models.resnet import BasicBlock, Bottleneck

    model = copy.deepcopy(model)
    changed = 0
    for block in model.modules():
        if isinstance(block, (BasicBlock, Bottleneck)) and block.downsample is None:
            plain = _bottleneck_without_identity if isinstance(block, Bottleneck) else _basic_block_without_identity
            block.forward = types.MethodType(plain, block)
            changed += 1
    if not changed:
        raise ValueError(f"{type(model).__name__} has no torchvision BasicBlock or Bottleneck with an identity "
                         "shortcut; pass a ResNet built from torchvision's blocks")
    return model
