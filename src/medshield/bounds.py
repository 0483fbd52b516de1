"""Measure how much released pixels differ from the originals, on the stored integer values."""
from __future__ import annotations

import numpy as np


def pixel_change(original: np.ndarray, released: np.ndarray) -> dict[str, float | int]:
    """L-inf in pixel units and L0 as the fraction of pixel *positions* changed per image.

    Arrays are (N, H, W) or (N, H, W, C) uint8 or uint16. A position counts as changed when any of its
    channels differs, which is the sparsity the L0 bound of SALM's Eq. (3) limits.
    """
    if original.shape != released.shape:
        raise ValueError(f"shape mismatch: original {original.shape} vs released {released.shape}")
    diff = np.abs(released.astype(np.int32) - original.astype(np.int32))
    changed = diff > 0
    if changed.ndim == 4:
        changed = changed.any(axis=-1)
    per_image = changed.reshape(len(changed), -1).mean(axis=1)
    return {
        "linf": int(diff.max()) if diff.size else 0,
        "l0_max": float(per_image.max()) if per_image.size else 0.0,
        "l0_mean": float(per_image.mean()) if per_image.size else 0.0,
        "changed_positions_max": int(changed.reshape(len(changed), -1).sum(axis=1).max()) if per_image.size else 0,
        "positions_per_image": int(np.prod(changed.shape[1:])),
    }
