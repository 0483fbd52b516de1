"""The tensor operations of sparse noise and of releases: position masks, the L0 projection, quantization
(the L-inf projection and the PGD step are ``models.pgd``'s).

Tensors are (N, C, H, W) floats in [0, 1]; ``eps`` is a fraction of the full range (8/255).
"""
from __future__ import annotations

import math

import torch


def positions_to_keep(k: float, height: int, width: int) -> int:
    """Number of pixel positions a K-fraction allows per image (rounded down: 'at most K %')."""
    return max(1, math.floor(k * height * width + 1e-9))


def position_scores(t: torch.Tensor) -> torch.Tensor:
    """Importance of each pixel position: |t| summed over channels, shape (N, H, W)."""
    return t.abs().sum(dim=1)


def topk_mask(scores: torch.Tensor, k: float, scope: str = "image") -> torch.Tensor:
    """Boolean mask (N, 1, H, W) selecting the top-``k`` fraction of positions.

    ``scope="image"`` keeps exactly ``floor(k*H*W)`` positions in every image; ties are broken
    by ``torch.topk``, so the count is exact even when many scores are equal. ``scope="batch"``
    ranks all positions of the batch together: the batch total is the same, but one image may
    receive more positions than another (the per-image L0 bound is then restored at release).
    """
    n, height, width = scores.shape
    per_image = positions_to_keep(k, height, width)
    if scope == "image":
        flat = scores.reshape(n, -1)
        index = flat.topk(per_image, dim=1).indices
        mask = torch.zeros_like(flat, dtype=torch.bool).scatter_(1, index, True)
    elif scope == "batch":
        flat = scores.reshape(-1)
        index = flat.topk(per_image * n).indices
        mask = torch.zeros_like(flat, dtype=torch.bool).scatter_(0, index, True)
    else:
        raise ValueError(f"mask scope must be 'image' or 'batch', got {scope!r}")
    return mask.reshape(n, 1, height, width)


def project_l0(delta: torch.Tensor, k: float) -> torch.Tensor:
    """Keep ``delta`` only at each image's top-``k`` positions by |delta| (channels pooled)."""
    return delta * topk_mask(position_scores(delta), k, "image")


def quantize(images: torch.Tensor, delta: torch.Tensor, eps_levels: int, maximum: int = 255) -> torch.Tensor:
    """Released images: original + delta rounded to whole levels of the stored format, clipped.

    ``maximum`` is the format's full range (255 or 65535) and ``eps_levels`` the radius in its
    levels. Rounding can only shrink the support (a value rounding to 0 drops out) and clipping
    to [-eps_levels, eps_levels] and [0, maximum] keeps the L-inf bound exact on the stored values.
    """
    steps = torch.round(delta * float(maximum)).clamp(-eps_levels, eps_levels).to(torch.int32)
    return (images.to(torch.int32) + steps).clamp(0, maximum)


BLOCK = 8  # JPEG's block side


def dct_matrix(size: int = BLOCK) -> torch.Tensor:
    """The orthonormal DCT-II matrix (rows: frequencies), JPEG's transform of each block's rows and columns."""
    n = torch.arange(size, dtype=torch.float64)
    matrix = torch.cos(math.pi * (2 * n[None, :] + 1) * n[:, None] / (2 * size)) * math.sqrt(2 / size)
    matrix[0] /= math.sqrt(2)
    return matrix.float()


def low_frequency(t: torch.Tensor, keep: int) -> torch.Tensor:
    """``t`` projected, per 8x8 block (zero-padded at the right and bottom edges), onto its ``keep`` x
    ``keep`` lowest DCT frequencies: the part of a change that JPEG at low quality keeps."""
    if keep >= BLOCK:
        return t
    n, c, h, w = t.shape
    padded = torch.nn.functional.pad(t, (0, -w % BLOCK, 0, -h % BLOCK))
    rows, cols = padded.shape[-2] // BLOCK, padded.shape[-1] // BLOCK
    blocks = padded.view(n, c, rows, BLOCK, cols, BLOCK).transpose(3, 4)  # (..., rows, cols, 8, 8)
    d = dct_matrix().to(t.device)
    coefficients = d @ blocks @ d.T
    coefficients[..., keep:, :] = 0
    coefficients[..., :, keep:] = 0
    return (d.T @ coefficients @ d).transpose(3, 4).reshape(padded.shape)[..., :h, :w]
