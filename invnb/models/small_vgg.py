"""SmallVGG, the embedded classifier of the synthetic shapes, and its loader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence, Union

import torch
from torch import nn

from invnb.datasets.synthetic import CLASS_NAMES, IMAGE_SIZE
from invnb.models.vgg import PathLike, load_weights_into, read_state_dict
from invnb.paths import DATA_DIR

__all__ = ["EMBEDDED_CHECKPOINT", "SmallVGG", "load_embedded_model"]


#: Default ``features`` configuration of :class:`SmallVGG`: output channels
#: of each 3x3 conv (each followed by a ReLU), ``"M"`` = 2x2 max pooling.
DEFAULT_CFG: tuple[Union[int, str], ...] = (16, 16, "M", 32, 32, "M", 64, "M", 64, "M")


#: The shipped checkpoint of the embedded model (a state dict).
EMBEDDED_CHECKPOINT = DATA_DIR / "embedded_vgg.pt"


class SmallVGG(nn.Module):
    """A small VGG-style classifier, structured exactly like torchvision's VGG.

    ``features`` (3x3 Conv2d + ReLU blocks and 2x2 MaxPool2d) -> ``avgpool``
    (``nn.AdaptiveAvgPool2d`` to the final feature size, so the identity at
    the design input size, as VGG's is at 224x224) -> ``torch.flatten(x, 1)``
    -> ``classifier`` (Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear).

    Parameters
    ----------
    num_classes : int, default 7
        Number of outputs (logits); 7 = the classes of :mod:`invnb.datasets.synthetic`.
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
    The embedded model sees inputs normalised by :func:`invnb.datasets.normalize`.

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
        with :func:`invnb.datasets.normalize`.

    Examples
    --------
    >>> from invnb.datasets.synthetic import make_shapes, normalize
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
    state = read_state_dict(path, device)
    load_weights_into(model, state, path)
    return model.to(device).eval()
