"""Differentiable random flip + crop, the transformation distribution T of SALM's Algorithm 1."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def crop_padding(size: int) -> int:
    """CIFAR's 4 px of padding at 32 px, scaled to the image size (4 px at 28, 28 px at 224)."""
    return max(1, round(size / 8))


def flip_crop(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flip and random crop after zero padding, independently per image.

    Gradients flow through, so PGD can average the loss over sampled transformations.
    """
    n, _, height, width = x.shape
    flip = torch.rand(n, generator=generator) < 0.5
    x = torch.where(flip.view(n, 1, 1, 1).to(x.device), x.flip(3), x)
    pad = crop_padding(min(height, width))
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    rows = (dy[:, None] + torch.arange(height, device=x.device)).view(n, 1, height, 1)
    cols = (dx[:, None] + torch.arange(width, device=x.device)).view(n, 1, 1, width)
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    channel = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return padded[batch, channel, rows, cols]


TRANSFORMS = {"flip-crop": flip_crop, "none": lambda x, generator: x}
