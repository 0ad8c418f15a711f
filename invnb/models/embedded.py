"""The embedded classifiers of the synthetic shapes, by name: ``"smallvgg"`` and ``"smallresnet"``.

Both are trained by ``scripts/train_embedded.py`` (``--model smallvgg`` or ``--model smallresnet``)
on the same images of :mod:`invnb.datasets.synthetic` and ship in ``invnb/data/``. The benchmark
and the sanity check take one of these names (:class:`invnb.eval.benchmark.BenchmarkConfig`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from invnb.models.small_resnet import EMBEDDED_RESNET_CHECKPOINT, load_embedded_resnet
from invnb.models.small_vgg import EMBEDDED_CHECKPOINT, load_embedded_model
from invnb.models.vgg import PathLike

__all__ = ["EMBEDDED_MODELS", "embedded_checkpoint", "load_embedded"]

#: Names of the embedded classifiers: the SmallVGG (the paper's layer types) and the SmallResNet.
EMBEDDED_MODELS = ("smallvgg", "smallresnet")

_CHECKPOINTS = {"smallvgg": EMBEDDED_CHECKPOINT, "smallresnet": EMBEDDED_RESNET_CHECKPOINT}
_LOADERS = {"smallvgg": load_embedded_model, "smallresnet": load_embedded_resnet}


def _check_name(name: str) -> str:
    if name not in EMBEDDED_MODELS:
        raise ValueError(f"unknown embedded model {name!r}; choose one of {', '.join(EMBEDDED_MODELS)}")
    return name


def embedded_checkpoint(name: str = "smallvgg") -> Path:
    """The shipped state dict of embedded model `name` (one of :data:`EMBEDDED_MODELS`).

    Examples
    --------
    >>> embedded_checkpoint("smallresnet").name
    'embedded_resnet.pt'
    """
    return _CHECKPOINTS[_check_name(name)]


def load_embedded(name: str = "smallvgg", path: PathLike | None = None,
                  device: str | torch.device = "cpu") -> nn.Module:
    """Load embedded model `name` in eval mode.

    Parameters
    ----------
    name : {"smallvgg", "smallresnet"}
        :func:`invnb.models.load_embedded_model` or :func:`invnb.models.load_embedded_resnet`.
    path : str or os.PathLike, optional
        Another state dict of the same architecture (default: the shipped one).
    device : str or torch.device

    Returns
    -------
    nn.Module
        In eval mode, on `device`; inputs are images normalised with :func:`invnb.datasets.normalize`.

    Raises
    ------
    ValueError
        An unknown name.

    Examples
    --------
    >>> type(load_embedded("smallresnet")).__name__
    'SmallResNet'
    """
    return _LOADERS[_check_name(name)](path, device=device)
