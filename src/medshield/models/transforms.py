"""Differentiable stand-ins for what a trainer does to a release, the members of the distribution T.

Each member takes a float batch (N, C, H, W) in [0, 1] (8- or 16-bit data alike: the stored
levels are already gone) and a CPU ``torch.Generator``, and returns a batch of the same shape in
[0, 1] through which gradients flow, so PGD can craft noise that survives the defense
(``evaluate/defenses.py`` holds the defenses themselves, applied to stored bytes):

- ``jpeg``: kornia's differentiable JPEG codec at a quality drawn per image from
  [``JPEG_QUALITY``]; a one-channel image is coded as a gray RGB image and averaged back.
- ``gaussian-blur`` (sigma drawn per batch), ``mean-blur`` (3x3 box) and ``median-smooth``: the
  trimmed mean of each 3x3 window's middle three values, a median whose gradient reaches three
  pixels instead of one. Edges repeat, as ``scipy.ndimage``'s "reflect" does for a 3x3 window.
- ``bitdepth``: 2 to 5 bits kept, each level mapped to the middle of its bin; straight-through
  (the gradient of the identity), since the staircase has none.
- ``grayscale``: ITU-R 601 luma on every channel (the identity on one-channel images).
- ``resized-crop``: a random crop of 75-100 % of each side, resized back (bilinear).
- ``cutout``: one zeroed square of half the side per image, anywhere (clipped at the border).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from kornia.enhance import jpeg_codec_differentiable
from kornia.filters import box_blur, gaussian_blur2d

JPEG_QUALITY = (10.0, 75.0)  # the grid's range (JPEG at q = 10 ... 75)
BLUR_SIGMA = (0.1, 1.5)  # APBench's sigma 0.1 up to a blur that visibly softens a 28 px image
BITS = (2, 5)
CROP_FRACTION = (0.75, 1.0)  # the grid's central crop keeps 0.75 of each side
LUMA = (0.299, 0.587, 0.114)


def _uniform(n: int, low: float, high: float, generator: torch.Generator, device) -> torch.Tensor:
    return (low + (high - low) * torch.rand(n, generator=generator)).to(device)


def jpeg_at(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """Differentiable JPEG (kornia; 4:2:0 chroma, as Pillow's default) at ``quality`` (one, or one per image)."""
    if x.shape[1] == 3:
        return jpeg_codec_differentiable(x, quality).clamp(0, 1)
    coded = jpeg_codec_differentiable(x.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1), quality)
    return coded.mean(dim=1, keepdim=True).expand_as(x).clamp(0, 1)


def jpeg(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``jpeg_at`` a quality drawn per image from ``JPEG_QUALITY``."""
    return jpeg_at(x, _uniform(len(x), *JPEG_QUALITY, generator, x.device))


def gaussian_blur(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    sigma = float(_uniform(1, *BLUR_SIGMA, generator, "cpu"))
    return gaussian_blur2d(x, (3, 3), (sigma, sigma), border_type="replicate")


def mean_blur(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return box_blur(x, (3, 3), border_type="replicate")


def median_smooth(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mean of the middle three of each 3x3 window's nine values (a smooth stand-in for the median)."""
    n, c, h, w = x.shape
    windows = F.unfold(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3).view(n, c, 9, h * w)
    return windows.sort(dim=2).values[:, :, 3:6].mean(dim=2).view(n, c, h, w)


def bit_depth(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Keep ``bits`` bits (drawn per batch), each value at the middle of its bin; straight-through."""
    levels = 2 ** int(torch.randint(BITS[0], BITS[1] + 1, (1,), generator=generator))
    reduced = ((x * levels).floor().clamp(max=levels - 1) + 0.5) / levels
    return x + (reduced - x).detach()


def grayscale(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    if x.shape[1] != 3:
        return x
    luma = (x * torch.tensor(LUMA, device=x.device).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
    return luma.expand_as(x)


def resized_crop(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random crop of each image (a fraction of each side in ``CROP_FRACTION``), resized back."""
    n = len(x)
    scale = _uniform(n, *CROP_FRACTION, generator, x.device)
    shift = (torch.rand(n, 2, generator=generator).to(x.device) * 2 - 1) * (1 - scale).unsqueeze(1)
    theta = torch.zeros(n, 2, 3, device=x.device)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, :, 2] = scale, scale, shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_boxes(n: int, height: int, width: int, area: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Boolean (n, H, W) masks of random squares of ``area`` (a fraction per image), clipped to the image."""
    side_h = (height * area.sqrt()).round().long()
    side_w = (width * area.sqrt()).round().long()
    cy = torch.randint(0, height, (n,), generator=generator)
    cx = torch.randint(0, width, (n,), generator=generator)
    rows, cols = torch.arange(height).view(1, -1, 1), torch.arange(width).view(1, 1, -1)
    top, left = (cy - side_h // 2).view(-1, 1, 1), (cx - side_w // 2).view(-1, 1, 1)
    return (rows >= top) & (rows < top + side_h.view(-1, 1, 1)) & (cols >= left) & (cols < left + side_w.view(-1, 1, 1))


def cutout(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One zeroed square of half the side per image (the ``cutout`` defense's default)."""
    n, _, h, w = x.shape
    box = random_boxes(n, h, w, torch.full((n,), 0.25), generator).to(x.device)
    return x * ~box.unsqueeze(1)


MEMBERS = {
    "jpeg": jpeg,
    "gaussian-blur": gaussian_blur,
    "mean-blur": mean_blur,
    "median-smooth": median_smooth,
    "bitdepth": bit_depth,
    "grayscale": grayscale,
    "resized-crop": resized_crop,
    "cutout": cutout,
}
