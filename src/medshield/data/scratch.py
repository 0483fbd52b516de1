"""On-disk scratch arrays, so that datasets larger than RAM can be protected.

A :class:`ScratchArray` lives in an unnamed temporary file: the file is deleted as soon as it is
created, so the OS frees its space when the array is garbage-collected, even after a crash. It
is memory-mapped (``np.memmap``) only while a batch is read or written, never for the whole run:
the pages then sit in the OS page cache, which the kernel can write back and drop, instead of in
the process's resident memory, and protection needs memory for a batch, not for the dataset.
A mapping held for the whole run would count every page it ever touched in the resident set.

The file goes to Python's temporary folder (``TMPDIR``, else ``/tmp``); where ``/tmp`` is a RAM
disk (tmpfs), set ``TMPDIR`` to a folder on a disk. Its space is reserved when it is created
(``posix_fallocate``): a full disk is then one ``OSError`` at the start, not a ``SIGBUS`` when a
mapped page of a sparse file finds no block to go to.
"""
from __future__ import annotations

import errno
import math
import os
import tempfile

import numpy as np


class ScratchArray:
    """A fixed-shape array on disk; index it like an ndarray (reads return in-memory copies)."""

    def __init__(self, shape: tuple[int, ...], dtype, file=None, *, reserve: bool = True):
        """``file``: an open binary file to hold the array (default: a new unnamed temporary one);
        ``reserve``: size it and reserve its space (False: it already holds the array)."""
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self._file = tempfile.TemporaryFile(prefix="medshield-") if file is None else file
        if reserve:
            self._reserve(math.prod(self.shape) * self.dtype.itemsize)

    def _reserve(self, size: int) -> None:
        try:
            if size:
                os.posix_fallocate(self._file.fileno(), 0, size)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # a filesystem that cannot reserve: sparse, as before
                self._file.close()
                raise
        self._file.truncate(size)

    def __len__(self) -> int:
        return self.shape[0]

    def mapped(self, writable: bool = False) -> np.memmap:
        """The whole array as a memory map (read-only unless ``writable``); drop it when done."""
        return np.memmap(self._file, dtype=self.dtype, mode="r+" if writable else "r", shape=self.shape)

    def __getitem__(self, index) -> np.ndarray:
        return np.array(self.mapped()[index])

    def __setitem__(self, index, value) -> None:
        self.mapped(writable=True)[index] = value
