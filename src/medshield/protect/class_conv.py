"""Class-wise convolution: each class's images pass through that class's random filter.

The idea of CUDA (Sadasivan et al., CVPR 2023, arXiv:2303.04278): a network trained on images
whose class can be read off a class-wise blur learns the blur, not the anatomy. Unlike additive
noise within an L-inf radius, a filter moves an edge by as much as the edge's contrast, so a
trainer's adversarial training at 8/255, JPEG or a median filter cannot simply remove it (issue 31:
"noise where the defenses cannot reach").

Our filter is not the reference's: to stay within the utility rule (mean SSIM >= 94.4 %), each
class's k x k kernel per channel is the identity mixed with a random non-negative kernel (entries
uniform, normalized to sum 1, so brightness is kept); ``strength`` is the mix, and the knob that
trades protection for SSIM. Edges are padded by reflection.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import InputError
from .base import Protection, check_range, register_protection

BATCH = 256  # images filtered at a time


def class_kernels(classes: int, channels: int, size: int, strength: float, generator: torch.Generator) -> torch.Tensor:
    """(classes, channels, 1, size, size) depthwise kernels: identity mixed with a random normalized one."""
    random = torch.rand((classes, channels, 1, size, size), generator=generator)
    random = random / random.sum(dim=(-2, -1), keepdim=True)
    identity = torch.zeros((1, 1, 1, size, size))
    identity[..., size // 2, size // 2] = 1.0
    return (1 - strength) * identity + strength * random


@register_protection
class ClassConvolution(Protection):
    """Every image filtered by its class's random depthwise convolution (no network).

    Parameters
    strength : float, default=0.5
        How far each class's kernel is from the identity (0: none, 1: the random kernel alone);
        on BloodMNIST 0.5 keeps a mean SSIM of about 97 % (docs/robustness.md).
    kernel_size : int, default=3
        Side of the kernels, odd.
    eps : float, default=1.0
        A cap on the change of any value; 1.0 leaves it uncapped, since the filter's change is
        bounded by ``strength`` (and measured as SSIM), not by a radius.
    """

    name = "class-conv"
    min_classes = 2
    #: a filter's change at an edge exceeds any imperceptible radius: SSIM, set by ``strength``, bounds it
    visible_eps = 1.0

    def __init__(self, *, strength: float = 0.5, kernel_size: int = 3, eps: float = 1.0):
        super().__init__(eps=eps)
        check_range(self.name, "strength", strength, 0.0, 1.0)
        check_range(self.name, "kernel_size", kernel_size, 1, 31)
        if kernel_size % 2 == 0:
            raise InputError(f"{self.name}: kernel_size must be odd (the filter is centred on each pixel), got {kernel_size}")
        self.strength = strength
        self.kernel_size = kernel_size

    @classmethod
    def setting_head(cls, params: dict) -> str:
        return f"{cls.name} strength={params.get('strength', 0.5):g}"

    def _perturb(self, x, y, run, *, num_classes, generator, progress):
        channels = x.shape[1]
        kernels = class_kernels(num_classes, channels, self.kernel_size, self.strength, generator).to(x.device)
        pad = (self.kernel_size // 2,) * 4
        for index in torch.arange(len(x)).split(BATCH):
            images, labels = x[index], y[index.to(y.device)]
            filtered = torch.empty_like(images)
            for c in labels.unique():
                members = labels == c
                padded = F.pad(images[members], pad, mode="reflect" if min(images.shape[-2:]) > pad[0] else "replicate")
                filtered[members] = F.conv2d(padded, kernels[int(c)], groups=channels)
            yield index, filtered - images
