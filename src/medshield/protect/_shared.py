"""What the processes of a torchrun run share: arrays in the run's work folder, and its checkpoint.

Every process of a data-parallel protection perturbs other images, so the per-image arrays (the
noise store, SALM's masks, the released images) cannot live in each process's unnamed scratch
files: :class:`SharedStorage` keeps them as named files in ``OUT.work/arrays``, created by rank 0
and opened by the others after a barrier. The processes write disjoint rows (each its share of a
batch, its chunks of the final pass) and flush every write (``msync``), so after the next
collective every process reads what the others wrote. On several machines the work folder must
be a folder every machine sees (a shared file system such as NFS or Lustre): the output is given
as a path there.

:class:`SharedCheckpoint` makes the checkpoint a step all processes take together: rank 0 decides
when one is due, everyone waits at a barrier while rank 0 alone writes it (the shared arrays
included, so nobody changes them meanwhile) and reads the arrays back on ``--resume``.
"""
from __future__ import annotations

from pathlib import Path

from .._distributed import World
from ..data.scratch import ScratchArray
from ._checkpoint import Checkpoint
from .run import Storage


class SharedArray(ScratchArray):
    """A :class:`ScratchArray` in a named file every process of the run opens."""

    def __init__(self, path: Path, shape: tuple[int, ...], dtype, *, create: bool):
        super().__init__(shape, dtype, open(path, "w+b" if create else "r+b"), reserve=create)
        self.path = path

    def __setitem__(self, index, value) -> None:
        mapped = self.mapped(writable=True)
        mapped[index] = value
        mapped.flush()  # the other processes (and machines) read it after the next collective


class SharedStorage(Storage):
    """A run's dataset-sized arrays as files in ``folder`` that all processes of ``world`` open."""

    def __init__(self, folder: Path, world: World):
        self.folder = Path(folder) / "arrays"
        self.world = world
        self._count = 0

    def array(self, shape, dtype) -> ScratchArray:
        # Every process asks for the same arrays in the same order, so the n-th array is one file.
        path = self.folder / f"array-{self._count}.bin"
        self._count += 1
        if self.world.main:
            self.folder.mkdir(parents=True, exist_ok=True)
            array = SharedArray(path, shape, dtype, create=True)
        self.world.barrier()
        return array if self.world.main else SharedArray(path, shape, dtype, create=False)


class SharedCheckpoint:
    """A :class:`Checkpoint` all processes of ``world`` take together; rank 0 reads and writes the files."""

    def __init__(self, checkpoint: Checkpoint, world: World, device):
        self._checkpoint = checkpoint
        self.world = world
        self.device = device

    def __getattr__(self, name):  # folder, run, path, exists, check_resumable, remove: the plain checkpoint's
        return getattr(self._checkpoint, name)

    def due(self) -> bool:
        return self.world.agree(self._checkpoint.due(), self.device)

    def save(self, state: dict, arrays: dict) -> None:
        self.world.barrier()  # every process has written its rows
        if self.world.main:
            self._checkpoint.save(state, arrays)
        self.world.barrier()  # nobody changes the arrays while rank 0 copies them

    def load(self, arrays: dict) -> dict:
        state = self._checkpoint.load(arrays if self.world.main else {})
        self.world.barrier()  # rank 0 has filled the shared arrays
        return state
