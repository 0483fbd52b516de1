"""Conversions between stored image arrays (N, H, W[, C]) and torch (N, C, H, W) tensors.

Stored images are uint8 or uint16. Tensors keep the integer values (uint16 held as int32, which
torch supports everywhere); ``to_float`` maps the format's full range to [0, 1], so a radius of
8/255 means 8 levels of an 8-bit image and 8 x 257 = 2056 levels of a 16-bit one.
"""
from __future__ import annotations

import numpy as np
import torch

def full_range(dtype) -> int:
    """Largest value of a stored integer format: 255 for uint8, 65535 for uint16."""
    return int(np.iinfo(dtype).max)


def value_range(data) -> int:
    """A dataset's full range: its own ``maximum`` (DICOM: 2^BitsStored - 1), else its dtype's."""
    return getattr(data, "maximum", None) or full_range(data.images("train").dtype)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """Stored images -> integer tensor (N, C, H, W), gray gets C = 1 (uint16 becomes int32).

    Read-only arrays (memory-mapped caches) are copied: torch tensors need writable memory."""
    array = np.require(images, requirements=["C", "W"])
    if array.dtype == np.uint16:
        array = array.astype(np.int32)
    t = torch.from_numpy(array)
    return t.unsqueeze(1) if t.ndim == 3 else t.permute(0, 3, 1, 2).contiguous()


def to_stored(images: torch.Tensor, like: np.ndarray) -> np.ndarray:
    """Integer tensor (N, C, H, W) -> the stored layout and dtype of ``like``."""
    array = images.detach().cpu()
    array = array[:, 0] if like.ndim == 3 else array.permute(0, 2, 3, 1)
    return np.ascontiguousarray(array.numpy()).reshape(like.shape).astype(like.dtype)


def to_float(images: torch.Tensor, maximum: int = 255) -> torch.Tensor:
    """Integer tensor -> float32 in [0, 1] (``maximum`` is the format's full range)."""
    return images.float().div_(float(maximum))
