"""Full float32 precision on CUDA (TF32 off) for the duration of a block."""

from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def full_precision():
    """Turn TF32 off for cuDNN convolutions and CUDA matrix products, restoring the settings after."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
