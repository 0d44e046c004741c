"""Backbones (ResNets with torchvision names), pretrained-weight loading and class activation maps.

>>> import torch
>>> from noisyfer.models import create_backbone
>>> net = create_backbone("resnet_tiny", num_classes=7)
>>> out = net(torch.zeros(2, 3, 64, 64))   # BackboneOutput(feature_map, features, logits)
"""

from __future__ import annotations

from .backbones import BackboneSpec, ResNetOptions, SmallResNetOptions, TinyResNetOptions, create_backbone
from .batchnorm import running_stats_frozen
from .cam import FLIP_ALIGNMENTS, align_mirrored, alignment_shift, cam, check_flip_alignment, flip_shift, map_stride
from .pretrained import LAYOUTS, LoadReport, load_pretrained
from .resnet import STEMS, BackboneOutput, BasicBlock, Bottleneck, ResNet, init_weights

__all__ = [
    "FLIP_ALIGNMENTS",
    "LAYOUTS",
    "STEMS",
    "BackboneOutput",
    "BackboneSpec",
    "BasicBlock",
    "Bottleneck",
    "LoadReport",
    "ResNet",
    "ResNetOptions",
    "SmallResNetOptions",
    "TinyResNetOptions",
    "align_mirrored",
    "alignment_shift",
    "cam",
    "check_flip_alignment",
    "create_backbone",
    "flip_shift",
    "init_weights",
    "load_pretrained",
    "map_stride",
    "running_stats_frozen",
]
