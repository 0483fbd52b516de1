"""A data owner's folder of images: PNG, JPEG, TIFF or BMP; 8- or 16-bit; gray or RGB.

Labels come from the folder names (``root/<label>/...`` or, one ImageFolder per split,
``root/<split>/<label>/...``; see :mod:`.folder_scan`) or from a CSV file with columns
``path,label`` and an optional ``split`` (train / val / test). Without splits every image is a
training image. Everything is validated before any work in one pass that decodes each file once
and keeps none (:mod:`.folder_inspect`): unreadable files, unsupported modes, mixed bit depths,
duplicate or missing CSV entries each give one error line naming the file.

Gray and colour images, and images of different sizes, may be mixed: the source model sees one
working form (:mod:`.image_modes`) and every file is written back in its own size, mode and
format. Duplicates and train/test leaks are reported (:mod:`.duplicates`).

Images are read lazily: a split's pixels are decoded on first use, one file at a time, into an
on-disk cache (:mod:`.scratch`) that ``images(split)`` maps, so a folder larger than RAM can be
protected.
"""
from __future__ import annotations

import hashlib
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import png
import tifffile
from PIL import Image

from ..errors import InputError
from .bounded import check_declared
from .duplicates import duplicate_pairs, duplicate_report, log_duplicates, train_groups
from .folder_inspect import choose_working, inspect_files
from .folder_scan import scan_folder, walk
from .image_modes import as_stored, orientation_of, to_working, upright
from .labels import check_one_task, class_order, paths_from_csv
from .scratch import ScratchArray

log = logging.getLogger(__name__)
LABELS_COPY = "medshield-labels.csv"
# What a release adds at its root (medshield.release writes them): never read as the owner's files,
# so that a release reads back as the folder it was made from.
RESERVED = ("manifest.json", "restoration.sealed", LABELS_COPY, "manifest.sig", "owner.pub")

SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"}
SAMPLE_BYTES = {"I;16": 2, "I;16B": 2, "I;16L": 2, "I": 4, "F": 4}  # per band, as decoded; others 1
MODES = {"L": (np.uint8, 1), "RGB": (np.uint8, 3), "I;16": (np.uint16, 1), "I;16B": (np.uint16, 1), "I;16L": (np.uint16, 1)}


def read_image(path: Path, convert: bool = False) -> np.ndarray:
    """One image, upright, as (H, W) or (H, W, 3), uint8 or uint16, or one clear error."""
    return read_pixels(path, convert)[0]


