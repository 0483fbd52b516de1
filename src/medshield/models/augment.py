"""The transformation distribution T of SALM's Algorithm 1: what PGD averages the loss over.

Today's T is a random flip + crop (``flip-crop``, the default). A trainer who preprocesses the
release (JPEG, blur, bit depth, grayscale, crop, CutOut) sees other images than the source model
did, so T can also be a weighted, composable distribution over the differentiable stand-ins of
those defenses (``models/transforms.py``), written as a spec or chosen by name:

    ``flip-crop+jpeg:3,flip-crop:1``
        per image, with weight 3: flip + crop, then JPEG; with weight 1: flip + crop alone.

Alternatives are separated by ``,``; ``+`` composes members left to right; ``:w`` weighs an
alternative (default 1). Each image of a batch draws its alternative independently, and every
draw (PGD draws J per step) draws again. Named distributions are in ``TRANSFORMS``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import torch
import torch.nn.functional as F

from ..errors import InputError
from .transforms import MEMBERS


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


def identity(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return x


#: every member a spec may name
ALL_MEMBERS: dict[str, Callable] = {"flip-crop": flip_crop, "none": identity, **MEMBERS}


@dataclass(frozen=True)
class Distribution:
    """A weighted mixture of compositions of members; called as ``T(batch, generator)``."""

    spec: str
    alternatives: tuple[tuple[tuple[Callable, ...], float], ...]

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if len(self.alternatives) == 1:  # no draw of an alternative: flip-crop alone draws as it always did
            return _compose(self.alternatives[0][0], x, generator)
        weights = torch.tensor([weight for _, weight in self.alternatives])
        pick = torch.multinomial(weights, len(x), replacement=True, generator=generator)
        parts, rows_of_parts = [], []
        for i, (members, _) in enumerate(self.alternatives):
            rows = (pick == i).nonzero().flatten()
            if len(rows):
                parts.append(_compose(members, x[rows.to(x.device)], generator))
                rows_of_parts.append(rows)
        return torch.cat(parts)[torch.cat(rows_of_parts).argsort().to(x.device)]


def _compose(members, x, generator):
    for member in members:
        x = member(x, generator)
    return x


#: named distributions (``--transform NAME``); any spec is accepted too
NAMED = {
    "flip-crop": "flip-crop",
    "none": "none",
    # what the defense grid does, JPEG (the strongest defense) weighted up
    "defense-aware": ("flip-crop:2,flip-crop+jpeg:3,flip-crop+gaussian-blur,flip-crop+mean-blur,flip-crop+median-smooth,"
                      "flip-crop+bitdepth,flip-crop+grayscale,resized-crop,flip-crop+cutout"),
    "jpeg-aware": "flip-crop+jpeg:3,flip-crop:1",
}


def _alternative(text: str, spec: str) -> tuple[tuple[Callable, ...], float]:
    names, _, weight_text = text.partition(":")
    unknown = [name for name in names.split("+") if name.strip() not in ALL_MEMBERS]
    if unknown or not names:
        raise InputError(f"transform {spec!r}: unknown member {(unknown or [''])[0]!r}; members: {', '.join(ALL_MEMBERS)}; "
                         f"named distributions: {', '.join(NAMED)} (syntax: a+b:2,c)")
    try:
        weight = float(weight_text) if weight_text else 1.0
    except ValueError:
        weight = -1.0
    if not weight > 0:
        raise InputError(f"transform {spec!r}: a weight after ':' must be a positive number, got {weight_text!r}")
    return tuple(ALL_MEMBERS[name.strip()] for name in names.split("+")), weight


@lru_cache(maxsize=None)
def transform_distribution(spec: str) -> Distribution:
    """The distribution T named or written by ``spec`` (one error line when it is not one)."""
    text = NAMED.get(spec, spec)
    return Distribution(spec, tuple(_alternative(part.strip(), spec) for part in text.split(",")))


TRANSFORMS = {name: transform_distribution(name) for name in NAMED}
