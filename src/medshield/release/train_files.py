"""The train files of a folder release, written one at a time at their own size and mode.

The protected images arrive in the working form (:mod:`..data.image_modes`); each file gets the noise
of its working image, mapped back to its own size and channels when they differ, added to its own
pixels and written in its own format. What was written is read back: the bounds are measured on
those bytes, per file at its size, and released minus original goes into one flat on-disk array,
file after file in train order, which the sealed restoration data holds.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..bounds import files_change
from ..data.image_modes import noise_for_file, to_working
from ..data.scratch import ScratchArray
from ..data.tensors import full_range
from .restoration import pixel_digest


class TrainFiles:
    """Writes ``source``'s train files with the noise of ``protected`` into ``tmp`` under ``names``."""

    def __init__(self, source, protected, tmp: Path, names: dict, manifest: dict, *, levels: int, max_l0: float):
        self.source, self.protected, self.tmp, self.names, self.manifest = source, protected, tmp, names, manifest
        self.levels, self.max_l0 = levels, max_l0
        self.train = source.indices("train")
        self.original = source.image_store("train")
        self.shapes = [source.shapes[i] if source.shapes else self.original.shape[1:] for i in self.train]
        dtype = np.int8 if self.original.dtype == np.uint8 else np.int16
        self.perturbation = ScratchArray((sum(math.prod(shape) for shape in self.shapes),), dtype)
        self.written = ScratchArray(self.original.shape, self.original.dtype)  # the written files in the working form
        self.changed_elements: dict = {}
        self.pixel_digests: list[str] = []  # each original's SHA-256, which its restored pixels must match
        self.file_shapes: list[list[int]] = []  # each file's shape, to read its perturbation back

    def write(self) -> dict:
        """Write every train file; returns the bounds measured on the written bytes (``files_change``)."""
        return files_change(self._pairs())

    def _pairs(self):
        offset = 0
        for n, i in enumerate(self.train):
            rel = self.source.files[i]
            own = self.source.read_file(self.source.path / rel)
            working = self.original[n]
            noise = self.protected[n].astype(np.int32) - working.astype(np.int32)
            if own.shape != working.shape:
                noise = noise_for_file(noise, own.shape, self.levels, self.max_l0)
            maximum = self.source.maximum or full_range(own.dtype)
            pixels = np.clip(own.astype(np.int32) + noise, 0, maximum).astype(own.dtype)
            elements = self.source.write_file(rel, pixels, self.tmp / self.names[rel], self.manifest)
            if elements:
                self.changed_elements[self.names[rel]] = elements
            back = self.source.read_file(self.tmp / self.names[rel])
            self.pixel_digests.append(pixel_digest(own))
            self.file_shapes.append(list(back.shape))
            self.written[n] = to_working(back, self.source.channels, self.source.size)
            delta = (back.astype(np.int32) - own.astype(np.int32)).ravel()
            self.perturbation[offset:offset + delta.size] = delta.astype(self.perturbation.dtype)
            offset += delta.size
            yield own, back
