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


def draw_classes(pool: list[tuple[str, int]], count: int, seed: int) -> list[tuple[str, int]]:
    """``count`` of the (source, class) pairs in ``pool``, drawn with ``seed``, in pool order."""
    if count < 1:
        raise InputError(f"--support-classes must be at least 1, got {count}")
    if count > len(pool):
        raise InputError(f"--support: the sources hold {len(pool)} classes in their train splits, fewer than the "
                         f"{count} asked for; pass --support-classes {len(pool)} or add a source")
    chosen = np.sort(np.random.default_rng(seed).choice(len(pool), size=count, replace=False))
    return [pool[i] for i in chosen]


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
    """The owner's train images (``rows`` of them: the classes one institution holds; default all)
    with support images after them, for generating noise only.

    ``sources`` maps a public name to a dataset; the classes of all sources form one pool, from
    which ``count`` are drawn with ``seed`` (the paper draws five). Train images live in one on-disk
    :class:`ScratchArray` (owner rows first), so an owner's folder larger than RAM stays out of
    memory; support labels follow the owner's classes."""

    def __init__(self, owner, sources: dict, count: int, seed: int, rows: np.ndarray | None = None):
        all_images = owner.images("train")
        rows = np.arange(len(all_images)) if rows is None else np.asarray(rows)
        per_class = int(np.bincount(owner.labels("train")[rows]).max())  # no support class outnumbers the owner's largest
        pool = [(name, int(c)) for name, data in sources.items() for c in np.unique(data.labels("train"))]
        drawn = draw_classes(pool, count, seed)
        rng = np.random.default_rng(seed + 1)
        picked = [np.sort(rng.permutation(np.flatnonzero(sources[name].labels("train") == c))[:per_class])
                  for name, c in drawn]
        self.owner, self.rows, self.owner_rows = owner, rows, len(rows)
        self.maximum = value_range(owner)
        self.num_classes = owner.num_classes + len(drawn)
        self.name, self.task = owner.name, owner.task
        self._images = ScratchArray((len(rows) + sum(len(p) for p in picked), *all_images.shape[1:]), all_images.dtype)
        for start in range(0, len(rows), CHUNK):
            self._images[start:start + len(rows[start:start + CHUNK])] = all_images[rows[start:start + CHUNK]]
        row = len(rows)
        for (name, _), taken in zip(drawn, picked):
            images = sources[name].images("train")
            maximum = getattr(sources[name], "maximum", None) or full_range(images.dtype)
            self._images[row:row + len(taken)] = convert(images[taken], maximum, all_images[0], self.maximum)
            row += len(taken)
        self._labels = np.concatenate([owner.labels("train")[rows]]
                                      + [np.full(len(p), owner.num_classes + j, np.int64) for j, p in enumerate(picked)])
        self.record = {
            "sources": list(sources),
            "classes": [{"source": name, "source_label": c,
                         "name": (getattr(sources[name], "label_names", None) or {}).get(str(c), str(c)),
                         "label": owner.num_classes + j, "images": len(p)} for j, ((name, c), p) in enumerate(zip(drawn, picked))],
            "per_class_cap": per_class,
            "owner_images": len(rows),
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
