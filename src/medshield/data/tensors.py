"""Conversions between stored image arrays (N, H, W[, C]) uint8 and torch (N, C, H, W) tensors."""
from __future__ import annotations

import numpy as np
import torch


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """Stored uint8 images -> uint8 tensor (N, C, H, W), gray gets C = 1."""
    t = torch.from_numpy(np.ascontiguousarray(images))
    return t.unsqueeze(1) if t.ndim == 3 else t.permute(0, 3, 1, 2).contiguous()


def to_stored(images: torch.Tensor, like: np.ndarray) -> np.ndarray:
    """uint8 tensor (N, C, H, W) -> the stored layout of ``like``."""
    array = images.detach().cpu()
    array = array[:, 0] if like.ndim == 3 else array.permute(0, 2, 3, 1)
    return np.ascontiguousarray(array.numpy()).reshape(like.shape)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 tensor -> float32 in [0, 1]."""
    return images.float().div_(255.0)
