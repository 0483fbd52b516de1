"""Random noise of the same radius: the control. It should *not* protect; if a victim trained
on it fails, the evaluation, not the noise, is what is broken."""
from __future__ import annotations

import torch

from .base import Protection, register_protection

BATCH = 256  # images drawn at a time


@register_protection
class RandomNoise(Protection):
    """Independent uniform noise in [-eps, eps] for every value of every image."""

    name = "random"

    def _perturb(self, x, y, run, *, num_classes, generator, progress):
        for index in torch.arange(len(x)).split(BATCH):
            yield index, (torch.rand((len(index), *x.shape[1:]), generator=generator) * 2 - 1) * self.eps
