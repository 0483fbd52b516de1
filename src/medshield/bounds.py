"""Measure how much released pixels differ from the originals, on the stored integer values."""
from __future__ import annotations

import numpy as np


def pixel_change(original, released, chunk: int = 256) -> dict[str, float | int]:
    """L-inf in pixel units and L0 as the fraction of pixel *positions* changed per image.

    Arrays are (N, H, W) or (N, H, W, C) uint8 or uint16, or anything sliced like them (on-disk
    scratch arrays): they are compared ``chunk`` images at a time, so the check needs memory for
    a chunk, not for the dataset. A position counts as changed when any of its channels differs,
    which is the sparsity the L0 bound of SALM's Eq. (3) limits.
    """
    if tuple(original.shape) != tuple(released.shape):
        raise ValueError(f"shape mismatch: original {tuple(original.shape)} vs released {tuple(released.shape)}")
    n = len(original)
    linf = 0
    changed = np.zeros(n, dtype=np.int64)
    for start in range(0, n, chunk):
        diff = np.abs(np.asarray(released[start:start + chunk], np.int32) - np.asarray(original[start:start + chunk], np.int32))
        linf = max(linf, int(diff.max()) if diff.size else 0)
        moved = diff > 0
        if moved.ndim == 4:
            moved = moved.any(axis=-1)
        changed[start:start + len(moved)] = moved.reshape(len(moved), -1).sum(axis=1)
    positions = int(np.prod(original.shape[1:3]))
    per_image = changed / positions
    return {
        "linf": linf,
        "l0_max": float(per_image.max()) if n else 0.0,
        "l0_mean": float(per_image.mean()) if n else 0.0,
        "changed_positions_max": int(changed.max()) if n else 0,
        "positions_per_image": positions,
    }


def files_change(pairs) -> dict[str, float | int]:
    """:func:`pixel_change` over ``(original, released)`` pairs of single images that may differ in
    size from pair to pair (an image folder's files), read one pair at a time. L0 is per image, as
    a fraction of that image's own positions; ``positions_per_image`` is the largest image's."""
    linf, worst, total, count, changed_max, positions_max = 0, 0.0, 0.0, 0, 0, 0
    for original, released in pairs:
        one = pixel_change(np.asarray(original)[None], np.asarray(released)[None])
        linf = max(linf, one["linf"])
        worst, total, count = max(worst, one["l0_max"]), total + one["l0_max"], count + 1
        changed_max = max(changed_max, one["changed_positions_max"])
        positions_max = max(positions_max, one["positions_per_image"])
    return {"linf": linf, "l0_max": worst, "l0_mean": total / count if count else 0.0,
            "changed_positions_max": changed_max, "positions_per_image": positions_max}
