"""SRCNN (Dong et al., 2014/2016), a second conventional SR network, and its embedded weights.

SRCNN is three convolutions with ReLUs between them - patch extraction
(9x9, 64 channels), non-linear mapping (5x5 or 1x1, 32 channels) and
reconstruction (5x5, one channel) - applied to the bicubic-upscaled
luminance in [0, 1], as VDSR is. Unlike VDSR it predicts the
super-resolved image itself, not a residual: ``model(x)`` *is* the HR
estimate. Convolutions are zero-padded to keep the image size (the paper
trains without padding and crops; padding makes the network a drop-in
replacement for VDSR in the analysis code and in the layer-wise inverse).

The network is a plain chain of Conv2d and ReLU modules, which
:class:`invnb.inverse.LayerwiseInverse` inverts as it is. Analysis code
tells the two kinds of network apart by :attr:`SRCNN.predicts_residual`
(False here; :class:`invnb.models.VDSR` returns a residual);
:class:`SRCNNResidual` is the same network rewritten exactly to return
what it adds to its input, VDSR's convention, which the SR analysis
(``invnb.sr.networks``, name ``"srcnn"``) runs on.

The embedded weights (:func:`load_embedded_srcnn`) were trained here, by
``scripts/train_embedded_srcnn.py``, on public-domain and CC0 photographs
that ship inside scikit-image (none of the embedded SR test images); one
network per scale (x2, x3, x4), as in the paper. Their provenance, training
command, seeds and measured PSNR are in the JSON file beside them, whose
SHA-256 for each file the loader checks before ``torch.load(weights_only=True)``.

References
----------
Dong, Loy, He, Tang, "Image Super-Resolution Using Deep Convolutional
Networks", IEEE TPAMI 38(2), 2016 (arXiv:1501.00092); ECCV 2014.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from invnb.datasets.download import sha256sum
from invnb.paths import DATA_DIR

__all__ = [
    "EMBEDDED_SRCNN_DIR",
    "EMBEDDED_SRCNN_META",
    "EMBEDDED_SRCNN_SCALES",
    "SRCNN",
    "SRCNNResidual",
    "embedded_srcnn_checkpoint",
    "load_embedded_srcnn",
    "load_srcnn",
    "srcnn_identity_init_",
]

#: Folder of the embedded SRCNNs' state dicts (written by ``scripts/train_embedded_srcnn.py``).
EMBEDDED_SRCNN_DIR = DATA_DIR
#: Their provenance: architecture, training data and licences, command, seeds, SHA-256 per file, PSNR.
EMBEDDED_SRCNN_META = DATA_DIR / "srcnn_embedded.json"
#: The scales an embedded SRCNN was trained for (one network each).
EMBEDDED_SRCNN_SCALES = (2, 3, 4)


def embedded_srcnn_checkpoint(scale: int) -> str:
    """File name of the embedded SRCNN for ``scale`` in :data:`EMBEDDED_SRCNN_DIR` (``srcnn_embedded_x{scale}.pt``)."""
    return f"srcnn_embedded_x{int(scale)}.pt"


class SRCNN(nn.Module):
    """SRCNN on the luminance channel, returning the super-resolved image.

    Leaf modules in registration order are the forward pass: ``conv1``
    (1 -> ``channels[0]``, ``kernel_sizes[0]``), ``relu1``, ``conv2``
    (``channels[0]`` -> ``channels[1]``, ``kernel_sizes[1]``), ``relu2``,
    ``conv3`` (``channels[1]`` -> 1, ``kernel_sizes[2]``, no ReLU). All
    convolutions have biases and zero padding ``k // 2``.

    Parameters
    ----------
    kernel_sizes : sequence of 3 odd ints, default (9, 5, 5)
        The paper's 9-5-5 network (9-1-5 is its smaller base model).
    channels : sequence of 2 ints, default (64, 32)
        Widths of the two hidden layers.

    Attributes
    ----------
    predicts_residual : bool
        False: ``forward`` returns the HR estimate itself (VDSR: True).

    Examples
    --------
    >>> model = load_embedded_srcnn(2)
    >>> x = torch.full((1, 1, 32, 32), 0.5)  # bicubic-upscaled Y in [0, 1]
    >>> model.super_resolve(x).shape
    torch.Size([1, 1, 32, 32])
    """

    predicts_residual = False

    def __init__(self, kernel_sizes: Sequence[int] = (9, 5, 5), channels: Sequence[int] = (64, 32)) -> None:
        super().__init__()
        kernel_sizes, channels = tuple(int(k) for k in kernel_sizes), tuple(int(c) for c in channels)
        if len(kernel_sizes) != 3 or any(k < 1 or k % 2 == 0 for k in kernel_sizes):
            raise ValueError(f"kernel_sizes must be three odd positive sizes such as (9, 5, 5), got {kernel_sizes}")
        if len(channels) != 2 or any(c < 1 for c in channels):
            raise ValueError(f"channels must be two positive widths such as (64, 32), got {channels}")
        self.kernel_sizes, self.channels = kernel_sizes, channels
        k1, k2, k3 = kernel_sizes
        self.conv1 = nn.Conv2d(1, channels[0], kernel_size=k1, padding=k1 // 2)
        # Not in-place: the inverse engine records every layer's input.
        self.relu1 = nn.ReLU(inplace=False)
        self.conv2 = nn.Conv2d(channels[0], channels[1], kernel_size=k2, padding=k2 // 2)
        self.relu2 = nn.ReLU(inplace=False)
        self.conv3 = nn.Conv2d(channels[1], 1, kernel_size=k3, padding=k3 // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Super-resolve.

        Parameters
        ----------
        x : torch.Tensor
            ``(N, 1, H, W)`` bicubic-upscaled luminance in [0, 1].

        Returns
        -------
        torch.Tensor
            ``(N, 1, H, W)`` HR luminance estimate (not clipped).
        """
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"SRCNN expects (N, 1, H, W) luminance in [0, 1], got shape {tuple(x.shape)}")
        return self.conv3(self.relu2(self.conv2(self.relu1(self.conv1(x)))))

    def super_resolve(self, x: torch.Tensor) -> torch.Tensor:
        """The super-resolved luminance, ``self(x)`` (the same call as :meth:`invnb.models.VDSR.super_resolve`)."""
        return self(x)

    def architecture(self) -> dict:
        """``{"kernel_sizes": [...], "channels": [...]}``, what the constructor needs."""
        return {"kernel_sizes": list(self.kernel_sizes), "channels": list(self.channels)}


