"""What one protection run uses, handed to the method rather than kept on it.

A :class:`Protection` holds only its parameters; everything of a run (the device and precision,
where its state is saved, where its arrays live, what it logged, the method's own per-run arrays)
is a :class:`RunContext` built by ``Protection.protect`` and passed to ``_perturb``. So one method
instance can run twice, or in several processes at once, and a run can be given another
:class:`Storage` (e.g. arrays every process of a distributed run shares) or checkpointer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import torch

from .._distributed import World, guarded
from ..data.scratch import ScratchArray
from ._storage import NoiseStore


class Storage:
    """Where a run keeps arrays the size of the dataset: on-disk scratch files (the default)."""

    def array(self, shape: tuple[int, ...], dtype) -> ScratchArray:
        """An array a method reads and writes by rows (the release, SALM's masks)."""
        return ScratchArray(shape, np.dtype(dtype))

    def noise(self, shape: tuple[int, ...], eps_levels: int, maximum: int) -> NoiseStore:
        """Per-image noise in whole levels of the stored format."""
        return NoiseStore(shape, eps_levels, maximum, self)


@dataclass
class RunContext:
    """One run's device, precision, checkpointer (None: none), storage, log and per-run state; under
    torchrun, this process's place in the data-parallel run (``world``; None: one process)."""

    device: torch.device
    precision: str = "fp32"
    checkpoint: object | None = None
    resume: bool = False
    storage: Storage = field(default_factory=Storage)
    log: list[dict] = field(default_factory=list)
    #: the method's own arrays for this run (noise store, masks, class scores), set by its hooks
    state: SimpleNamespace = field(default_factory=SimpleNamespace)
    world: World | None = None

    @property
    def main(self) -> bool:
        """Whether this process yields the release (rank 0, or the only process)."""
        return self.world is None or self.world.main

    def guard(self):
        """Around the run: a lost peer is one line (:meth:`World.guard`); nothing in one process."""
        return guarded(self.world)

    @property
    def resuming(self) -> bool:
        """Whether to continue from the checkpoint rather than start."""
        return self.checkpoint is not None and self.resume
