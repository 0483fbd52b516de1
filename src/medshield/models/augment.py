"""Differentiable random flip + crop, the transformation distribution T of SALM's Algorithm 1."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def crop_padding(size: int) -> int:
    """CIFAR's 4 px of padding at 32 px, scaled to the image size (4 px at 28, 28 px at 224)."""
    return max(1, round(size / 8))


def flip_crop(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flip and random crop after zero padding, independently per image.

    Gradients flow through, so PGD can average the loss over sampled transformations. Flip and
    crop are one gather from the padded batch (a flipped image's crop reads the padded columns
    mirrored), which runs at every PGD step: 4-5x faster than flipping, padding and indexing in
    turn, with the same values, gradients and random draws.
    """
    n, channels, height, width = x.shape
    flip = torch.rand(n, generator=generator) < 0.5
    pad = crop_padding(min(height, width))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    padded_width = width + 2 * pad
    cols = dx[:, None] + torch.arange(width)
    cols = torch.where(flip[:, None], padded_width - 1 - cols, cols)
    rows = dy[:, None] + torch.arange(height)
    index = (rows[:, :, None] * padded_width + cols[:, None, :]).reshape(n, 1, height * width)
    padded = F.pad(x, (pad, pad, pad, pad)).flatten(2)
    return padded.gather(2, index.expand(n, channels, -1).to(x.device)).view(n, channels, height, width)


TRANSFORMS = {"flip-crop": flip_crop, "none": lambda x, generator: x}
