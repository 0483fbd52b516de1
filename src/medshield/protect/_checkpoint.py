"""A long protection's state on disk, so a killed run continues where it stopped.

The work folder sits beside the output (``OUT.work``), never inside the published folder. Each
checkpoint is a folder ``checkpoint-N`` holding ``state.pt`` (tensors and plain values only:
model, optimizer, schedule, random generator states, step counters; read back with
``weights_only=True``), one ``.npy`` per on-disk array (the noise, SALM's masks) and ``run.json``
(what the run is: inputs' fingerprint, method, parameters, seed, threads, precision). The file
``latest`` names the newest complete one and is replaced atomically (``os.replace``) only after
it is written, so a crash at any moment leaves a whole checkpoint to resume from. A write the
machine refuses (disk full, quota, read-only, I/O error) removes the checkpoint being written,
keeps the previous one and ends the run in one line; ``--resume`` continues from it once there is
space. Every file is written with plain ``write`` calls, so a full disk is an ``OSError``: not a
torch ``RuntimeError`` nor the ``SIGBUS`` a memory map of a sparse file gets.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from ..data.scratch import ScratchArray
from ..errors import InputError

CHUNK = 4096  # rows copied at a time between scratch arrays and checkpoint files


def work_folder(out: str | Path) -> Path:
    out = Path(out).expanduser()
    return out.parent / f"{out.name}.work"


class Checkpoint:
    """Save and restore a run's state every ``every_s`` seconds and at stage boundaries."""

    def __init__(self, folder: Path, run: dict, every_s: float = 300.0):
        self.folder = Path(folder)
        self.run = json.loads(json.dumps(run))  # as it reads back from run.json
        self.every_s = every_s
        self._last = time.monotonic()

    @property
    def path(self) -> Path:
        """The newest complete checkpoint (named by ``latest``)."""
        latest = self.folder / "latest"
        return self.folder / latest.read_text().strip() if latest.is_file() else self.folder / "none"

    def exists(self) -> bool:
        return (self.path / "run.json").is_file()

    def check_resumable(self) -> None:
        """The checkpoint must come from this very run: one line naming what differs."""
        if not self.exists():
            raise InputError(f"--resume: no checkpoint in {self.folder}; run without --resume to start")
        saved = json.loads((self.path / "run.json").read_text())
        processes = saved.get("world", 1), self.run.get("world", 1)
        if processes[0] != processes[1]:
            raise InputError(f"--resume: the checkpoint in {self.folder} was written by {processes[0]} process(es) and this "
                             f"run has {processes[1]}: resume with as many (torchrun --nproc-per-node, --nnodes), or delete "
                             "the folder to start over")
        differs = sorted(k for k in set(saved) | set(self.run) if saved.get(k) != self.run.get(k))
        if differs:
            detail = "; ".join(f"{k}: checkpoint {saved.get(k)!r}, now {self.run.get(k)!r}" for k in differs[:3])
            raise InputError(f"--resume: the checkpoint in {self.folder} is of another run ({detail}); "
                             "repeat that run's inputs and settings, or delete the folder to start over")

    def due(self) -> bool:
        return time.monotonic() - self._last >= self.every_s

    def save(self, state: dict, arrays: dict[str, ScratchArray]) -> None:
        previous = self.path
        number = int(previous.name.rsplit("-", 1)[1]) + 1 if previous.name.startswith("checkpoint-") else 0
        target = self.folder / f"checkpoint-{number}"
        pointer = self.folder / f".latest-{os.getpid()}"
        try:
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            _write_checkpoint(target, state, arrays, self.run)
            pointer.write_text(target.name + "\n")
            os.replace(pointer, self.folder / "latest")  # the switch to the new checkpoint: atomic
        except BaseException as exc:  # a refused write, or Ctrl-C: no half-written checkpoint stays
            shutil.rmtree(target, ignore_errors=True)
            pointer.unlink(missing_ok=True)
            if not any(self.folder.iterdir()):
                self.folder.rmdir()
            if not isinstance(exc, OSError):
                raise
            kept = f"the previous one, {previous.name}, is kept" if previous.is_dir() else "there is no earlier one"
            raise InputError(f"cannot write the checkpoint {target} ({exc.strerror}); it was removed and {kept}: free space "
                             "there and rerun with --resume") from None
        if previous.is_dir():
            shutil.rmtree(previous, ignore_errors=True)
        self._last = time.monotonic()

    def load(self, arrays: dict[str, ScratchArray]) -> dict:
        """The saved state; ``arrays`` are filled from the saved files (same shapes and dtypes)."""
        for name, array in arrays.items():
            saved = np.load(self.path / f"{name}.npy", mmap_mode="r", allow_pickle=False)
            if saved.shape != array.shape or saved.dtype != array.dtype:
                raise InputError(f"--resume: {self.path / name}.npy does not match this run; delete {self.folder}")
            for start in range(0, len(array), CHUNK):
                array[start:start + CHUNK] = saved[start:start + CHUNK]
        self._last = time.monotonic()
        return torch.load(self.path / "state.pt", weights_only=True)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _write_checkpoint(target: Path, state: dict, arrays: dict[str, ScratchArray], run: dict) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)  # in memory first: torch reports a full disk as a RuntimeError, not an OSError
    (target / "state.pt").write_bytes(buffer.getbuffer())
    for name, array in arrays.items():
        with open(target / f"{name}.npy", "wb") as handle:
            header = {"descr": np.lib.format.dtype_to_descr(array.dtype), "fortran_order": False, "shape": array.shape}
            np.lib.format.write_array_header_1_0(handle, header)
            for start in range(0, len(array), CHUNK):
                handle.write(np.ascontiguousarray(array[start:start + CHUNK]).tobytes())
    (target / "run.json").write_text(json.dumps(run, indent=1) + "\n")


def save_run(checkpoint: Checkpoint, *, model, generator, log: list, arrays: dict, world=None, draws=None,
             **progress) -> None:
    """Save what every model-based run holds (model, random states, log) beside its own ``progress``; under
    torchrun (``world``) every process's own random states too (``draws``, its generator), gathered to rank 0."""
    ranks = {} if world is None else {"ranks": world.gather((draws.get_state(), torch.get_rng_state()))}
    checkpoint.save({**progress, "model": model.state_dict(), "generator": generator.get_state(),
                     "torch_rng": torch.get_rng_state(), "log": list(log), **ranks}, arrays)


def restore_run(checkpoint: Checkpoint, *, model, generator, log: list, arrays: dict, world=None, draws=None) -> dict:
    """Put a run back as :func:`save_run` left it; returns the saved state (its ``progress`` keys too)."""
    saved = checkpoint.load(arrays)
    model.load_state_dict(saved["model"])
    generator.set_state(saved["generator"])
    torch.set_rng_state(saved["torch_rng"])
    log[:] = saved["log"]
    if world is not None:  # this process's own random states
        draws.set_state(saved["ranks"][world.rank][0])
        torch.set_rng_state(saved["ranks"][world.rank][1])
    return saved
