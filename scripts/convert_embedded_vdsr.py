"""Convert pytorch-vdsr's trained weights once into the embedded VDSR state dict.

Source: github.com/twtygqyy/pytorch-vdsr (MIT licence), file
``model/model_epoch_50.pth`` at the commit pinned below: a pickled
``{"epoch": 50, "model": vdsr.Net}``. Its ``vdsr.Net`` is VDSR exactly as
:class:`invnb.models.VDSR` builds it (20 bias-free 3x3 convolutions, 64
channels, input Y in [0, 1]) except that its forward adds the input to the
residual; the state-dict keys are identical, so ``VDSR.super_resolve`` gives
pytorch-vdsr's output.

The conversion reads the pickle with invnb's restricted unpickler (no code
from the file runs), checks the source's SHA-256, and writes

* ``invnb/data/vdsr_pytorch_vdsr_epoch50.pt``: a plain ``{name: float32 tensor}``
  state dict (``torch.save``), readable with ``torch.load(weights_only=True)``;
* ``invnb/data/vdsr_pytorch_vdsr_epoch50.json``: provenance (repository, commit,
  path, both SHA-256) read by :func:`invnb.models.load_embedded_vdsr`;
* ``invnb/data/vdsr_pytorch_vdsr_LICENSE``: the source's MIT licence notice.

Usage (once; the outputs are committed)::

    git -C PYTORCH_VDSR_CLONE show 514b021:model/model_epoch_50.pth > /tmp/model_epoch_50.pth
    git -C PYTORCH_VDSR_CLONE show 514b021:LICENSE > /tmp/pytorch_vdsr_LICENSE
    python scripts/convert_embedded_vdsr.py /tmp/model_epoch_50.pth /tmp/pytorch_vdsr_LICENSE
"""

from __future__ import annotations

import argparse
import json
from collections import OrderedDict
from pathlib import Path

import torch

from invnb.datasets import sha256sum
from invnb.models import EMBEDDED_VDSR_CHECKPOINT, VDSR, load_pytorch_vdsr_checkpoint
from invnb.models.vdsr import EMBEDDED_VDSR_LICENSE, EMBEDDED_VDSR_META

REPO = "github.com/twtygqyy/pytorch-vdsr"
COMMIT = "514b021044018baf909e79f48392783daa592888"
PATH = "model/model_epoch_50.pth"
SOURCE_SHA256 = "eab4d79ae5a6e5acef4c55e46015aed225ade207679bcb6695b07af8fb18e876"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", type=Path, help=f"{PATH} of {REPO} at {COMMIT[:7]}")
    parser.add_argument("license", type=Path, help=f"LICENSE of {REPO} at {COMMIT[:7]}")
    args = parser.parse_args(argv)

    digest = sha256sum(args.checkpoint)
    if digest != SOURCE_SHA256:
        raise SystemExit(f"{args.checkpoint} has sha256 {digest}, expected {SOURCE_SHA256} ({REPO} {PATH})")
    license_text = args.license.read_text()
    if "MIT License" not in license_text or "Copyright" not in license_text:
        raise SystemExit(f"{args.license} is not pytorch-vdsr's MIT licence notice")

    state = load_pytorch_vdsr_checkpoint(args.checkpoint)
    reference = VDSR().state_dict()
    if set(state) != set(reference) or any(state[k].shape != reference[k].shape for k in state):
        raise SystemExit("the checkpoint's keys or shapes differ from invnb.models.VDSR")
    # In VDSR's registration order (the pickle lists residual_layer first).
    plain = OrderedDict((k, state[k].detach().to(torch.float32).contiguous().clone()) for k in reference)
    torch.save(plain, EMBEDDED_VDSR_CHECKPOINT)
    EMBEDDED_VDSR_LICENSE.write_text(license_text if license_text.endswith("\n") else license_text + "\n")
    meta = {
        "what": "VDSR weights trained by pytorch-vdsr (epoch 50), as a plain state dict of invnb.models.VDSR",
        "source_repository": REPO,
        "source_commit": COMMIT,
        "source_path": PATH,
        "source_sha256": SOURCE_SHA256,
        "license": "MIT, notice in " + EMBEDDED_VDSR_LICENSE.name,
        "file": EMBEDDED_VDSR_CHECKPOINT.name,
        "sha256": sha256sum(EMBEDDED_VDSR_CHECKPOINT),
        "conversion": "python scripts/convert_embedded_vdsr.py model_epoch_50.pth LICENSE",
        "input": "(N, 1, H, W) bicubic-upscaled luminance Y in [0, 1]; output: the residual",
    }
    EMBEDDED_VDSR_META.write_text(json.dumps(meta, indent=1) + "\n")
    size = EMBEDDED_VDSR_CHECKPOINT.stat().st_size
    print(f"wrote {EMBEDDED_VDSR_CHECKPOINT.name} ({size / 1e6:.2f} MB, sha256 {meta['sha256']}), "
          f"{EMBEDDED_VDSR_META.name}, {EMBEDDED_VDSR_LICENSE.name}")


if __name__ == "__main__":
    main()
