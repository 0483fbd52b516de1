"""How one image file of an owner's folder becomes pixels, and how noise goes back into it.

Files are read upright (EXIF orientation applied with Pillow's ``ImageOps.exif_transpose``) and
written back with their orientation tag, so a viewer shows the release as it showed the input.
RGBA and LA images whose alpha is opaque everywhere are read as RGB and gray (and written back
with their opaque alpha); palette, CMYK and really transparent images are refused with one line
each saying what to do, or converted with Pillow when the owner asks (``--convert``).

The source model works on one *working* form: one channel count and, for a folder of mixed
sizes, one square size. :func:`to_working` maps a file's pixels there (an RGB file with three
equal channels is gray); :func:`noise_for_file` maps the noise made there back to the file's own
size and mode: resized with a non-negative filter (so no value leaves the radius), averaged over
channels for a gray file, repeated for an RGB one, and cut to the L0 bound at the file's size.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from skimage.color import rgb2gray
from skimage.transform import resize

from ..errors import InputError

CONVERSIONS = {"P": "RGB", "PA": "RGB", "CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB", "RGBA": "RGB",
               "RGBX": "RGB", "LA": "L", "La": "L", "1": "L"}  # what --convert makes of each mode
ALPHA_MODES = {"RGBA": "RGB", "LA": "L"}
ORIENTATION = 0x0112
UNDO_ORIENTATION = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
                    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
                    8: Image.Transpose.ROTATE_270}  # the inverse of what exif_transpose does for each tag value


def upright(image: Image.Image, path: Path, convert: bool) -> tuple[Image.Image, str | None]:
    """The image turned upright and in a mode medshield reads, with a note when ``convert`` changed it."""
    image = ImageOps.exif_transpose(image) or image
    mode = image.mode
    if mode in ALPHA_MODES and image.getchannel("A").getextrema()[0] == 255:
        return image.convert(ALPHA_MODES[mode]), None  # opaque everywhere: the alpha says nothing
    if mode not in CONVERSIONS:
        return image, None
    if convert:
        return image.convert(CONVERSIONS[mode]), f"{mode} -> {CONVERSIONS[mode]}"
    raise InputError(f"{path}: {_what(image)}; {_fix(mode)}, or pass --convert to let Pillow convert it to "
                     f"{CONVERSIONS[mode]} (recorded in the manifest; restore gives the original file back)")


def _what(image: Image.Image) -> str:
    if image.mode in ALPHA_MODES:
        transparent = int((np.asarray(image.getchannel("A")) < 255).sum())
        return f"{image.mode} image with {transparent:,} transparent pixels"
    return {"P": "palette image (mode P)", "PA": "palette image with alpha (mode PA)", "CMYK": "CMYK image",
            "1": "1-bit image"}.get(image.mode, f"image mode {image.mode!r}")


def _fix(mode: str) -> str:
    if mode in ALPHA_MODES:
        return f"flatten it onto a background and save it as {ALPHA_MODES[mode]}"
    return f"save it as {'gray' if CONVERSIONS[mode] == 'L' else 'RGB or gray'}"


def orientation_of(path: Path) -> tuple[Image.Exif | None, str]:
    """The file's EXIF (None when it has none) and its mode as stored."""
    with Image.open(path) as image:
        exif = image.getexif()
        return (exif if len(exif) else None), image.mode


def as_stored(image: Image.Image, exif: Image.Exif | None, mode: str) -> Image.Image:
    """Upright pixels back to the file's stored orientation, with the opaque alpha it had."""
    if mode in ALPHA_MODES and image.mode == ALPHA_MODES[mode]:
        image.putalpha(255)
    undo = UNDO_ORIENTATION.get(int(exif.get(ORIENTATION, 1))) if exif is not None else None
    return image.transpose(undo) if undo is not None else image


def is_gray(array: np.ndarray) -> bool:
    """One channel, or three equal ones."""
    return array.ndim == 2 or bool((array[..., 0] == array[..., 1]).all() and (array[..., 1] == array[..., 2]).all())


def to_working(array: np.ndarray, channels: int, size: int | None) -> np.ndarray:
    """A file's pixels in the working form: ``channels`` channels, ``size`` x ``size`` when given.

    RGB -> gray keeps an equal channel as it is and takes scikit-image's luma otherwise; resizing
    is scikit-image's with anti-aliasing, as for support images."""
    if channels == 1 and array.ndim == 3:
        array = array[..., 0] if is_gray(array) else _rounded(rgb2gray(array.astype(np.float64)), array.dtype)
    elif channels == 3 and array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if size and array.shape[:2] != (size, size):
        shape = (size, size, *array.shape[2:])
        array = _rounded(resize(array.astype(np.float64), shape, anti_aliasing=True, preserve_range=True), array.dtype)
    return array


def _rounded(values: np.ndarray, dtype) -> np.ndarray:
    return np.clip(np.rint(values), 0, np.iinfo(dtype).max).astype(dtype)


def noise_for_file(delta: np.ndarray, shape: tuple, levels: int, max_l0: float) -> np.ndarray:
    """Integer noise for a file of ``shape`` from ``delta``, the noise made in the working form.

    Bilinear resizing (with a Gaussian pre-filter when shrinking) weighs values with non-negative
    weights summing to one, and channel means do too, so no value leaves [-levels, levels]; the
    positions kept are the ``max_l0`` fraction of the file's positions with the largest change."""
    noise = delta.astype(np.float64)
    if noise.shape[:2] != tuple(shape[:2]):
        noise = resize(noise, (*shape[:2], *noise.shape[2:]), order=1, anti_aliasing=noise.shape[0] > shape[0],
                       preserve_range=True)
    if noise.ndim == 3 and len(shape) == 2:
        noise = noise.mean(axis=2)
    elif noise.ndim == 2 and len(shape) == 3:
        noise = np.repeat(noise[..., None], shape[2], axis=2)
    noise = np.clip(np.rint(noise), -levels, levels).astype(np.int32)
    if max_l0 < 1.0:
        strength = np.abs(noise).max(axis=2) if noise.ndim == 3 else np.abs(noise)
        keep = int(max_l0 * strength.size)
        if np.count_nonzero(strength) > keep:
            order = np.argsort(strength, axis=None, kind="stable")[::-1]
            dropped = np.zeros(strength.size, bool)
            dropped[order[keep:]] = True
            noise[dropped.reshape(strength.shape)] = 0
    return noise
