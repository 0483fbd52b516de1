"""VGG-11 as the SALM paper tests it: torchvision's layer definition, inputs padded to 32x32.

torchvision's classifier (three dense layers over a 7x7 map, 120 M weights) is for 224 px; at
32 px the features end at 1x1, so, as CIFAR code does, one linear layer reads the 512 channels.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn
from torchvision.models.vgg import cfgs, make_layers


class PaddedVGG(nn.Module):
    """VGG features (with batch norm) on inputs zero-padded up to a multiple of 32 px."""

    def __init__(self, config: str, *, num_classes: int, in_channels: int, width: int = 64):
        super().__init__()
        layers = [v if v == "M" else v * width // 64 for v in cfgs[config]]
        self.features = make_layers(layers, batch_norm=True)
        # make_layers assumes RGB input; swap the first convolution for the native channel count.
        first = self.features[0]
        self.features[0] = nn.Conv2d(in_channels, first.out_channels, kernel_size=3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(layers[-2], num_classes)

    def forward(self, x):
        height, width = x.shape[-2:]
        pad_h, pad_w = -height % 32, -width % 32
        if pad_h or pad_w:
            x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        return self.fc(self.pool(self.features(x)).flatten(1))


def vgg11(*, num_classes: int, in_channels: int, width: int = 64) -> PaddedVGG:
    """VGG-11 with batch norm (Simonyan & Zisserman 2015); 28 px inputs are padded to 32."""
    return PaddedVGG("A", num_classes=num_classes, in_channels=in_channels, width=width)
