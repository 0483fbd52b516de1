"""A small CNN for quick checks: seconds per epoch on a CPU, any input size."""
from __future__ import annotations

from torch import nn


def small_cnn(*, num_classes: int, in_channels: int, width: int = 64) -> nn.Sequential:
    """Three conv-BN-ReLU-pool stages (``width/2``, ``width``, ``2*width`` channels), then a linear layer."""
    c1, c2, c3 = max(1, width // 2), width, 2 * width

    def stage(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True), nn.MaxPool2d(2)]

    return nn.Sequential(*stage(in_channels, c1), *stage(c1, c2), *stage(c2, c3),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c3, num_classes))
