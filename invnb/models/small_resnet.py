"""The embedded small ResNet: residual blocks with BatchNorm for the 64x64 synthetic shapes.

``SmallResNet`` is built from torchvision's own ``BasicBlock`` and follows
torchvision's ``ResNet.forward`` (stem conv-BN-ReLU-max pool, residual
stages, global average pool, flatten, linear), at the size of the embedded
``SmallVGG``: a 3x3 stem (no 7x7 stride-2 conv, the images are 64 px), one
stage of ``blocks[0]`` blocks at ``widths[0]`` channels and one of
``blocks[1]`` blocks at ``widths[1]``, whose first block halves the size
with a 1x1 conv + BatchNorm projection shortcut. A trained checkpoint ships
in ``invnb/data/`` (made by ``scripts/train_embedded.py --model smallresnet``)
and :func:`load_embedded_resnet` loads it, checking its digest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock

from invnb.datasets.download import sha256sum
from invnb.datasets.synthetic import CLASS_NAMES
from invnb.models.vgg import PathLike, load_weights_into, read_state_dict
from invnb.paths import DATA_DIR

__all__ = ["SmallResNet", "EMBEDDED_RESNET_CHECKPOINT", "load_embedded_resnet"]

#: The shipped checkpoint of the embedded ResNet (a state dict; its JSON sits beside it).
EMBEDDED_RESNET_CHECKPOINT = DATA_DIR / "embedded_resnet.pt"


class SmallResNet(nn.Module):
    """A small ResNet with BatchNorm, structured like torchvision's ResNet.

    ``conv1`` (3x3, stride 1) -> ``bn1`` -> ``relu`` -> ``maxpool`` (2x2) ->
    ``layer1`` (``blocks[0]`` BasicBlocks, ``widths[0]`` channels) ->
    ``layer2`` (``blocks[1]`` BasicBlocks, ``widths[1]`` channels; the first
    has stride 2 and a 1x1 conv + BatchNorm projection shortcut) ->
    ``avgpool`` (global) -> ``torch.flatten(x, 1)`` -> ``fc``.

    Parameters
    ----------
    num_classes : int, default 7
        Number of logits (the classes of :mod:`invnb.datasets.synthetic`).
    widths : (int, int), default (24, 48)
        Channels of the two stages.
    blocks : (int, int), default (1, 2)
        BasicBlocks per stage.
    in_channels : int, default 3
        Input channels.

    Notes
    -----
    At 64x64 input the stages run at 32x32 and 16x16; the receptive field of
    an output of ``layer2`` is 40 px. Inputs are normalised with
    :func:`invnb.datasets.normalize`.

    Examples
    --------
    >>> model = SmallResNet().eval()
    >>> model(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 7])
    """

    def __init__(self, num_classes: int = len(CLASS_NAMES), widths: Sequence[int] = (24, 48),
                 blocks: Sequence[int] = (1, 2), in_channels: int = 3):
        super().__init__()
        widths, blocks = tuple(widths), tuple(blocks)
        for name, value in (("num_classes", num_classes), ("in_channels", in_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name, value in (("widths", widths), ("blocks", blocks)):
            if len(value) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
                raise ValueError(f"{name} must be two positive ints (one per stage), got {value!r}")
        self.num_classes, self.widths, self.blocks, self.in_channels = num_classes, widths, blocks, in_channels
        w0, w1 = widths
        self.conv1 = nn.Conv2d(in_channels, w0, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(w0)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.layer1 = nn.Sequential(*[BasicBlock(w0, w0) for _ in range(blocks[0])])
        down = nn.Sequential(nn.Conv2d(w0, w1, kernel_size=1, stride=2, bias=False), nn.BatchNorm2d(w1))
        self.layer2 = nn.Sequential(BasicBlock(w0, w1, stride=2, downsample=down),
                                    *[BasicBlock(w1, w1) for _ in range(blocks[1] - 1)])
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(w1, num_classes)
        for m in self.modules():  # torchvision's ResNet initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def architecture(self) -> dict:
        """Constructor arguments that rebuild this architecture (JSON-friendly)."""
        return {"num_classes": self.num_classes, "widths": list(self.widths), "blocks": list(self.blocks),
                "in_channels": self.in_channels}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` for normalised images ``x`` ``(N, C, H, W)``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def load_embedded_resnet(path: PathLike | None = None, device: str | torch.device = "cpu",
                         check_digest: bool = True) -> SmallResNet:
    """Load the embedded, trained :class:`SmallResNet` in eval mode.

    Parameters
    ----------
    path : str or os.PathLike, optional
        A state dict saved by ``scripts/train_embedded.py --model smallresnet``;
        default ``invnb/data/embedded_resnet.pt``. The architecture and the
        file's sha256 are read from the JSON file of the same name beside it
        (required for the shipped checkpoint; without one, another file is
        loaded into :class:`SmallResNet`'s default architecture).
    device : str or torch.device, default "cpu"
        Where the model's parameters go.
    check_digest : bool, default True
        Refuse a file whose sha256 differs from the one its JSON records.

    Returns
    -------
    SmallResNet
        In eval mode (BatchNorm uses its running statistics).

    Raises
    ------
    FileNotFoundError
        The checkpoint, or the shipped checkpoint's JSON, is missing (the message says how to restore it).
    ValueError
        The digest does not match, or the file is not a state dict of this architecture.

    Examples
    --------
    >>> from invnb.datasets import make_shapes, normalize
    >>> model = load_embedded_resnet()
    >>> logits = model(normalize(make_shapes(4, seed=123).images))
    """
    path = Path(EMBEDDED_RESNET_CHECKPOINT if path is None else path)
    meta = path.with_suffix(".json")
    shipped = path.resolve() == EMBEDDED_RESNET_CHECKPOINT.resolve()
    for f in (path, meta) if shipped else (path,):
        if not f.is_file():
            raise FileNotFoundError(
                f"embedded ResNet file not found: {f}. The shipped one is inside the package (invnb/data/); "
                f"restore it (git checkout invnb/data/{f.name}) or recreate it with "
                "`python scripts/train_embedded.py --model smallresnet`.")
    record = json.loads(meta.read_text()) if meta.is_file() else {}
    if check_digest and "sha256" in record:
        digest = sha256sum(path)
        if digest != record.get("sha256"):
            raise ValueError(f"{path} has sha256 {digest}, but {meta.name} records {record.get('sha256')}: the "
                             "file was changed or replaced; restore it, or pass check_digest=False for your own "
                             "weights.")
    model = SmallResNet(**record.get("architecture", {}))
    load_weights_into(model, read_state_dict(path, device), path)
    return model.to(device).eval()
