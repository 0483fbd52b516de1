"""Data-parallel runs under ``torchrun``: which process this is, and the few collectives medshield uses.

``torchrun --nproc-per-node N -m medshield ...`` (PyTorch's launcher, ``torch.distributed.run``)
starts N processes and tells each its place through the environment: ``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK`` and the rendezvous address. medshield reads that here and nowhere else, and runs on
``torch.distributed`` alone: the process group (gloo on CPU, NCCL on CUDA, each process on its
local GPU), ``DistributedDataParallel``, barriers and broadcasts. Without torchrun, or with one
process, :func:`current_world` is None and every caller takes the one-process code, byte for byte.

A peer that dies makes the collectives of the others fail (gloo: its connection closes; NCCL:
the watchdog aborts at ``TIMEOUT``) and torchrun's agent stops the rest: :meth:`World.guard`
turns the failure into one line. ``TIMEOUT`` bounds the wait for a peer: long enough for the
slowest step a healthy peer takes (a checkpoint of a large noise store, written by rank 0 while
the others wait), short enough that a hung peer ends the run instead of holding the devices.
"""
from __future__ import annotations

import atexit
import os
import re
import signal
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from .errors import InputError

TIMEOUT = timedelta(minutes=30)
# What a collective's RuntimeError says when a peer is gone (gloo: "Connection closed by peer"; NCCL: its watchdog).
PEER_LOST = ("connection closed", "connection reset", "gloo", "nccl", "timed out", "timeout")


@dataclass(frozen=True)
class World:
    """This process's place among the ``size`` processes torchrun started (rank 0 writes and publishes)."""

    rank: int
    size: int
    local_rank: int

    @property
    def main(self) -> bool:
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """The device this process runs on: its own GPU (``LOCAL_RANK``) on a CUDA machine."""
        if device.type != "cuda":
            return device
        if self.local_rank >= torch.cuda.device_count():
            raise InputError(f"torchrun: process {self.local_rank} of this machine has no GPU of its own (it has "
                             f"{torch.cuda.device_count()}): start one process per GPU (--nproc-per-node), or add --device cpu")
        torch.cuda.set_device(self.local_rank)
        return torch.device("cuda", self.local_rank)

    def start(self, device: torch.device) -> None:
        """Join the process group (once per process): gloo on CPU, NCCL on CUDA."""
        if dist.is_initialized():
            return
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, rank=self.rank, world_size=self.size, timeout=TIMEOUT,
                                device_id=device if device.type == "cuda" else None)
        atexit.register(dist.destroy_process_group)
        signal.signal(signal.SIGTERM, self._stopped)  # torchrun's agent stops the survivors of a failed peer

    def _stopped(self, signum, frame):
        raise self._lost("stopped by torchrun (another process failed, or the run was interrupted)")

    def share(self, items):
        """This process's share of ``items`` (a batch's indices, a list of chunks): every ``size``-th from ``rank``."""
        return items[self.rank::self.size]

    def generator(self, shared: torch.Generator) -> torch.Generator:
        """A generator of this process's own, seeded from ``shared``'s seed without drawing from it: ``shared``
        (which every process advances alike) then gives the images' random starts and the first pass's
        order that one process draws."""
        return torch.Generator().manual_seed(shared.initial_seed() + 1 + self.rank)

    def barrier(self) -> None:
        dist.barrier()

    def agree(self, flag: bool, device: torch.device) -> bool:
        """Rank 0's ``flag`` on every process (a decision all must take together: save now, stop now)."""
        value = torch.tensor([int(flag)], device=device)
        dist.broadcast(value, src=0)
        return bool(value.item())

    def total(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over the processes, in place (each holds its share's part)."""
        dist.all_reduce(tensor)
        return tensor

    def gather(self, value) -> list:
        """Every process's ``value`` (picklable), in rank order, on every process."""
        values = [None] * self.size
        dist.all_gather_object(values, value)
        return values

    def data_parallel(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """``model`` trained data-parallel: gradients averaged over the processes (DDP). On CUDA its batch
        normalization uses the statistics of the global batch (SyncBatchNorm); PyTorch's runs on GPUs only,
        so on CPU each process normalizes by its share and :meth:`settle` averages the running statistics."""
        if device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            return torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index])
        return torch.nn.parallel.DistributedDataParallel(model, forward_sync_buffers=False)

    def settle(self, model: torch.nn.Module) -> None:
        """After a CPU training step: every process's running statistics the mean of all, so that the
        model each process attacks next (and rank 0 saves) is one model (on CUDA they are one already)."""
        buffers = [b for b in model.buffers() if b.is_floating_point()]
        if not buffers or buffers[0].device.type == "cuda":
            return
        flat = torch.cat([b.reshape(-1) for b in buffers])
        dist.all_reduce(flat)
        flat /= self.size
        for buffer, value in zip(buffers, flat.split([b.numel() for b in buffers])):
            buffer.copy_(value.view_as(buffer))

    @contextmanager
    def guard(self):
        """A collective that fails because a peer is gone ends this process with one line (an OSError)."""
        try:
            yield
        except RuntimeError as exc:  # torch.distributed.DistError is one too
            text = str(exc).strip()
            if not isinstance(exc, dist.DistError) and not any(sign in text.lower() for sign in PEER_LOST):
                raise
            cause = re.sub(r"^\[[^\]]*\]\s*", "", text.splitlines()[0]).split(". ")[0][:120] if text else type(exc).__name__
            raise self._lost(f"another process stopped ({cause})") from None

    def _lost(self, detail: str) -> ConnectionError:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # this process is ending already: torchrun's stop adds nothing
        return ConnectionError(f"process {self.rank} of {self.size}: {detail}; nothing was published: rerun the same "
                               "torchrun command with --resume (same number of processes)")


def current_world() -> World | None:
    """This process's :class:`World` under torchrun with two or more processes, else None."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return None
    return World(rank=int(os.environ["RANK"]), size=size, local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def guarded(world: World | None):
    """Around a run: a lost peer is one line (:meth:`World.guard`); nothing to guard in one process."""
    return nullcontext() if world is None else world.guard()


def is_main() -> bool:
    """Whether this process writes and publishes (rank 0, or the only process)."""
    world = current_world()
    return world is None or world.main


def world_size() -> int:
    world = current_world()
    return 1 if world is None else world.size
