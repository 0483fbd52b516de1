"""TAP / AdvT: targeted adversarial poisoning (Fowl et al. 2021; SALM paper Appendix C.1).

Train a source model on the clean data first, then push every training image towards the next
class, (y + 1) mod C, with PGD (error-*maximizing* for the true label by minimizing the loss of
the target label), averaged over the differentiable transformation T. A network trained on the
result learns features that point to the wrong class. Restarts keep, per image, the noise with
the lowest target loss.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..models.augment import transform_distribution
from ..models.pgd import pgd, project_linf
from ._checkpoint import restore_run, save_run
from ._source import SourceModel, accuracy
from .base import Protection, check_range, register_protection


@register_protection
class TAP(Protection):
    """Targeted adversarial poisons within L-inf ``eps``.

    Parameters
    eps : float, default=8/255
    step_size : float, default=0.8/255
        PGD step (a tenth of the radius: the reference code's tau = 0.1).
    pgd_steps : int, default=250
        PGD steps per restart.
    restarts : int, default=8
        Random restarts; each image keeps the noise with the lowest target loss.
    source_epochs : int, default=40
        Clean training of the source model (reference: 40 epochs with augmentation).
    batch_size, arch, width, lr, momentum, weight_decay, lr_decay, lr_milestones, transform
        Source-model training and the transformation averaged over during PGD (``SourceModel``;
        lr_milestones default (0.5, 0.75)).
    """

    name = "tap"
    # the paper's Table 1 and Table 5 (``Protection.paper_accuracy``)
    paper_accuracy = {"bloodmnist": 19.6, "pneumoniamnist": 66.9, "breastmnist": 44.9, "retinamnist": 39.5}
    paper_utility = {"ssim": 94.6, "ahash": 75.1, "phash": 88.8, "dhash": 77.2, "nmi": 42.7}
    needs_source_model = True
    distributed = True
    min_classes = 2  # each image is pushed towards another class
    setting_options = {"transform": str}
    # 2 CPU cores: the reference search (40 clean epochs, 250 PGD steps x 8 restarts) is ~100x SALM's cost.
    presets = {"cpu": {"source_epochs": 8, "pgd_steps": 20, "restarts": 1}}
    #: the reference code's schedule for its clean source model
    source_defaults = {"lr_milestones": (0.5, 0.75)}

    def __init__(
        self,
        *,
        eps: float = 8 / 255,
        step_size: float = 0.8 / 255,
        pgd_steps: int = 250,
        restarts: int = 8,
        source_epochs: int = 40,
        **source,
    ):
        super().__init__(eps=eps)
        check_range(self.name, "step_size", step_size, 1e-6, eps, " (a fraction of the range: 0.8/255)")
        check_range(self.name, "pgd_steps", pgd_steps, 1, 100_000)
        check_range(self.name, "restarts", restarts, 1, 1000)
        check_range(self.name, "source_epochs", source_epochs, 1, 10_000)
        self.step_size = step_size
        self.pgd_steps = pgd_steps
        self.restarts = restarts
        self.source_epochs = source_epochs
        vars(self).update(SourceModel.checked(self.name, {**self.source_defaults, **source}).settings())

    @staticmethod
    def targets(y: torch.Tensor, num_classes: int) -> torch.Tensor:
        return (y + 1) % num_classes

    def distributed_problem(self, processes: int) -> str | None:
        if self.batch_size % processes:
            return (f"its batch_size {self.batch_size} is not a multiple of {processes}: each process takes an equal share "
                    "of every batch")
        return None

    def train_source_model(self, x, y, model, log: list, *, generator, progress, resume=None, after_step=None, **shares):
        """Train ``model`` as the clean source model; ``x[index]`` gives a batch of float images
        (tensor or TrainImages); ``resume``/``after_step`` (and under torchrun ``world``, ``draws``) as in ``train_source``."""
        source = SourceModel.of(self)
        source.train(model, x, y, steps=self.source_epochs * math.ceil(len(x) / self.batch_size), generator=generator,
                     log=log, desc="tap source model (clean)", progress=progress, resume=resume, after_step=after_step,
                     **shares)
        log.append({"source_train_accuracy": round(accuracy(model, lambda index: x[index], y), 4)})
        return model.eval()

    def _perturb(self, x, y, run, *, num_classes, generator, progress):
        # With a checkpoint, the crafted noise is also kept on disk (whole levels: what the release
        # rounds it to anyway), so a resumed run yields the batches crafted before the kill unchanged;
        # under torchrun always: every process crafts its batches there and rank 0 releases them all.
        world, checkpoint = run.world, run.checkpoint
        draws = generator if world is None else world.generator(generator)  # as in the error-minimizing loop
        model = SourceModel.of(self).build(x, num_classes, run.precision)
        trained = model if world is None else world.data_parallel(model, x.device)
        crafted = run.storage.noise(x.shape, self.eps_levels(x.maximum), x.maximum) if checkpoint is not None else None
        arrays = {"noise": crafted.levels} if crafted is not None else {}
        saved = {"stage": "source", "train": None, "crafted": 0}
        if run.resuming:
            saved = restore_run(checkpoint, model=model, generator=generator, log=run.log, arrays=arrays, world=world,
                                draws=draws)

        def save(stage, train=None, done=0):
            save_run(checkpoint, model=model, generator=generator, log=run.log, arrays=arrays, world=world, draws=draws,
                     stage=stage, train=train, crafted=done)

        def after_step(steps_done, train_state):
            if world is not None:
                world.settle(model)
            if checkpoint is not None and checkpoint.due():
                save("source", train_state())

        if saved["stage"] == "source":
            shares = {} if world is None else {"world": world, "draws": draws}
            self.train_source_model(x, y, trained, run.log, generator=generator, progress=progress, resume=saved["train"],
                                    after_step=after_step, **shares)
            if checkpoint is not None:  # a stage boundary
                save("craft")
        model.eval()
        if world is not None:
            yield from self._craft_shared(run, model, x, y, crafted, save, saved["crafted"], num_classes=num_classes,
                                          generator=draws, progress=progress)
            return
        chunks = torch.arange(len(x), device=x.device).split(self.batch_size)
        for index in chunks[:saved["crafted"]]:  # crafted before the run was killed
            yield index, crafted.load(index, x.device)
        poisons = self.craft(model, x, y, num_classes=num_classes, generator=generator, progress=progress, start=saved["crafted"])
        for done, (index, best) in enumerate(poisons, start=saved["crafted"] + 1):
            if checkpoint is not None:
                crafted.store(index, best)
                if checkpoint.due() or done == len(chunks):
                    save("craft", done=done)
            yield index, best

    def _craft_shared(self, run, model, x, y, crafted, save, done: int, *, num_classes, generator, progress):
        """Under torchrun: rounds of one batch per process, each kept in the shared store (the checkpoint
        counts whole rounds); then rank 0 yields every batch."""
        transform, target, world = transform_distribution(self.transform), self.targets(y, num_classes), run.world
        chunks = torch.arange(len(x), device=x.device).split(self.batch_size)
        rounds = range(0, len(chunks), world.size)
        for first in tqdm(rounds, desc="tap poisons", disable=not progress, leave=False):
            end = min(first + world.size, len(chunks))
            if end <= done:
                continue
            if first + world.rank < end:
                index = chunks[first + world.rank]
                crafted.store(index, self._poison(model, x[index], target[index], transform, generator))
            if run.checkpoint.due() or end == len(chunks):
                save("craft", done=end)
        world.barrier()  # every process's poisons are stored
        for index in chunks if world.main else ():
            yield index, crafted.load(index, x.device)

    def craft(self, model, x, y, *, num_classes, generator, progress=False, start=0):
        """Targeted PGD against ``model``, one batch at a time from batch ``start``: yields (index, the batch's noise)."""
        transform = transform_distribution(self.transform)
        target = self.targets(y, num_classes)
        chunks = torch.arange(len(x), device=x.device).split(self.batch_size)
        for index in tqdm(chunks[start:], desc="tap poisons", disable=not progress, leave=False,
                          initial=start, total=len(chunks)):
            yield index, self._poison(model, x[index], target[index], transform, generator)

    def _poison(self, model, xb, tb, transform, generator):
        """The noise of one batch: of ``restarts`` targeted PGD runs, per image the one of lowest target loss."""
        best, best_loss = torch.zeros_like(xb), torch.full((len(xb),), float("inf"), device=xb.device)
        for _ in range(self.restarts):
            d = project_linf((torch.rand(xb.shape, generator=generator).to(xb.device) * 2 - 1) * self.eps, xb, self.eps)
            d = pgd(model, xb, d, tb, steps=self.pgd_steps, step_size=self.step_size, eps=self.eps, descend=True,
                    transform=transform, generator=generator)
            with torch.no_grad():
                final = F.cross_entropy(model(xb + d), tb, reduction="none")
            better = final < best_loss
            best[better], best_loss[better] = d[better], final[better]
        return best