def read_pixels(path: Path, convert: bool = False) -> tuple[np.ndarray, str | None]:
    """:func:`read_image` and, when ``convert`` changed the image's mode, what it did."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # over the limit at all: an error, not a warning
            image = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"{path}: more pixels than the limit of {Image.MAX_IMAGE_PIXELS:,} (a decompression bomb?); "
                         "if the image is genuine, split or downscale it") from None
    except Exception as exc:  # a damaged file can make a decoder raise nearly anything: one line per file
        raise InputError(f"{path}: cannot read the image ({exc.__class__.__name__}); is it a valid {path.suffix} file?") from None
    try:
        with image:  # the size its header declares, checked before anything is decoded
            check_declared(image.width * image.height * len(image.getbands()) * SAMPLE_BYTES.get(image.mode, 1), str(path))
            if image.mode in ("RGB", "RGBA") and _bits_per_sample(image, path) == 16:  # RGBA: refused there
                return _read_rgb16(image, path), None
            fmt = image.format
            image, note = upright(image, path, convert)
            mode = image.mode
            if mode == "I" and fmt == "PNG":  # Pillow opens some 16-bit gray PNGs as 32-bit "I"
                array = np.asarray(image)
                if array.min() < 0 or array.max() > 65535:
                    raise InputError(f"{path}: 32-bit values out of the 16-bit range; store 8- or 16-bit images")
                return array.astype(np.uint16), note
            if mode not in MODES:
                raise InputError(f"{path}: image mode {mode!r} is not supported; store 8- or 16-bit gray or RGB")
            return np.asarray(image).astype(MODES[mode][0]), note
    except InputError:
        raise
    except Exception as exc:  # truncated or corrupt data found while decoding (OSError, ValueError, SyntaxError, ...)
        raise InputError(f"{path}: cannot read the image ({exc.__class__.__name__}); is it a valid {path.suffix} file?") from None


def _bits_per_sample(image: Image.Image, path: Path) -> int:
    """Pillow opens 16-bit RGB as 8-bit "RGB" (it drops the low byte), so ask the file."""
    if image.format == "PNG":
        with open(path, "rb") as handle:
            return handle.read(25)[24]  # IHDR's bit depth: after the signature, chunk header, width, height
    if image.format == "TIFF":
        return int(np.max(image.tag_v2.get(258, 8)))  # BitsPerSample
    return 8


def _read_rgb16(image: Image.Image, path: Path) -> np.ndarray:
    """16-bit RGB with all 16 bits: PNG through pypng, TIFF through tifffile."""
    try:
        if image.format == "PNG":
            width, height, rows, info = png.Reader(filename=str(path)).asDirect()
            if info["planes"] != 3:
                raise InputError(f"{path}: 16-bit PNG with {info['planes']} channels (alpha?); store 8- or 16-bit gray or RGB")
            return np.vstack([np.asarray(row, np.uint16) for row in rows]).reshape(height, width, info["planes"])
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            array = page.asarray()
    except (OSError, ValueError, KeyError, png.Error) as exc:  # tifffile raises KeyError for a codec it lacks
        detail = exc.args[0] if exc.args else exc.__class__.__name__
        raise InputError(f"{path}: cannot read the 16-bit RGB image ({detail})") from None
    if page.axes.startswith("S"):  # planar (separate) channels
        array = np.moveaxis(array, 0, -1)
    if array.dtype != np.uint16 or array.shape[2:] != (3,):
        raise InputError(f"{path}: TIFF samples {array.dtype} {array.shape} are not 16-bit RGB; store 8- or 16-bit gray or RGB")
    return array


@dataclass
class FolderData:
    """The same interface as MedMNISTData (``images(split)``, ``labels(split)``, ``num_classes``)."""

    name: str
    path: Path
    files: list[str]
    label_index: np.ndarray
    split: np.ndarray
    class_names: list[str]
    caches: dict = field(default_factory=dict)
    task: str = "multi-class"
    channels: int | None = None  # the working form's channels and square size (None: the files' own)
    size: int | None = None
    convert: bool = False
    shapes: list = field(default_factory=list)  # each file's own (H, W[, C])
    pairs: list = field(default_factory=list)  # duplicate pairs (i, j, kind)
    notes: dict = field(default_factory=dict)  # what the manifest says about the folder

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def label_names(self) -> dict:
        return {str(i): name for i, name in enumerate(self.class_names)}

    def has_split(self, split: str) -> bool:
        return bool((self.split == split).any())

    def indices(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == split)

    def images(self, split: str) -> np.ndarray:
        """The split's images (N, H, W[, C]) as a read-only map of :meth:`image_store`: mapped
        afresh on each call, so a caller that drops the array drops its pages too."""
        return self.image_store(split).mapped()

    def image_store(self, split: str) -> ScratchArray:
        """The split's decoded images on disk, built on first use by decoding one file at a time
        (a dataset larger than RAM never sits in memory)."""
        if split not in self.caches:
            rows = self.indices(split)
            if not len(rows):
                raise InputError(f"{self.path}: no image has split {split!r}")
            first = self.read_working(self.path / self.files[rows[0]])
            store = ScratchArray((len(rows), *first.shape), first.dtype)
            store[0] = first
            for n, i in enumerate(rows[1:], start=1):
                store[n] = self.read_working(self.path / self.files[i])
            self.caches[split] = store
        return self.caches[split]

    def labels(self, split: str) -> np.ndarray:
        return self.label_index[self.indices(split)]

    maximum = None  # the stored dtype's full range

    def output_name(self, rel: str, jpeg_as_png: bool) -> str:
        path = Path(rel)
        if jpeg_as_png and SUFFIXES.get(path.suffix.lower()) == "JPEG":
            return path.with_suffix(".png").as_posix()
        return rel

    def write_file(self, rel: str, array: np.ndarray, dest: Path, manifest: dict) -> dict | None:
        """Write one protected image; returns what else of the file it changed (nothing, for images)."""
        fmt = "PNG" if dest.suffix.lower() == ".png" else SUFFIXES[Path(rel).suffix.lower()]
        write_image(array, dest, fmt, like=self.path / rel)
        return None

    def restore_file(self, release_file: Path, array: np.ndarray, dest: Path, elements: dict | None) -> None:
        """Write an original image with pixels ``array`` in the format of its name ``dest`` (and the
        orientation tag and alpha of the released file, which has the original's)."""
        write_image(array, dest, SUFFIXES[dest.suffix.lower()], like=release_file)

    def read_file(self, path: Path) -> np.ndarray:
        """A file's own pixels, upright."""
        return read_image(path, self.convert)

    def read_working(self, path: Path) -> np.ndarray:
        """A file's pixels in the working form the source model and victims see."""
        return to_working(self.read_file(path), self.channels, self.size)

    def is_lossy(self, rel: str, jpeg_as_png: bool) -> bool:
        return self.is_jpeg(rel) and not jpeg_as_png

    def is_jpeg(self, rel: str) -> bool:
        """A JPEG original: no re-encoding gives its pixels back, so restoration keeps its bytes."""
        return SUFFIXES.get(Path(rel).suffix.lower()) == "JPEG"

    def train_duplicate_groups(self) -> list[list[int]]:
        """Groups of train rows that are the same image (byte- or near-duplicates): one noise for each group."""
        return train_groups(self.pairs, self.indices("train"))

    def fingerprint(self) -> str:
        """sha256 over every image's relative path and bytes: identifies the exact input."""
        digest = hashlib.sha256()
        for rel in sorted(self.files):
            digest.update(rel.encode())
            digest.update(hashlib.sha256((self.path / rel).read_bytes()).digest())
        return digest.hexdigest()


def load_folder(root: str | Path, labels_csv: str | Path | None = None, *, size: int | None = None,
                channels: int | None = None, convert: bool = False) -> FolderData:
    """Read and validate a folder of images (each is decoded once, before any work).

    ``channels`` (1 or 3) and ``size`` set the working form (default: colour when any image has
    colour; the images' own size, or the median capped at 224 when they differ); ``convert`` lets
    Pillow convert palette, CMYK and transparent images instead of refusing them."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise InputError(f"{root} is not a folder")
    if labels_csv:
        files, names, splits = paths_from_csv(root, Path(labels_csv), tuple(SUFFIXES), "a PNG, JPEG, TIFF or BMP file")
        scan = walk(root, SUFFIXES, RESERVED)
        scan.others += sorted(set(scan.files) - set(files))  # images the labels file leaves out are not protected
        layout = {"kind": "labels-csv"}
    else:
        scan = scan_folder(root, SUFFIXES, RESERVED)
        files, names, splits, layout = scan.files, scan.labels, scan.splits, scan.layout
    if not files:
        raise InputError(f"{root}: no PNG, JPEG, TIFF or BMP images found")
    classes = class_order(names)
    check_one_task(root, names, splits)
    data = FolderData(
        name=root.name, path=root, files=files, label_index=np.array([classes.index(n) for n in names], dtype=np.int64),
        split=np.array(splits), class_names=classes, convert=convert,
    )
    if not data.has_split("train"):
        raise InputError(f"{labels_csv}: no image has split 'train'; there is nothing to protect")
    found = inspect_files(root, files, lambda path: read_pixels(path, convert))
    data.channels, data.size, working = choose_working(found, size, channels, root)
    data.shapes, data.pairs = found.shapes, duplicate_pairs(found.sha256, found.phash, found.thumbnails)
    duplicates = duplicate_report(files, splits, data.pairs)
    log_duplicates(root, duplicates)
    _log_odd_files(root, scan.skipped, scan.others)
    data.notes = {"layout": layout, "working": working, "duplicates": duplicates, "converted": found.converted,
                  "skipped_files": len(scan.skipped), "other_files": scan.others}
    return data


def _log_odd_files(root: Path, skipped: list[str], others: list[str]) -> None:
    if skipped:
        log.warning("%s: skipped %d hidden or system files (e.g. %s): not read and not copied into a release "
                    "(thumbnail caches hold copies of the images)", root, len(skipped), skipped[0])
    if others:
        shown = ", ".join(others[:5]) + (f" (+{len(others) - 5} more)" if len(others) > 5 else "")
        log.warning("%s: %d files are not images medshield reads and are copied unchanged: %s", root, len(others), shown)


def write_image(array: np.ndarray, path: Path, fmt: str, like: Path | None = None) -> None:
    """Write one image losslessly in ``fmt`` (JPEG at quality 100, the least lossy it allows);
    with ``like``, in that file's stored orientation, with its EXIF and its opaque alpha."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.dtype == np.uint16 and array.ndim == 3:  # 16-bit RGB, which Pillow cannot write
        if fmt == "TIFF":
            tifffile.imwrite(path, array, photometric="rgb", metadata=None)  # uncompressed, no tifffile description
        else:
            with open(path, "wb") as handle:
                png.Writer(array.shape[1], array.shape[0], greyscale=False, bitdepth=16).write(handle, array.reshape(array.shape[0], -1))
        return
    image, exif = Image.fromarray(array), None
    if like is not None:
        exif, mode = orientation_of(like)
        exif = exif if fmt in ("JPEG", "PNG") else None  # elsewhere Pillow cannot write it back: stays upright
        image = as_stored(image, exif, mode)
    kept = {"exif": exif} if exif is not None else {}
    if fmt == "JPEG":
        image.save(path, format="JPEG", quality=100, subsampling=0, **kept)
    elif fmt == "TIFF":
        image.save(path, format="TIFF", compression=None)
    else:
        image.save(path, format=fmt, **kept)

