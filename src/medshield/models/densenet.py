"""DenseNet-121 on torchvision's definition, with the CIFAR stem for small images.

torchvision's DenseNet starts with a 7x7 stride-2 convolution and a max-pool (ImageNet); at 28 px
that leaves 7x7 maps before the first dense block. As for the ResNets, the small-image variant
uses a 3x3 stride-1 convolution and no pool. ``width`` scales the growth rate (32 at 64).
"""
from __future__ import annotations

from torch import nn
from torchvision.models.densenet import DenseNet


def densenet121(*, num_classes: int, in_channels: int, width: int = 64) -> DenseNet:
    """DenseNet-121 (Huang et al. 2017), CIFAR stem; ``width=64`` is the standard network."""
    growth = max(1, 32 * width // 64)
    model = DenseNet(growth_rate=growth, block_config=(6, 12, 24, 16), num_init_features=2 * growth, num_classes=num_classes)
    model.features.conv0 = nn.Conv2d(in_channels, 2 * growth, kernel_size=3, stride=1, padding=1, bias=False)
    model.features.pool0 = nn.Identity()
    return model
