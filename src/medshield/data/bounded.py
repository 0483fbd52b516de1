"""Reading what a stranger sends without letting it exhaust the machine: sizes known before allocation.

A 6 MB ``.npz`` can inflate to 6 GB (a zip bomb), and an ``.npy`` header can declare any shape.
Each member's header is read first (a few hundred bytes, ``numpy.lib.format``); the size its shape
and dtype declare is checked against a limit before anything is inflated or allocated; the array
is then read to exactly that size, and a member holding more data than its header declares is
refused. Images get the same byte limit on the size their header declares, beside Pillow's pixel
limit.

The limit on one array defaults to a fifth of this machine's memory (``load`` holds every array of
a file at once, and protection needs as much again), all arrays of one file together to twice
that; ``--max-input-bytes`` sets the first.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from ..errors import InputError

_limit: int | None = None


def input_limit() -> int:
    """The most bytes one array or image may declare: ``--max-input-bytes``, else a fifth of the RAM."""
    if _limit is not None:
        return _limit
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 5


def set_input_limit(limit: int | None) -> None:
    global _limit
    if limit is not None and limit < 1:
        raise InputError(f"--max-input-bytes must be a positive number of bytes, got {limit}")
    _limit = limit


def check_declared(nbytes: int, what: str, times: int = 1) -> None:
    """One line when ``what`` declares more bytes than ``times`` the limit allows."""
    if nbytes > times * input_limit():
        raise InputError(f"{what} declares {_size(nbytes)} once decoded, above the limit of {_size(times * input_limit())}; "
                         "if the file is genuine, raise it with --max-input-bytes")


def _size(nbytes: int) -> str:
    return f"{nbytes / 1e9:.2f} GB" if nbytes >= 1e8 else f"{nbytes:,} bytes"


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every member of an ``.npz`` (no pickles), each checked against the limit before it is inflated."""
    arrays = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            name = info.filename.removesuffix(".npy")
            with archive.open(info) as handle:
                shape, fortran, dtype = npy_header(handle, f"{path}: {name}")
                declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
                check_declared(declared, f"{path}: {name} (shape {shape}, {dtype})")
                total = sum(a.nbytes for a in arrays.values()) + declared
                check_declared(total, f"{path} (all its arrays together)", times=2)
                handle.seek(0)
                arrays[name] = np.lib.format.read_array(handle, allow_pickle=False)
                if handle.read(1):
                    raise InputError(f"{path}: {name} holds more data than its header declares ({shape}, {dtype}); "
                                     "the file is damaged or crafted, save the arrays with numpy.savez")
    return arrays


def read_npy(path: Path) -> np.ndarray:
    """One ``.npy`` file, its declared size checked first."""
    with open(path, "rb") as handle:
        shape, _, dtype = npy_header(handle, str(path))
        check_declared(int(np.prod(shape, dtype=object)) * dtype.itemsize, f"{path} (shape {shape}, {dtype})")
        handle.seek(0)
        return np.lib.format.read_array(handle, allow_pickle=False)


def npy_header(handle, what: str) -> tuple:
    """(shape, fortran order, dtype) from an ``.npy`` header, refusing object arrays."""
    try:
        version = np.lib.format.read_magic(handle)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(handle)
    except ValueError as exc:
        raise InputError(f"{what}: not a valid .npy header ({' '.join(str(exc).split())[:100]})") from None
    if dtype.hasobject:
        raise InputError(f"{what}: holds pickled objects, which medshield never loads; save plain arrays")
    return shape, fortran, dtype