class SRCNNResidual(SRCNN):
    """An SRCNN rewritten to return what it adds to its input, ``srcnn(x) - x``, as a plain chain.

    Made by :meth:`from_srcnn`: one extra channel in each hidden layer
    carries the input through a centred unit tap (the ReLUs pass it
    unchanged because the input is non-negative) and the reconstruction
    subtracts it. For every input in [0, inf) ``self(x)`` equals
    ``srcnn(x) - x`` up to rounding, zero padding included, so the network
    has VDSR's output convention (:attr:`predicts_residual` True): the
    layer-wise inverse then reproduces the part SRCNN adds to the bicubic
    input rather than the image, as it does for VDSR.

    Examples
    --------
    >>> srcnn = load_embedded_srcnn(2)
    >>> residual = SRCNNResidual.from_srcnn(srcnn)
    >>> x = torch.rand(1, 1, 24, 24)
    >>> bool(torch.allclose(residual(x), srcnn(x) - x, atol=1e-5))
    True
    """

    predicts_residual = True

    @classmethod
    @torch.no_grad()
    def from_srcnn(cls, srcnn: SRCNN) -> SRCNNResidual:
        """The residual form of ``srcnn`` (its weights copied; eval mode, on its device).

        Parameters
        ----------
        srcnn : SRCNN
            A network that returns the SR image.

        Returns
        -------
        SRCNNResidual
            Hidden widths ``srcnn.channels`` + 1 each; the last channel of each
            hidden layer is the carried input.
        """
        if isinstance(srcnn, SRCNNResidual) or not isinstance(srcnn, SRCNN):
            raise TypeError(f"from_srcnn needs an SRCNN that returns the image, got {type(srcnn).__name__}")
        c1, c2 = srcnn.channels
        out = cls(srcnn.kernel_sizes, (c1 + 1, c2 + 1)).to(srcnn.conv1.weight)
        for conv in (out.conv1, out.conv2, out.conv3):
            conv.weight.zero_()
            conv.bias.zero_()
        k1, k2, k3 = (k // 2 for k in srcnn.kernel_sizes)
        out.conv1.weight[:c1] = srcnn.conv1.weight
        out.conv1.bias[:c1] = srcnn.conv1.bias
        out.conv1.weight[c1, 0, k1, k1] = 1.0
        out.conv2.weight[:c2, :c1] = srcnn.conv2.weight
        out.conv2.bias[:c2] = srcnn.conv2.bias
        out.conv2.weight[c2, c1, k2, k2] = 1.0
        out.conv3.weight[:, :c2] = srcnn.conv3.weight
        out.conv3.bias.copy_(srcnn.conv3.bias)
        out.conv3.weight[0, c2, k3, k3] = -1.0
        return out.eval()

    def super_resolve(self, x: torch.Tensor) -> torch.Tensor:
        """The super-resolved luminance, ``x + self(x)``."""
        return x + self(x)


@torch.no_grad()
def srcnn_identity_init_(model: SRCNN, generator: torch.Generator | None = None, std: float = 1e-3) -> SRCNN:
    """Initialise an SRCNN so that it starts as the identity (it returns the bicubic input).

    Channel 0 of each layer carries the input through a centred unit tap
    (the input is non-negative, so the ReLUs pass it unchanged); every other
    weight is drawn from He's normal distribution, except the reconstruction
    weights of the other channels, which start at ``std`` so that they add
    almost nothing at first. Biases start at zero. Training then starts at
    bicubic quality and learns the correction, which on a CPU converges far
    sooner than the paper's Gaussian initialisation; the trained network is
    an ordinary SRCNN (the identity channel is trained like every other).

    Parameters
    ----------
    model : SRCNN
        Modified in place.
    generator : torch.Generator, optional
        For the random weights (deterministic under its seed).
    std : float, default 1e-3
        Standard deviation of the reconstruction weights of channels 1..C-1.

    Returns
    -------
    SRCNN
        ``model``. With ``std=0`` and every input pixel in [0, inf),
        ``model(x) == x`` up to rounding.
    """
    convs = (model.conv1, model.conv2, model.conv3)
    for conv in convs[:2]:
        fan_in = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
        conv.weight.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=generator)
    model.conv3.weight.normal_(0.0, std, generator=generator)
    for conv in convs:
        conv.bias.zero_()
        k = conv.kernel_size[0]
        # output channel 0 reads only input channel 0 (conv3's other inputs keep their small weights)
        (conv.weight[0, 0] if conv is model.conv3 else conv.weight[0]).zero_()
        conv.weight[0, 0, k // 2, k // 2] = 1.0
    return model


def load_embedded_srcnn(scale: int, map_location: str | torch.device = "cpu") -> SRCNN:
    """The SRCNN for ``scale`` that ships with invnb (trained here, no download).

    Reads ``srcnn_embedded_x{scale}.pt`` from :data:`EMBEDDED_SRCNN_DIR` with
    ``torch.load(weights_only=True)`` after checking its SHA-256 against
    :data:`EMBEDDED_SRCNN_META`, which also gives the architecture.

    Parameters
    ----------
    scale : int
        SR factor, one of :data:`EMBEDDED_SRCNN_SCALES`.
    map_location : str or torch.device, default "cpu"
        Device of the returned model.

    Returns
    -------
    SRCNN
        Eval mode; input ``(N, 1, H, W)`` bicubic Y in [0, 1] upscaled by
        ``scale``, output the HR luminance.

    Raises
    ------
    ValueError
        No embedded network for ``scale``, or the checkpoint's SHA-256 differs
        from the recorded one.
    FileNotFoundError
        The checkpoint or its provenance file is missing (an incomplete checkout).

    Examples
    --------
    >>> model = load_embedded_srcnn(3)
    >>> model.predicts_residual
    False
    """
    if isinstance(scale, bool) or scale not in EMBEDDED_SRCNN_SCALES:
        raise ValueError(f"the embedded SRCNNs are for scales {EMBEDDED_SRCNN_SCALES}, got {scale!r}")
    path = EMBEDDED_SRCNN_DIR / embedded_srcnn_checkpoint(scale)
    for p in (path, EMBEDDED_SRCNN_META):
        if not p.is_file():
            raise FileNotFoundError(f"{p} is missing: the embedded SRCNN ships inside the package (invnb/data/)")
    meta = json.loads(EMBEDDED_SRCNN_META.read_text())
    expected = meta["models"][str(scale)]["sha256"]
    digest = sha256sum(path)
    if digest != expected:
        raise ValueError(
            f"{path.name} has sha256 {digest}, but {EMBEDDED_SRCNN_META.name} records {expected}; "
            "restore the file from git or rerun scripts/train_embedded_srcnn.py"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = SRCNN(**meta["architecture"])
    model.load_state_dict(state, strict=True)
    return model.to(map_location).eval()


def _architecture_of(state: Mapping[str, torch.Tensor]) -> dict:
    """SRCNN's constructor arguments read from a state dict's weight shapes."""
    shapes = [tuple(state[f"conv{i}.weight"].shape) for i in (1, 2, 3)]
    return {"kernel_sizes": [s[-1] for s in shapes], "channels": [shapes[0][0], shapes[1][0]]}


def load_srcnn(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> SRCNN:
    """An :class:`SRCNN` from a plain state-dict file (as ``scripts/train_embedded_srcnn.py`` writes).

    Read with ``torch.load(weights_only=True)``, which refuses anything but tensors and plain
    containers; the architecture (kernel sizes, widths) comes from the weights' shapes.

    Parameters
    ----------
    path : str or os.PathLike
        A state dict with ``conv1``, ``conv2``, ``conv3`` weights and biases.
    map_location : str or torch.device, default "cpu"
        Device of the returned model.

    Returns
    -------
    SRCNN
        Eval mode, returning the SR image.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        The file is not an SRCNN state dict (missing or unexpected keys, shapes that do not fit).

    Examples
    --------
    >>> model = load_srcnn(EMBEDDED_SRCNN_DIR / embedded_srcnn_checkpoint(2))
    >>> model.architecture()
    {'kernel_sizes': [9, 5, 5], 'channels': [64, 32]}
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (an SRCNN state dict was expected)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any unpickling failure: a bad file
        raise ValueError(f"{path} is not a plain state dict that torch.load(weights_only=True) reads: {err}") from err
    keys = {f"conv{i}.{p}" for i in (1, 2, 3) for p in ("weight", "bias")}
    if not isinstance(obj, Mapping) or set(obj) != keys or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        found = sorted(obj)[:8] if isinstance(obj, Mapping) else type(obj).__name__
        raise ValueError(f"{path} is not an SRCNN state dict: expected the keys {sorted(keys)}, found {found}")
    state = OrderedDict(obj)
    try:
        model = SRCNN(**_architecture_of(state))
        model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"{path} does not fit SRCNN: {err}") from err
    return model.to(map_location).eval()
