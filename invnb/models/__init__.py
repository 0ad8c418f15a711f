"""Models the inverse runs on: the embedded SmallVGG and SmallResNet, torchvision's VGGs and ResNets, VDSR,
the embedded SRCNNs, and safe checkpoint loading."""

from invnb.models.checkpoints import UnsafeCheckpointError
from invnb.models.embedded import EMBEDDED_MODELS, embedded_checkpoint, load_embedded
from invnb.models.resnet import (
    IMAGENET_NAMES,
    RESNET_NAMES,
    load_imagenet_classifier,
    load_resnet,
    resnet_weights_file,
    without_identity_shortcuts,
)
from invnb.models.small_resnet import EMBEDDED_RESNET_CHECKPOINT, SmallResNet, load_embedded_resnet
from invnb.models.small_vgg import EMBEDDED_CHECKPOINT, SmallVGG, load_embedded_model
from invnb.models.srcnn import (
    EMBEDDED_SRCNN_DIR,
    EMBEDDED_SRCNN_META,
    EMBEDDED_SRCNN_SCALES,
    SRCNN,
    SRCNNResidual,
    embedded_srcnn_checkpoint,
    load_embedded_srcnn,
    load_srcnn,
    srcnn_identity_init_,
)
from invnb.models.vdsr import (
    EMBEDDED_VDSR_CHECKPOINT,
    VDSR,
    VDSR_SHA256,
    VDSR_URL,
    download_vdsr_weights,
    load_embedded_vdsr,
    load_pytorch_vdsr_checkpoint,
    load_vdsr,
    load_vdsr_state_dict,
)
from invnb.models.vgg import VGG_NAMES, load_vgg, vgg_weights_file

__all__ = [
    "EMBEDDED_MODELS", "EMBEDDED_RESNET_CHECKPOINT", "SmallResNet", "embedded_checkpoint", "load_embedded",
    "load_embedded_resnet", "IMAGENET_NAMES", "RESNET_NAMES", "load_imagenet_classifier", "load_resnet",
    "resnet_weights_file", "without_identity_shortcuts",
    "EMBEDDED_CHECKPOINT", "EMBEDDED_VDSR_CHECKPOINT", "SmallVGG", "UnsafeCheckpointError", "VDSR",
    "VDSR_SHA256", "VDSR_URL", "VGG_NAMES", "download_vdsr_weights", "load_embedded_model",
    "load_embedded_vdsr", "load_pytorch_vdsr_checkpoint", "load_vdsr", "load_vdsr_state_dict", "load_vgg",
    "vgg_weights_file",
    "EMBEDDED_SRCNN_DIR", "EMBEDDED_SRCNN_META", "EMBEDDED_SRCNN_SCALES", "SRCNN", "SRCNNResidual",
    "embedded_srcnn_checkpoint", "load_embedded_srcnn", "load_srcnn", "srcnn_identity_init_",
]
