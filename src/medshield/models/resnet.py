"""ResNets for medical images of any size, built from torchvision's residual blocks.

torchvision's ``ResNet`` hard-codes an ImageNet stem (7x7 stride-2 conv + max-pool) and 64 base
channels. At 28 px that stem throws away 15/16 of the pixels before the first block, which is
the pipeline mistake users of unlearnable-example code report (anchors.md). The MedMNIST and
SALM experiments use the CIFAR variant at 28 px: 3x3 stride-1 stem, no max-pool; from 64 px on
(``imagenet_stem``) the standard stem, as MedMNIST's 64-224 px models. ``width`` scales every
stage so CPU presets can train the same architecture at a fraction of the cost.
"""
from __future__ import annotations

from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck


class CifarResNet(nn.Module):
    """ResNet with a 3x3 stride-1 stem and no max-pool; stage widths ``width * (1, 2, 4, 8)``."""

    def __init__(self, block, layers, *, num_classes: int, in_channels: int, width: int = 64, imagenet_stem: bool = False):
        super().__init__()
        self.inplanes = width
        if imagenet_stem:  # torchvision's stem, for 64 px and larger images
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
            )
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            )
        stages = []
        for i, blocks in enumerate(layers):
            stages.append(self._make_stage(block, width * 2**i, blocks, stride=1 if i == 0 else 2))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width * 8 * block.expansion, num_classes)

    def _make_stage(self, block, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        # torchvision's Bottleneck derives its inner width from base_width=64; pass ours instead
        # so a narrow network stays narrow.
        extra = {"base_width": 64} if block is Bottleneck else {}
        layers = [block(self.inplanes, planes, stride, downsample, **extra)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, **extra) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.stages(self.stem(x))
        return self.fc(self.pool(x).flatten(1))


def resnet18(*, num_classes: int, in_channels: int, width: int = 64, imagenet_stem: bool = False) -> CifarResNet:
    """ResNet-18 (He et al. 2016); ``width=64`` is the standard network."""
    return CifarResNet(BasicBlock, [2, 2, 2, 2], num_classes=num_classes, in_channels=in_channels, width=width,
                       imagenet_stem=imagenet_stem)


def resnet50(*, num_classes: int, in_channels: int, width: int = 64, imagenet_stem: bool = False) -> CifarResNet:
    """ResNet-50 (He et al. 2016); ``width=64`` is the standard network."""
    return CifarResNet(Bottleneck, [3, 4, 6, 3], num_classes=num_classes, in_channels=in_channels, width=width,
                       imagenet_stem=imagenet_stem)
