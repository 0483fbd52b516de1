"""Support classes (paper Section 7.1, Appendix D.2): a task for an owner who holds one class.

Error-minimizing noise minimizes a classification loss, which needs at least two classes. An
institution holding images of one diagnosis borrows "support classes" from another dataset:
N classes drawn with the seed, their images converted to the owner's size, channels and range,
appended to the owner's train split for the generation only. The release keeps the owner's rows.
"""
from __future__ import annotations

import numpy as np
from skimage.color import gray2rgb, rgb2gray
from skimage.transform import resize

from ..errors import InputError
from .scratch import ScratchArray
from .tensors import full_range, value_range

CHUNK = 256  # images converted or copied at a time


def draw_classes(labels: np.ndarray, count: int, seed: int, source: str) -> list[int]:
    """``count`` of the classes present in ``labels``, drawn with ``seed`` (sorted)."""
    present = np.unique(labels)
    if count < 1:
        raise InputError(f"--support-classes must be at least 1, got {count}")
    if count > len(present):
        raise InputError(f"--support {source}: it has {len(present)} classes in its train split, fewer than the "
                         f"{count} asked for; pass --support-classes {len(present)} or another source")
    return sorted(int(c) for c in np.random.default_rng(seed).choice(present, size=count, replace=False))


def convert(images: np.ndarray, maximum: int, like: np.ndarray, like_maximum: int) -> np.ndarray:
    """Stored images -> the layout, size, channel count, dtype and range of ``like`` (one owner image).

    Resizing is scikit-image's with anti-aliasing; RGB -> gray is its luma (rgb2gray), gray -> RGB
    repeats the channel."""
    height, width = like.shape[:2]
    colour = like.ndim == 3
    out = np.empty((len(images), *like.shape), like.dtype)
    for start in range(0, len(images), CHUNK):
        batch = images[start:start + CHUNK].astype(np.float64) / maximum
        if batch.ndim == 4 and not colour:
            batch = rgb2gray(batch) if batch.shape[-1] == 3 else batch[..., 0]
        elif batch.ndim == 3 and colour:
            batch = gray2rgb(batch)
        if batch.shape[1:3] != (height, width):
            batch = resize(batch, (len(batch), height, width, *batch.shape[3:]), anti_aliasing=True)
        out[start:start + CHUNK] = np.clip(np.rint(batch * like_maximum), 0, like_maximum).astype(like.dtype)
    return out


class WithSupport:
    """The owner's dataset with support images after its train rows, for generating noise only.

    Train images live in one on-disk :class:`ScratchArray` (owner rows first), so an owner's folder
    larger than RAM stays out of memory; support labels follow the owner's classes."""

    def __init__(self, owner, source, source_name: str, count: int, seed: int):
        labels = owner.labels("train")
        per_class = int(np.bincount(labels).max())  # balance: no support class outnumbers the owner's largest
        classes = draw_classes(source.labels("train"), count, seed, source_name)
        rng = np.random.default_rng(seed + 1)
        source_labels = source.labels("train")
        picked = [np.sort(rng.permutation(np.flatnonzero(source_labels == c))[:per_class]) for c in classes]
        owner_images = owner.images("train")
        self.owner = owner
        self.owner_rows = len(owner_images)
        self.maximum = value_range(owner)
        self.num_classes = owner.num_classes + len(classes)
        self.name = owner.name
        self.task = owner.task
        total = self.owner_rows + sum(len(p) for p in picked)
        self._images = ScratchArray((total, *owner_images.shape[1:]), owner_images.dtype)
        for start in range(0, self.owner_rows, CHUNK):
            end = min(start + CHUNK, self.owner_rows)
            self._images[start:end] = owner_images[start:end]
        source_images, row = source.images("train"), self.owner_rows
        source_maximum = getattr(source, "maximum", None) or full_range(source_images.dtype)
        for rows in picked:
            self._images[row:row + len(rows)] = convert(source_images[rows], source_maximum, owner_images[0], self.maximum)
            row += len(rows)
        self._labels = np.concatenate([labels] + [np.full(len(p), owner.num_classes + j, np.int64) for j, p in enumerate(picked)])
        names = getattr(source, "label_names", {}) or {}
        self.record = {
            "source": source_name,
            "classes": [{"source_label": c, "name": names.get(str(c), str(c)), "label": owner.num_classes + j,
                         "images": len(p)} for j, (c, p) in enumerate(zip(classes, picked))],
            "per_class_cap": per_class,
            "seed": seed,
        }

    def images(self, split: str) -> np.ndarray:
        if split != "train":
            raise ValueError("support classes exist only in the train split used for generation")
        return self._images.mapped()

    def labels(self, split: str) -> np.ndarray:
        if split != "train":
            raise ValueError("support classes exist only in the train split used for generation")
        return self._labels
