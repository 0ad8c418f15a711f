"""Models the inverse runs on: the embedded SmallVGG and torchvision's VGGs.

``SmallVGG`` is a VGG-shaped classifier for the 64x64 images of
:mod:`invnb.synthetic`; a trained checkpoint ships in ``invnb/data/`` (made by
``scripts/train_embedded.py``) and :func:`load_embedded_model` loads it.
:func:`load_vgg` builds torchvision's VGG11/13/16/19 (and ``_bn`` variants)
with ImageNet weights from the torch hub cache or a local file, and never
downloads unless asked to.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence, Union

import torch
import torchvision
from torch import nn

from .paths import DATA_DIR
from .synthetic import CLASS_NAMES, IMAGE_SIZE

__all__ = [
    "SmallVGG",
    "EMBEDDED_CHECKPOINT",
    "VGG_NAMES",
    "load_embedded_model",
    "load_vgg",
    "vgg_weights_file",
]

#: Default ``features`` configuration of :class:`SmallVGG`: output channels
#: of each 3x3 conv (each followed by a ReLU), ``"M"`` = 2x2 max pooling.
DEFAULT_CFG: tuple[Union[int, str], ...] = (16, 16, "M", 32, 32, "M", 64, "M", 64, "M")

#: The shipped checkpoint of the embedded model (a state dict).
EMBEDDED_CHECKPOINT = DATA_DIR / "embedded_vgg.pt"

#: Model names :func:`load_vgg` accepts.
VGG_NAMES = (
    "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
)

PathLike = Union[str, os.PathLike]


class SmallVGG(nn.Module):
    """A small VGG-style classifier, structured exactly like torchvision's VGG.

    ``features`` (3x3 Conv2d + ReLU blocks and 2x2 MaxPool2d) -> ``avgpool``
    (``nn.AdaptiveAvgPool2d`` to the final feature size, so the identity at
    the design input size, as VGG's is at 224x224) -> ``torch.flatten(x, 1)``
    -> ``classifier`` (Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear).

    Parameters
    ----------
    num_classes : int, default 7
        Number of outputs (logits); 7 = the classes of :mod:`invnb.synthetic`.
    cfg : sequence of int or "M", default (16, 16, "M", 32, 32, "M", 64, "M", 64, "M")
        Output channels of each conv, ``"M"`` for a 2x2 max pooling.
    hidden : int, default 128
        Width of the two hidden Linear layers.
    dropout : float, default 0.5
        Dropout probability in the classifier (inactive in eval mode).
    image_size : int, default 64
        Input side length the network is designed for; sets the avgpool
        output size ``image_size / 2**(number of "M")``.
    in_channels : int, default 3
        Input channels.
    batch_norm : bool, default False
        Add ``BatchNorm2d`` after each conv, like torchvision's ``vgg*_bn``.

    Notes
    -----
    ReLUs are not in-place, so recorded activations are never overwritten.
    The embedded model sees inputs normalised by :func:`invnb.synthetic.normalize`.

    Examples
    --------
    >>> model = SmallVGG().eval()
    >>> model(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 7])
    """

    def __init__(
        self,
        num_classes: int = len(CLASS_NAMES),
        cfg: Sequence[Union[int, str]] = DEFAULT_CFG,
        hidden: int = 128,
        dropout: float = 0.5,
        image_size: int = IMAGE_SIZE,
        in_channels: int = 3,
        batch_norm: bool = False,
    ):
        super().__init__()
        cfg = tuple(cfg)
        for name, value in (("num_classes", num_classes), ("hidden", hidden),
                            ("image_size", image_size), ("in_channels", in_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}")
        if not any(isinstance(c, int) for c in cfg):
            raise ValueError(f"cfg needs at least one conv (an int), got {cfg!r}")
        bad = [c for c in cfg if c != "M" and (isinstance(c, bool) or not isinstance(c, int) or c < 1)]
        if bad:
            raise ValueError(f"cfg entries must be positive ints or 'M', got {bad!r} in {cfg!r}")
        pools = sum(c == "M" for c in cfg)
        if image_size % (2**pools):
            raise ValueError(
                f"image_size {image_size} is not divisible by 2**{pools} (the {pools} max pools in cfg)"
            )
        self.cfg = cfg
        self.hidden = hidden
        self.dropout = float(dropout)
        self.image_size = image_size
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.batch_norm = bool(batch_norm)

        layers: list[nn.Module] = []
        channels = in_channels
        for c in cfg:
            if c == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                continue
            layers.append(nn.Conv2d(channels, c, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(c))
            layers.append(nn.ReLU())
            channels = c
        self.features = nn.Sequential(*layers)
        side = image_size // 2**pools
        self.avgpool = nn.AdaptiveAvgPool2d((side, side))
        self.classifier = nn.Sequential(
            nn.Linear(channels * side * side, hidden),
            nn.ReLU(),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, num_classes),
        )
        self._init_weights()

    def _init_weights(self) -> None:
        # Same scheme as torchvision's VGG.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def architecture(self) -> dict:
        """Constructor arguments that rebuild this architecture (JSON-friendly)."""
        return {
            "num_classes": self.num_classes,
            "cfg": list(self.cfg),
            "hidden": self.hidden,
            "dropout": self.dropout,
            "image_size": self.image_size,
            "in_channels": self.in_channels,
            "batch_norm": self.batch_norm,
        }

    @torch.no_grad()
    def without_batchnorm(self) -> SmallVGG:
        """An equivalent plain SmallVGG with each BatchNorm folded into its conv.

        Returns
        -------
        SmallVGG
            ``batch_norm=False``, in eval mode, on this model's device, whose
            eval-mode outputs equal this model's eval-mode outputs (up to
            float rounding). A model without BatchNorm is simply copied.

        Notes
        -----
        Uses the running statistics: ``w' = w * g / sqrt(v + eps)``,
        ``b' = (b - mu) * g / sqrt(v + eps) + beta``. Training with BatchNorm
        and shipping the folded model keeps the shipped network a plain
        conv/ReLU/pool stack.
        """
        arch = self.architecture()
        arch["batch_norm"] = False
        plain = SmallVGG(**arch).to(next(self.parameters()).device)
        convs = [m for m in plain.features if isinstance(m, nn.Conv2d)]
        src = list(self.features)
        i = 0
        for m, nxt in zip(src, src[1:] + [None]):
            if not isinstance(m, nn.Conv2d):
                continue
            w, b = m.weight.clone(), m.bias.clone()
            if isinstance(nxt, nn.BatchNorm2d):
                scale = nxt.weight / torch.sqrt(nxt.running_var + nxt.eps)
                w = w * scale[:, None, None, None]
                b = (b - nxt.running_mean) * scale + nxt.bias
            convs[i].weight.copy_(w)
            convs[i].bias.copy_(b)
            i += 1
        plain.classifier.load_state_dict(self.classifier.state_dict())
        return plain.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` for normalised images ``x`` ``(N, C, H, W)``."""
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def load_embedded_model(path: PathLike | None = None, device: str | torch.device = "cpu") -> SmallVGG:
    """Load the embedded, trained :class:`SmallVGG` in eval mode.

    Parameters
    ----------
    path : str or os.PathLike, optional
        A state dict saved by ``scripts/train_embedded.py``; default
        ``invnb/data/embedded_vgg.pt`` (package data). The architecture is read
        from the ``architecture`` entry of the JSON file of the same name
        next to it when present, else :class:`SmallVGG`'s defaults.
    device : str or torch.device, default "cpu"
        Where the model's parameters go.

    Returns
    -------
    SmallVGG
        In eval mode, parameters on ``device``. Inputs are images normalised
        with :func:`invnb.synthetic.normalize`.

    Examples
    --------
    >>> from invnb.synthetic import make_shapes, normalize
    >>> model = load_embedded_model()
    >>> logits = model(normalize(make_shapes(4, seed=123).images))
    """
    path = Path(EMBEDDED_CHECKPOINT if path is None else path)
    if not path.is_file():
        raise FileNotFoundError(
            f"embedded model checkpoint not found: {path}. It ships inside the package (invnb/data/); "
            "restore it (git checkout invnb/data/embedded_vgg.pt) or recreate it with "
            "`python scripts/train_embedded.py`."
        )
    arch: dict = {}
    meta = path.with_suffix(".json")
    if meta.is_file():
        arch = json.loads(meta.read_text()).get("architecture", {})
    model = SmallVGG(**arch)
    state = _load_state_dict(path, device)
    _load_into(model, state, path)
    return model.to(device).eval()


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
    enum = _weights_enum(name, weights)
    return _hub_file(enum)


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
    builder = _builder(name)
    if weights is None:
        return builder(weights=None).to(device).eval()

    if isinstance(weights, str) and _is_enum_name(name, weights):
        enum = _weights_enum(name, weights)
        file = _hub_file(enum)
        if not file.is_file():
            if not download:
                raise FileNotFoundError(
                    f"the {name} weights {enum} are not in the torch hub cache: missing file "
                    f"{file}. Either download {enum.url} and put it at that path (the "
                    f"directory honours $TORCH_HOME), pass a local file with "
                    f"load_vgg({name!r}, weights='/path/to/{file.name}'), or call "
                    f"load_vgg({name!r}, weights={weights!r}, download=True) to fetch it."
                )
            state = torch.hub.load_state_dict_from_url(
                enum.url, map_location=device, progress=progress, check_hash=True,
                weights_only=True,
            )
        else:
            state = _load_state_dict(file, device)
        num_classes = len(enum.meta.get("categories") or range(1000))
        return _build_loaded(builder, num_classes, state, file, device)

    if isinstance(weights, (str, os.PathLike)):
        path = Path(weights).expanduser()
        if not path.is_file():
            names = ", ".join(_enum_names(name))
            raise FileNotFoundError(
                f"weights={str(weights)!r} is neither a torchvision weights name for {name} "
                f"({names}) nor an existing file; give a valid name or the path of a saved state dict."
            )
        state = _load_state_dict(path, device)
        return _build_loaded(builder, _num_classes(state, path), state, path, device)

    raise TypeError(
        f"weights must be a torchvision weights name, a file path or None, got {type(weights).__name__}"
    )


