"""What restores a release's originals: written sealed into the release, read back with the key.

The plain payload is a zip, built in an unnamed temporary file and sealed (:mod:`.sealing`) into
``restoration.sealed`` at the release root; it never exists in the release folder unsealed:

- ``perturbation.npy``: released minus original for every train image, in stored levels (int8
  for 8-bit data, int16 for 16-bit), deflated (sparse noise is mostly zeros);
- ``record.json``: the release format, the SHA-256 of the original train pixels (for ``.npz``
  the whole array, for folders each file's, :func:`pixel_digest`) so that what restore gives
  back is checked before it is written, and, for folders, the train files in order, the files
  renamed (JPEG written as PNG) and the DICOM elements a derived file changes;
- ``originals/<path>``: the original bytes of JPEG train images, which no re-encoding restores.

Reading streams the perturbation a chunk of rows at a time, so restoring needs memory for a
chunk, not for the dataset. The sealed file is bound to the release's manifest (its digest is
associated data), so a manifest changed after writing makes it undecryptable.
"""
from __future__ import annotations

import hashlib
import json
import math
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..data.bounded import npy_header
from ..errors import InputError
from .sealing import default_key_path, manifest_digest, new_key, new_release_id, read_key_file, seal, unseal

RESTORATION = "restoration.sealed"
CHUNK = 256
CHUNK_BYTES = 1 << 22  # written a few MiB at a time


@dataclass
class Sealed:
    """The key material of a release just written: the key file is written from it."""

    key: bytes
    release_id: str


def new_sealed() -> Sealed:
    """A fresh key and release id, before the manifest that names the id is written."""
    return Sealed(key=new_key(), release_id=new_release_id())


def pixel_digest(pixels) -> str:
    """SHA-256 of an image's (or an array's) dtype, shape and values: what a restored original must match."""
    pixels = np.ascontiguousarray(pixels)
    digest = hashlib.sha256(f"{pixels.dtype.str}{pixels.shape}".encode())
    digest.update(memoryview(pixels).cast("B"))
    return digest.hexdigest()


def write_restoration(folder: Path, sealed: Sealed, manifest: dict, perturbation, record: dict,
                      originals: dict[str, Path] | None = None) -> None:
    """Seal the payload into ``folder/restoration.sealed`` under ``sealed``'s key, bound to ``manifest``."""
    with tempfile.TemporaryFile(prefix="medshield-") as plain:
        with zipfile.ZipFile(plain, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            header = {"descr": np.lib.format.dtype_to_descr(perturbation.dtype), "fortran_order": False,
                      "shape": tuple(perturbation.shape)}
            with archive.open("perturbation.npy", "w", force_zip64=True) as handle:
                np.lib.format.write_array_header_1_0(handle, header)
                rows = max(1, CHUNK_BYTES // max(1, perturbation[:1].nbytes))  # a folder's is flat: one value a row
                for start in range(0, len(perturbation), rows):
                    handle.write(np.ascontiguousarray(perturbation[start:start + rows]).tobytes())
            archive.writestr("record.json", json.dumps(record))
            for rel, path in (originals or {}).items():
                archive.write(path, f"originals/{rel}")
        with open(folder / RESTORATION, "wb") as dest:
            seal(plain, dest, sealed.key, sealed.release_id, manifest_digest(manifest))


class Restoration:
    """The unsealed payload of one release (in an unnamed temporary file)."""

    def __init__(self, release_dir: Path, manifest: dict, key_file: str | Path | None = None):
        key_path = Path(key_file) if key_file else default_key_path(release_dir)
        if not key_file and not key_path.exists():
            raise InputError(f"{release_dir} needs its originals: pass --key FILE (the key written with the release, "
                             f"default {key_path}) or --original PATH")
        key = read_key_file(key_path)
        if key["release_id"] != manifest.get("release_id"):
            raise InputError(f"the key {key_path} belongs to release {key['release_id']}, not to {release_dir} "
                             f"({manifest.get('release_id')}); use the key written with this release")
        self.key_path = key_path
        self.private = key.get("private", {})
        self._plain = unseal(release_dir / RESTORATION, key["key"], key["release_id"], manifest_digest(manifest))
        try:
            self._archive = zipfile.ZipFile(self._plain)
            self.record = json.loads(self._archive.read("record.json"))
        except (zipfile.BadZipFile, KeyError, ValueError):
            raise InputError(f"{release_dir / RESTORATION}: decrypted, but its content is not a medshield payload") from None

    def perturbation(self, chunk: int = CHUNK) -> Iterator[tuple[slice, np.ndarray]]:
        """``(rows, released minus original)`` for the train images, ``chunk`` rows at a time."""
        with self._archive.open("perturbation.npy") as handle:
            shape, dtype = _header(handle)
            per_row = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
            for start in range(0, shape[0], chunk):
                rows = min(chunk, shape[0] - start)
                block = np.frombuffer(handle.read(rows * per_row), dtype=dtype).reshape(rows, *shape[1:])
                yield slice(start, start + rows), block

    @contextmanager
    def file_perturbations(self) -> Iterator[Callable[[tuple], np.ndarray]]:
        """``take(shape)``: the next file's released minus original, for files of their own sizes
        (a folder release stores them one after another; a fixed-shape array reads the same way)."""
        with self._archive.open("perturbation.npy") as handle:
            _, dtype = _header(handle)

            def take(shape: tuple) -> np.ndarray:
                size = math.prod(shape) * dtype.itemsize
                raw = handle.read(size)
                if len(raw) != size:
                    raise InputError("the restoration payload holds fewer values than the release's train images")
                return np.frombuffer(raw, dtype=dtype).reshape(shape)

            yield take

    def original_bytes(self, rel: str) -> bytes | None:
        """The original file of a JPEG train image, or None where pixels restore it."""
        try:
            return self._archive.read(f"originals/{rel}")
        except KeyError:
            return None

    def close(self) -> None:
        self._archive.close()
        self._plain.close()

    def __enter__(self) -> "Restoration":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _header(handle) -> tuple[tuple, np.dtype]:
    """Shape and dtype of the payload's ``.npy`` stream, checked to be a plain C-order array."""
    shape, fortran, dtype = npy_header(handle, "the restoration payload")
    if fortran:
        raise InputError("the restoration payload holds an unexpected array")
    return shape, dtype


def restore_rows(released, restoration: Restoration) -> Iterator[tuple[slice, np.ndarray]]:
    """The original train images, chunk by chunk: released minus the perturbation, exactly."""
    for rows, delta in restoration.perturbation():
        block = np.asarray(released[rows])
        if block.shape != delta.shape:
            raise InputError(f"the restoration payload has images of shape {delta.shape[1:]}, the release {block.shape[1:]}")
        yield rows, (block.astype(np.int32) - delta.astype(np.int32)).astype(block.dtype)
