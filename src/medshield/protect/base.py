"""The interface every protection method implements, and the registry that lists them.

Shaped after torchattacks' ``Attack``: the base class does the shared work (seeding, layout
conversion, the L0 projection for sparse methods, quantization to the stored format) and a
method implements only ``_perturb``, which yields ``(index, delta)`` pairs: a float perturbation
for a batch of the (N, C, H, W) images in [0, 1], every image once.

Nothing of the size of the dataset is held in memory: the images are read per batch
(``_storage.TrainImages``), the released images are written per batch to an on-disk
:class:`~medshield.data.scratch.ScratchArray`, and methods keep their per-image state on disk too.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from .._registry import Registry
from .._distributed import current_world
from .._runtime import pick_device, seed_everything
from ..data.medmnist import MedMNISTData
from ..data.scratch import ScratchArray
from ..data.tensors import to_stored, to_tensor
from ..errors import InputError
from ..models import resolve_precision
from ._ops import project_l0, quantize
from ._storage import TrainImages
from ._shared import SharedCheckpoint, SharedStorage
from .run import RunContext, Storage

PROTECTIONS: Registry[type["Protection"]] = Registry("method")


def register_protection(cls):
    PROTECTIONS.register(cls.name)(cls)
    return cls


def list_protections(pattern: str = "*") -> list[str]:
    return PROTECTIONS.names(pattern)


@dataclass
class ProtectionResult:
    """Protected train images in the stored layout (on disk), plus what produced them."""

    released: ScratchArray
    params: dict
    seconds: float
    max_linf: int
    max_l0: float
    precision: str = "fp32"
    log: list[dict] = field(default_factory=list)

    @property
    def images(self) -> np.ndarray:
        """The protected images as a read-only array (a map of ``released``)."""
        return self.released.mapped()


def check_range(owner: str, name: str, value, low, high, hint: str = "") -> None:
    if not (low <= value <= high):
        raise InputError(f"{owner}: {name} must be in [{low}, {high}], got {value!r}{hint}")


class Protection:
    """Base class: subclasses set ``name``, declare what they need, and implement ``_perturb``.

    Parameters
    eps : float, default=8/255
        L-inf radius: no pixel value moves by more.
    """

    name = "base"
    # What a method needs and offers, declared once here (torchattacks' and timm's way), so that the
    # pipeline, CLI and report ask the method instead of naming it.
    #: trains a source model: runs long, saves checkpoints, takes a network precision
    needs_source_model = False
    #: the fewest classes its train split must hold; with fewer, ``task_problem`` says what helps
    min_classes = 1
    #: borrowed support classes give it a task when the owner holds one class (paper Section 7.1)
    accepts_support = False
    #: the radius above which its change is no longer imperceptible (the paper and baselines use 8/255)
    visible_eps = 16 / 255
    #: its settings per named preset, on top of the preset's common ones (``presets.PRESETS``)
    presets: dict[str, dict] = {}
    #: runs data-parallel under torchrun (``_distributed``); the others run in one process
    distributed = False
    #: the SALM paper's published numbers for it (arXiv:2403.10573; ``report/paper.py`` gathers them, from
    #: the class itself, never a parent's): Table 1's victim test accuracy % per MedMNIST flag, and
    #: Table 5's similarity % of its release to the originals (SSIM, hashes, NMI)
    #: parameters that make another setting, and how the setting names them where not at their default
    setting_options: dict[str, Callable[[object], str]] = {}
    paper_accuracy: dict[str, float] = {}
    paper_utility: dict[str, float] = {}

    def __init__(self, *, eps: float = 8 / 255):
        check_range(self.name, "eps", eps, 1 / 255, 1.0, " (a fraction of the range: 8/255, not 8)")
        self.eps = eps

    @property
    def max_l0(self) -> float:
        """Fraction of pixel positions a release may change per image (1.0: no L0 bound)."""
        return 1.0

    def sparsity(self) -> str:
        """What bounds the number of changed positions, in words (the manifest and report say it)."""
        if self.max_l0 < 1.0:
            return f"sparse release: at most {100 * self.max_l0:g} % of each image's pixel positions changed"
        return "dense release: no bound on the number of changed positions"

    def eps_levels(self, maximum: int) -> int:
        """The radius in levels of a format whose full range is ``maximum`` (8/255 -> 2056 of 65535)."""
        return int(round(self.eps * maximum))

    @classmethod
    def task_problem(cls, classes: int, with_support: bool) -> str | None:
        """Why a train split with ``classes`` classes gives this method nothing to do (None: it does)."""
        if classes >= cls.min_classes or (with_support and cls.accepts_support):
            return None
        if cls.accepts_support:
            return (f"{cls.name} needs a task with {cls.min_classes} or more classes. Add --support SOURCE (a MedMNIST "
                    "flag such as pathmnist, a MedMNIST-layout .npz or an image folder) to borrow classes for the "
                    "generation (paper Section 7.1)")
        return f"{cls.name} needs {cls.min_classes} or more classes"

    def distributed_problem(self, processes: int) -> str | None:
        """Why these settings cannot run in ``processes`` data-parallel processes (None: they can)."""
        return None if self.distributed else "it runs in one process"

    @classmethod
    def setting(cls, params: dict) -> str:
        """A release's setting in a few words, as the frontier and the defense grid name it ("em eps=8",
        "salm k=0.50 dct=2"): the method's own words, then each of ``setting_options`` away from its default."""
        return " ".join([cls.setting_head(params), *cls.setting_words(params)])

    @classmethod
    def setting_words(cls, params: dict) -> list[str]:
        """Each of ``setting_options`` away from its default, in its own words (["dct=2", "eps=20"])."""
        defaults = cls().params()
        return [word(params[key]) for key, word in cls.setting_options.items()
                if key in params and params[key] != defaults.get(key)]

    @classmethod
    def setting_head(cls, params: dict) -> str:
        return f"{cls.name} eps={round(255 * params.get('eps', 8 / 255)):g}"

    def params(self) -> dict:
        return {key: value for key, value in vars(self).items() if not key.startswith("_")}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"

    def protect(
        self, data: MedMNISTData, *, seed: int = 0, device: str = "auto", progress: bool = True, precision: str = "auto",
        checkpoint=None, resume: bool = False, storage: Storage | None = None,
    ) -> ProtectionResult:
        """Perturb the train split of ``data``; returns images of the stored dtype within the bounds.

        ``precision`` ("auto", "fp32", "bf16") is that of the networks a method trains and attacks.
        ``checkpoint`` (a :class:`~medshield.protect.Checkpoint`) makes the methods that train a
        source model (SALM, EM, TAP) save their state as they go; ``resume`` continues from it,
        with the same bytes as a run that was never interrupted. ``storage`` says where the run's
        dataset-sized arrays live (default: scratch files on disk). The instance keeps nothing of
        the run: everything goes through the :class:`~medshield.protect.run.RunContext`. Under
        ``torchrun`` with several processes (``_distributed``), a method that declares ``distributed``
        runs data-parallel with its arrays in the checkpoint's work folder, and only rank 0's result
        holds the released images.
        """
        run = self._context(pick_device(device), precision, checkpoint, resume, storage)
        generator = seed_everything(seed)
        x = TrainImages(data, run.device)
        labels = torch.from_numpy(data.labels("train")).to(x.device)
        levels = self.eps_levels(x.maximum)
        released = run.storage.array(x.stored_shape, x.dtype)
        start = time.perf_counter()
        with run.guard():
            for index, delta in self._perturb(x, labels, run, num_classes=data.num_classes, generator=generator,
                                              progress=progress and run.main):
                delta = delta.detach().cpu()
                if self.max_l0 < 1.0:
                    delta = project_l0(delta, self.max_l0)
                rows = index.cpu().numpy()
                stored = x.read(rows)
                released[rows] = to_stored(quantize(to_tensor(stored), delta, levels, x.maximum), stored)
        return ProtectionResult(
            released=released,
            params={"method": self.name, **self.params()},
            seconds=time.perf_counter() - start,
            max_linf=levels,
            max_l0=self.max_l0,
            precision=run.precision,
            log=run.log,
        )

    def _context(self, dev, precision, checkpoint, resume, storage) -> RunContext:
        """The run's context; under torchrun, on this process's device, with shared arrays and checkpoint."""
        world = current_world()
        if world is None:
            return RunContext(dev, resolve_precision(precision, dev), checkpoint, resume, storage or Storage())
        problem = self.distributed_problem(world.size)
        if problem or checkpoint is None:
            problem = problem or "it needs a checkpoint: its work folder holds the arrays the processes share"
            raise InputError(f"torchrun: {self.name} cannot run in {world.size} processes: {problem}; run it without "
                             "torchrun (one process)")
        dev = world.device(dev)
        world.start(dev)
        return RunContext(dev, resolve_precision(precision, dev), SharedCheckpoint(checkpoint, world, dev), resume,
                          storage or SharedStorage(checkpoint.folder, world), world=world)

    def _perturb(
        self, x: TrainImages, y: torch.Tensor, run: RunContext, *, num_classes: int, generator: torch.Generator,
        progress: bool,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        raise NotImplementedError
