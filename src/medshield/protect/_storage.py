"""Where protection keeps the images and the noise: on disk, read and written batch by batch.

Protection never holds the dataset as floats. :class:`TrainImages` reads the requested images
from ``data.images("train")`` (an in-memory array for MedMNIST files, a memory-mapped cache for
folders) and converts only that batch. :class:`NoiseStore` keeps each image's noise in whole
levels of the stored format in a :class:`~medshield.data.scratch.ScratchArray`: int8 for 8-bit
data at the default radius (|noise| <= 8 levels), int16 for 16-bit data (<= 2056 levels), so
the noise of 50,000 images of 224 x 224 x 3 takes 7.5 GB of disk, not 30 GB of RAM as float32.
Storing whole levels rounds the noise between the visits of an image (within a visit, PGD runs
in floats); the release is rounded to whole levels anyway.
"""
from __future__ import annotations

import numpy as np
import torch

from ..data.scratch import ScratchArray
from ..data.tensors import to_float, to_tensor, value_range


class TrainImages:
    """The train split as (N, C, H, W) floats in [0, 1]; ``x[index]`` reads that batch only."""

    def __init__(self, data, device: torch.device):
        stored = data.images("train")
        self._data = data
        self.device = device
        self.dtype = stored.dtype
        self.stored_shape = stored.shape
        self.maximum = value_range(data)
        channels = 1 if stored.ndim == 3 else stored.shape[-1]
        self.shape = (len(stored), channels, *stored.shape[1:3])

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, rows: np.ndarray) -> np.ndarray:
        """The stored images at ``rows`` (layout and dtype as stored)."""
        return self._data.images("train")[rows]

    def __getitem__(self, index: torch.Tensor) -> torch.Tensor:
        return to_float(to_tensor(self.read(index.cpu().numpy())).to(self.device), self.maximum)


class NoiseStore:
    """Per-image noise on disk, in whole levels of a format whose full range is ``maximum``."""

    def __init__(self, shape: tuple[int, ...], eps_levels: int, maximum: int, storage=None):
        dtype = next(t for t in (np.int8, np.int16, np.int32) if eps_levels <= np.iinfo(t).max)
        self.levels = storage.array(shape, dtype) if storage is not None else ScratchArray(shape, dtype)
        self.eps_levels = eps_levels
        self.maximum = maximum

    def load(self, index: torch.Tensor, device: torch.device) -> torch.Tensor:
        """The noise of images ``index`` as floats (a fraction of the range)."""
        levels = torch.from_numpy(self.levels[index.cpu().numpy()])
        return levels.to(device, torch.float32).div_(self.maximum)

    def store(self, index: torch.Tensor, delta: torch.Tensor) -> None:
        """Round ``delta`` (floats) to whole levels within the radius and write it."""
        levels = torch.round(delta.detach() * self.maximum).clamp_(-self.eps_levels, self.eps_levels)
        self.levels[index.cpu().numpy()] = levels.cpu().numpy().astype(self.levels.dtype)
