"""The bi-level error-minimizing loop shared by SALM and EM (REM-style iterative framework).

For M source steps: sample a minibatch, run PGD on its persistent per-sample noise to *minimize*
the source model's loss (averaged over J sampled transformations), then train the source model
one SGD step on the transformed, perturbed batch. A final pass updates every sample's noise with
the final model, so samples never drawn also get noise. Training stops after M steps, or
earlier with ``stop_accuracy`` (the original EM rule: the source model's accuracy on the whole
perturbed training set, checked once per pass over the data, reaches the threshold).

With ``adv_eps`` > 0 the loop is REM's (Fu et al. ICLR 2022): the source model trains on the
adversarial examples (radius ``adv_eps``) of the transformed perturbed batch, and each PGD step
on the noise descends the loss of the adversarial example of every transformed draw, the
adversarial perturbation held fixed while the gradient flows through the image (Danskin's
theorem, as the reference code does). The noise so learns to stay error-minimizing for a model a
trainer hardens with adversarial training up to ``adv_eps``.

Subclasses decide where the noise may go through ``_update_mask`` (which positions a PGD step
may change) and ``_constrain`` (what the noise must satisfy after each step), and how it is
stored through ``_init_noise``/``_load``/``_store`` (per sample, or per class).

Per-sample noise lives on disk in whole levels of the stored format (``_storage.NoiseStore``:
int8 for 8-bit data, int16 for 16-bit), and images are read per batch, so the loop's memory is
that of a batch and the model, whatever the size of the dataset.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..errors import InputError
from ..models.augment import transform_distribution
from ..models.pgd import adversarial, pgd, project_linf
from ._checkpoint import restore_run, save_run
from ._ops import low_frequency
from ._source import SourceModel, accuracy
from .base import Protection, check_range


class ErrorMinimizingLoop(Protection):
    """Sample-wise error-minimizing noise from a source model trained alongside it.

    Parameters
    step_size : float, default=1.6/255
        PGD step.
    pgd_steps : int, default=10
        PGD steps per source step.
    random_start : bool, default=True
        Start the noise uniform in the radius (else from zero).
    steps : int, default=5000
        Source-model steps M.
    samples : int, default=1
        J, sampled transformations whose gradients each PGD step sums.
    final_pass : bool, default=True
        Update every image's noise once more with the final source model.
    stop_accuracy : float or None, default=None
        The original EM stop rule (e.g. 0.99): end source training once its accuracy on the
        perturbed train set reaches it; ``steps`` is then the upper limit.
    adv_eps : float, default=0
        REM's rho_a, below eps: the noise minimizes the loss of adversarial examples within this
        radius, and the source model trains on them (0: plain error-minimizing noise).
    adv_steps : int, default=10
        PGD ascent steps of each adversarial example.
    adv_step_size : float or None, default=2*adv_eps/adv_steps
        Their step (None: 2 adv_eps / adv_steps, at most adv_eps; the reference's 0.8/255 at
        rho_a 4/255 and 10 steps).
    dct_keep : int, default=8
        Keep only the dct_keep x dct_keep lowest DCT frequencies of each 8x8 block of the noise
        (what JPEG at low quality keeps), projected after every step; 8: no constraint.
    batch_size, arch, width, lr, momentum, weight_decay, lr_decay, lr_milestones, transform
        The source model (``SourceModel``).
    """

    needs_source_model = True
    distributed = True
    min_classes = 2  # error-minimizing noise minimizes a classification loss: nothing to minimize with one class
    accepts_support = True
    setting_options = {"adv_eps": lambda eps: f"adv={round(255 * eps):g}", "transform": str,
                       "dct_keep": lambda keep: f"dct={keep}"}
    #: source-model settings that differ from ``SourceModel``'s defaults for this method
    source_defaults: dict = {}

    def __init__(
        self,
        *,
        eps: float = 8 / 255,
        step_size: float = 1.6 / 255,
        pgd_steps: int = 10,
        random_start: bool = True,
        steps: int = 5000,
        samples: int = 1,
        final_pass: bool = True,
        stop_accuracy: float | None = None,
        adv_eps: float = 0.0,
        adv_steps: int = 10,
        adv_step_size: float | None = None,
        dct_keep: int = 8,
        **source,
    ):
        super().__init__(eps=eps)
        name = self.name
        check_range(name, "step_size", step_size, 1e-6, eps, " (a fraction of the range: 1.6/255)")
        check_range(name, "pgd_steps", pgd_steps, 1, 10_000)
        check_range(name, "steps", steps, 0, 10_000_000)
        check_range(name, "samples", samples, 1, 1000)
        self.step_size = step_size
        self.pgd_steps = pgd_steps
        self.random_start = random_start
        self.steps = steps
        vars(self).update(SourceModel.checked(name, {**self.source_defaults, **source}).settings())
        self.samples = samples
        self.final_pass = final_pass
        if stop_accuracy is not None:
            check_range(name, "stop_accuracy", stop_accuracy, 0.0, 1.0, " (a fraction: 0.99)")
        self.stop_accuracy = stop_accuracy
        if not 0 <= adv_eps < eps:
            raise InputError(f"{name}: adv_eps must be in [0, eps) (REM's rho_a below the noise's radius rho_u), got "
                             f"adv_eps={adv_eps!r} with eps={eps!r} (fractions of the range: 4/255)")
        check_range(name, "adv_steps", adv_steps, 1, 10_000)
        adv_step_size = min(adv_eps, 2 * adv_eps / adv_steps) if adv_step_size is None else adv_step_size
        if adv_eps:
            check_range(name, "adv_step_size", adv_step_size, 1e-6, 2 * adv_eps, " (a fraction of the range: 0.8/255)")
        self.adv_eps, self.adv_steps, self.adv_step_size = adv_eps, adv_steps, adv_step_size
        check_range(name, "dct_keep", dct_keep, 1, 8, " (DCT frequencies kept per 8x8 block and axis)")
        self.dct_keep = dct_keep

    def distributed_problem(self, processes: int) -> str | None:
        if self.batch_size % processes:
            return (f"its batch_size {self.batch_size} is not a multiple of {processes}: each process takes an equal share "
                    "of every batch")
        return None

    # Hooks for methods that restrict where the noise goes (SALM's mask).
    def _start(self, delta: torch.Tensor) -> torch.Tensor:
        return delta

    def _update_mask(self, run, grad, delta, index, step: int, pgd_step: int):
        return None

    def _constrain(self, run, delta: torch.Tensor, index) -> torch.Tensor:
        return delta

    def _random_start(self, xb: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The noise a batch starts from: uniform in the radius (or zero), inside the valid range."""
        if self.random_start:
            delta = (torch.rand(xb.shape, generator=generator).to(xb.device) * 2 - 1) * self.eps
        else:
            delta = torch.zeros_like(xb)
        return self._start(self._shaped(delta, xb))

    def _shaped(self, delta: torch.Tensor, xb: torch.Tensor) -> torch.Tensor:
        """``delta`` in the radius and the range, and (with ``dct_keep`` < 8) in the low block frequencies first."""
        return project_linf(low_frequency(delta, self.dct_keep), xb, self.eps)

    def _adversarial(self, model, batch, labels, generator):
        """``batch``'s adversarial example within ``adv_eps``, the perturbation held fixed: gradients
        flow to ``batch`` as through the identity (REM's inner maximization)."""
        fixed = batch.detach()
        example = adversarial(model, fixed, labels, eps=self.adv_eps, steps=self.adv_steps, step_size=self.adv_step_size,
                              generator=generator)
        return batch + (example - fixed)

    def _robust_loss(self, network, generator):
        """The source model's training loss with ``adv_eps``: cross-entropy on adversarial examples, crafted
        on ``network`` itself (not on its data-parallel wrapper, whose every call is a training step's)."""
        def loss(model, inputs, labels):
            logits = model(self._adversarial(network, inputs, labels, generator))
            return F.cross_entropy(logits, labels), logits
        return loss if self.adv_eps else None

    # Where the noise is stored: per sample, in the run's storage (class-wise EM overrides these).
    def _init_noise(self, run, x, y: torch.Tensor, num_classes: int, generator: torch.Generator) -> None:
        run.state.noise = run.storage.noise(x.shape, self.eps_levels(x.maximum), x.maximum)
        for number, index in enumerate(torch.arange(len(x), device=x.device).split(self.batch_size)):
            start = self._random_start(x[index], generator)  # drawn by every process: the generator stays in step
            if run.world is None or number % run.world.size == run.world.rank:
                run.state.noise.store(index, start)

    def _load(self, run, index: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return run.state.noise.load(index, y.device)

    def _store(self, run, index: torch.Tensor, y: torch.Tensor, d: torch.Tensor) -> None:
        run.state.noise.store(index, d)

    # What a checkpoint holds besides the model and the random states (subclasses add theirs).
    def _checkpoint_arrays(self, run) -> dict:
        noise = getattr(run.state, "noise", None)
        return {"noise": noise.levels} if noise is not None else {}

    def _checkpoint_state(self, run) -> dict:
        return {}

    def _restore_state(self, run, state: dict) -> None:
        vars(run.state).update(state)

    def _perturb(self, x, y, run, *, num_classes, generator, progress):
        world = run.world
        # Under torchrun every process keeps ``generator`` in step (the batches it draws are the global
        # ones) and draws its share's transformations from a generator of its own.
        draws = generator if world is None else world.generator(generator)
        self._init_noise(run, x, y, num_classes, generator)
        source = SourceModel.of(self)
        model = source.build(x, num_classes, run.precision)  # PGD and the final pass call it directly
        trained = model if world is None else world.data_parallel(model, x.device)  # the steps: data-parallel
        transform = transform_distribution(self.transform)
        checkpoint = run.checkpoint
        saved = self._start_from(run, model, generator, draws)

        def save(stage, train=None, final_done=0):
            save_run(checkpoint, model=model, generator=generator, log=run.log, arrays=self._checkpoint_arrays(run),
                     world=world, draws=draws, stage=stage, train=train, final_done=final_done,
                     extra=self._checkpoint_state(run))

        def after_step(steps_done, train_state):
            if world is not None:
                world.settle(model)
            if checkpoint is not None and checkpoint.due():
                save("source", train_state())

        def perturbed(index, step):
            xb, yb = x[index], y[index]
            model.eval()
            d = pgd(model, xb, self._load(run, index, yb), yb, steps=self.pgd_steps, step_size=self.step_size, eps=self.eps,
                    descend=True, transform=transform, generator=draws, samples=self.samples,
                    mask=lambda grad, delta, pgd_step: self._update_mask(run, grad, delta, index, step, pgd_step),
                    constrain=lambda delta: self._constrain(run, self._shaped(delta, xb) if self.dct_keep < 8 else delta, index),
                    inner=(lambda batch: self._adversarial(model, batch, yb, draws)) if self.adv_eps else None)
            self._store(run, index, yb, d)
            return xb + self._load(run, index, yb)

        passes = max(1, math.ceil(len(x) / self.batch_size))

        def reached_accuracy(step):
            # The original EM stop rule, checked once per pass over the data (by every process, on every image).
            if self.stop_accuracy is None or (step + 1) % passes:
                return False
            reached = accuracy(model, lambda index: x[index] + self._load(run, index, y[index]), y) >= self.stop_accuracy
            return reached if world is None else world.agree(reached, x.device)

        if saved["stage"] == "source":
            source.train(trained, x, y, steps=self.steps, generator=generator, prepare=perturbed, stop=reached_accuracy,
                         log=run.log, desc=f"{self.name} source steps", progress=progress, resume=saved["train"],
                         after_step=after_step, loss=self._robust_loss(model, draws), world=world, draws=draws)
            if world is not None:  # also after a step the stop rule ended
                world.settle(model)
            if checkpoint is not None:  # a stage boundary
                save("final")
        chunks = torch.arange(len(x), device=x.device).split(self.batch_size)
        if self.final_pass:
            self._final_pass(run, chunks, perturbed, save, saved["final_done"], progress)
        if world is not None:
            world.barrier()  # every process's noise is written: rank 0 releases it
        for index in chunks if run.main else ():  # after the final pass: class-wise noise is final only once every batch is done
            yield index, self._load(run, index, y[index])
        run.state = SimpleNamespace()  # frees the noise (and masks) before the release is written

    def _start_from(self, run, model, generator, draws) -> dict:
        """Where the run starts: the beginning, or a killed run's checkpoint, everything as it was when saved."""
        if not run.resuming:
            if run.world is not None:
                run.world.barrier()  # every process has written its batches' random starts
            return {"stage": "source", "train": None, "final_done": 0}
        saved = restore_run(run.checkpoint, model=model, generator=generator, log=run.log, arrays=self._checkpoint_arrays(run),
                            world=run.world, draws=draws)
        self._restore_state(run, saved["extra"])
        return saved

    def _final_pass(self, run, chunks, perturbed, save, done: int, progress: bool) -> None:
        """Every image's noise once more with the final model, ``done`` batches of it already saved; under
        torchrun in rounds of one batch per process (the checkpoint counts whole rounds)."""
        width = 1 if run.world is None else run.world.size
        bar = tqdm(range(0, len(chunks), width), desc=f"{self.name} final pass", disable=not progress, leave=False)
        for first in bar:
            end = min(first + width, len(chunks))
            if end <= done:
                continue
            mine = first + (0 if run.world is None else run.world.rank)
            if mine < end:
                perturbed(chunks[mine], self.steps)
            if run.checkpoint is not None and (run.checkpoint.due() or end == len(chunks)):
                save("final", final_done=end)
