"""The one pass over a folder's images before any work: every file decoded once, none kept.

What it keeps per file is small and of fixed size (its shape, whether it has colour, its SHA-256,
a 64-bit perceptual hash) plus a 32 x 32 gray thumbnail on disk for confirming near-duplicates,
so validation needs memory for one image, whatever the number of files. From it come the working
form (channels and size, :func:`choose_working`) and the duplicate report (:mod:`.duplicates`).
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image

from ..errors import InputError
from .image_modes import is_gray
from .scratch import ScratchArray

log = logging.getLogger(__name__)
THUMBNAIL = 32  # the side imagehash.phash shrinks to before its DCT
MAX_SIZE = 224  # the default working size is the median size, capped here


@dataclass
class Inspection:
    shapes: list = field(default_factory=list)
    colour: np.ndarray | None = None
    sha256: list = field(default_factory=list)
    phash: np.ndarray | None = None
    thumbnails: ScratchArray | None = None
    converted: dict = field(default_factory=dict)
    dtype: np.dtype | None = None


def inspect_files(root: Path, files: list[str], read) -> Inspection:
    """Decode each file once with ``read(path) -> (pixels, conversion note)``; one bit depth for all."""
    found = Inspection(colour=np.zeros(len(files), bool), phash=np.zeros(len(files), np.uint64),
                       thumbnails=ScratchArray((len(files), THUMBNAIL, THUMBNAIL), np.uint8))
    first = None
    for n, rel in enumerate(files):
        array, note = read(root / rel)
        if first is None:
            first, found.dtype = rel, array.dtype
        elif array.dtype != found.dtype:
            raise InputError(f"{root / rel}: bit depth {array.dtype} differs from {first} ({found.dtype}); all images "
                             "must share one bit depth (convert them, or protect each group separately)")
        if note:
            found.converted[rel] = note
        found.shapes.append(array.shape)
        found.colour[n] = not is_gray(array)
        found.sha256.append(hashlib.sha256((root / rel).read_bytes()).hexdigest())
        thumbnail = _thumbnail(array)
        found.thumbnails[n] = thumbnail
        found.phash[n] = int(str(imagehash.phash(Image.fromarray(thumbnail))), 16)
    return found


def _thumbnail(array: np.ndarray) -> np.ndarray:
    """8-bit gray, 32 x 32 (Pillow's luma, Lanczos): what the perceptual hash and its check look at."""
    eight = (array >> 8).astype(np.uint8) if array.dtype == np.uint16 else array
    return np.asarray(Image.fromarray(eight).convert("L").resize((THUMBNAIL, THUMBNAIL), Image.Resampling.LANCZOS))


def choose_working(found: Inspection, size: int | None, channels: int | None, where) -> tuple[int, int | None, dict]:
    """(channels, size or None for the images' own, what was chosen and why, for the manifest)."""
    colour, gray = int(found.colour.sum()), int((~found.colour).sum())
    if channels not in (None, 1, 3):
        raise InputError(f"--channels must be 1 or 3, got {channels}")
    if channels is None:
        channels = 3 if colour else 1
        why = "default: some images have colour" if colour else "default: every image is gray"
        if colour and gray:
            log.warning("%s: %d gray and %d colour images; protecting in colour (3 channels), each file written back "
                        "in its own mode (pass --channels 1 to protect in gray)", where, gray, colour)
    else:
        why = "--channels"
    sides = sorted({shape[:2] for shape in found.shapes})
    if size is not None and size < 8:
        raise InputError(f"--size must be at least 8 pixels, got {size}")
    if size is None and len(sides) > 1:
        size = min(MAX_SIZE, int(np.median([max(shape[:2]) for shape in found.shapes])))
        log.warning("%s: images of %d sizes (%s); the source model works at %d x %d (the median, at most %d; "
                    "--size N to choose), and each image's noise is resized back to its own size",
                    where, len(sides), _sizes(sides), size, size, MAX_SIZE)
        size_why = "default: the median size, at most 224"
    else:
        size_why = "--size" if size is not None else "the images' own size"
    working = {"channels": channels, "channels_chosen": why, "gray_images": gray, "colour_images": colour,
               "size": size, "size_chosen": size_why, "sizes": len(sides)}
    return channels, size, working


def _sizes(sides: list) -> str:
    shown = ", ".join(f"{w}x{h}" for h, w in sides[:4])
    return shown + (f", ... {len(sides) - 4} more" if len(sides) > 4 else "")