def _builder(name: str):
    if not isinstance(name, str) or name not in VGG_NAMES:
        raise ValueError(f"unknown model name {name!r}; choose one of {', '.join(VGG_NAMES)}")
    return getattr(torchvision.models, name)


def _enum_names(name: str) -> list[str]:
    _builder(name)
    return list(torchvision.models.get_model_weights(name).__members__)


def _is_enum_name(name: str, weights: str) -> bool:
    return weights in _enum_names(name)


def _weights_enum(name: str, weights: str):
    names = _enum_names(name)
    if weights not in names:
        raise ValueError(
            f"unknown weights {weights!r} for {name}; choose one of {', '.join(names)}, "
            "a file path, or None"
        )
    return torchvision.models.get_model_weights(name)[weights]


def _hub_file(enum) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(enum.url)


def _load_state_dict(path: Path, device) -> dict:
    from .download import require_torch_file

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


def _num_classes(state: dict, path: Path) -> int:
    weight = state.get("classifier.6.weight")
    if weight is None or weight.dim() != 2:
        raise ValueError(
            f"{path} is not a torchvision VGG state dict: it has no 2-D 'classifier.6.weight'."
        )
    return int(weight.shape[0])


def _build_loaded(builder, num_classes: int, state: dict, path: Path, device) -> nn.Module:
    # Build on the meta device and adopt the loaded tensors: skips the random
    # initialisation of ~10^8 parameters that would be overwritten anyway.
    with torch.device("meta"):
        model = builder(weights=None, num_classes=num_classes)
    _load_into(model, state, path, assign=True)
    return model.to(device).eval()


def _load_into(model: nn.Module, state: dict, path: Path, assign: bool = False) -> None:
    try:
        model.load_state_dict(state, strict=True, assign=assign)
    except RuntimeError as err:
        raise ValueError(
            f"the state dict in {path} does not fit {type(model).__name__}: {err}"
        ) from err
