"""The source model every model-based method trains: its settings, its network, its training loop.

EM and SALM train the source model on batches they perturb first (``prepare``); TAP trains it
on clean batches. Either way it is the same loop: SGD with momentum over minibatches drawn
without replacement, learning rate decayed at fixed fractions of the run, a transformation
sampled per batch, each step the one victims take too (``models.training.train_step``).
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, fields
from typing import Callable

import torch
from tqdm.auto import tqdm

from ..errors import InputError
from ..models import MODELS, create_model
from ..models.augment import transform_distribution
from ..models.training import make_optimizer, make_schedule, train_step
from .base import check_range

log = logging.getLogger(__name__)


@dataclass
class SourceModel:
    """The source network and how it is trained (paper Appendix B.2: ResNet-18, SGD 0.1, momentum
    0.9, weight decay 5e-4, flip + crop). A method keeps these as its own flat parameters
    (``settings()``) so the manifest lists them beside the method's.

    Parameters
    batch_size : int, default=128
        Source minibatch (also the batch of PGD).
    arch : str, default="resnet18"
        Source architecture.
    width : int, default=64
        Source model base width.
    lr : float, default=0.1
        SGD learning rate.
    momentum : float, default=0.9
        SGD momentum.
    weight_decay : float, default=5e-4
        SGD weight decay.
    lr_decay : float, default=0.1
        Learning-rate decay factor at each milestone.
    lr_milestones : tuple of float, default=(0.4, 0.8)
        Decay points as fractions of the source steps.
    transform : str, default="flip-crop"
        Transformation distribution T the loss is averaged over: a name (flip-crop, none,
        defense-aware, jpeg-aware) or a spec of members (a+b:2,c; members flip-crop, none, jpeg,
        gaussian-blur, mean-blur, median-smooth, bitdepth, grayscale, resized-crop, cutout).
    """

    batch_size: int = 128
    arch: str = "resnet18"
    width: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_decay: float = 0.1
    lr_milestones: tuple[float, ...] = (0.4, 0.8)
    transform: str = "flip-crop"

    @classmethod
    def checked(cls, owner: str, settings: dict) -> "SourceModel":
        """The settings of method ``owner``, checked: one error line for an unknown or out-of-range one."""
        unknown = sorted(set(settings) - {f.name for f in fields(cls)})
        if unknown:
            raise InputError(f"{owner}: unknown parameter(s) {', '.join(unknown)}; 'medshield methods' lists each method's")
        return cls(**settings).check(owner)

    def check(self, owner: str) -> "SourceModel":
        """One error line naming ``owner`` (the method) for a setting out of range."""
        check_range(owner, "batch_size", self.batch_size, 1, 100_000)
        check_range(owner, "width", self.width, 1, 4096)
        check_range(owner, "lr", self.lr, 0.0, 10.0)
        if self.arch not in MODELS:
            raise InputError(f"{owner}: unknown source architecture {self.arch!r}; available: {', '.join(MODELS.names())}")
        try:
            transform_distribution(self.transform)
        except InputError as exc:
            raise InputError(f"{owner}: {exc}") from None
        if any(not 0 < m < 1 for m in self.lr_milestones):
            raise InputError(f"{owner}: lr_milestones are fractions of training in (0, 1), got {self.lr_milestones}")
        self.lr_milestones = tuple(self.lr_milestones)
        return self

    def settings(self) -> dict:
        return asdict(self)

    @classmethod
    def of(cls, method) -> "SourceModel":
        """The source settings a method holds as attributes."""
        return cls(**{f.name: getattr(method, f.name) for f in fields(cls)})

    def build(self, x, num_classes: int, precision: str) -> torch.nn.Module:
        """An untrained network for images like ``x`` (N, C, H, W), on their device."""
        return create_model(self.arch, num_classes=num_classes, in_channels=x.shape[1], width=self.width,
                            image_size=min(x.shape[-2:]), device=x.device, precision=precision)

    def train(self, model, x, y, *, steps: int, **loop) -> int:
        """``train_source`` with these settings."""
        return train_source(model, x, y, steps=steps, batch_size=self.batch_size, lr=self.lr, momentum=self.momentum,
                            weight_decay=self.weight_decay, lr_decay=self.lr_decay, lr_milestones=self.lr_milestones,
                            transform=transform_distribution(self.transform), **loop)


TIMED_STEPS = 4  # source steps timed for the estimate of a run's length
LONG_RUN_S = 3600  # a run estimated longer than this is said so before the user waits for it


def warn_if_long(desc: str, seconds_per_step: float, remaining: int, device) -> None:
    """Say what a long run will cost while it is still cheap to stop (paper settings on a CPU: hours)."""
    estimate = seconds_per_step * remaining
    if estimate > LONG_RUN_S:
        hint = "; on a CPU, --preset cpu (fewer steps, narrower networks) is made for it" if device.type == "cpu" else ""
        log.warning(f"{desc}: about {estimate / 3600:.1f} h to go ({remaining} steps at {seconds_per_step:.1f} s on this "
                    f"{device.type.upper()}){hint}")


def _sgd(model: torch.nn.Module, steps: int, *, lr: float, momentum: float, weight_decay: float, lr_decay: float,
         lr_milestones: tuple[float, ...], resume: dict | None):
    """The source model's SGD and step schedule, and where the loop starts: a resumed run's sample order
    and steps done, else an empty order and step 0."""
    optimizer = make_optimizer(model, "sgd", lr=lr, momentum=momentum, weight_decay=weight_decay)
    scheduler = make_schedule(optimizer, "multistep", total=steps, milestones=lr_milestones, decay=lr_decay)
    if not resume:
        return optimizer, scheduler, torch.empty(0, dtype=torch.long), 0
    optimizer.load_state_dict(resume["optimizer"])
    scheduler.load_state_dict(resume["scheduler"])
    return optimizer, scheduler, resume["order"], resume["steps_done"]


def train_source(
    model: torch.nn.Module,
    x,
    y: torch.Tensor,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    momentum: float,
    weight_decay: float,
    lr_decay: float,
    lr_milestones: tuple[float, ...],
    transform: Callable,
    generator: torch.Generator,
    prepare: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
    stop: Callable[[int], bool] | None = None,
    log: list | None = None,
    desc: str = "source steps",
    progress: bool = True,
    resume: dict | None = None,
    after_step: Callable[[int, Callable[[], dict]], None] | None = None,
    loss: Callable | None = None,
    world=None,
    draws: torch.Generator | None = None,
) -> int:
    """Train ``model`` for ``steps`` SGD steps; returns the number of steps run.

    ``x`` gives the clean images of a batch as ``x[index]`` (a tensor, or the lazily read
    ``TrainImages``); ``prepare(index, step)`` returns the batch to train on instead (default:
    the clean images); ``stop(step)`` ends training early when it returns True.
    ``after_step(steps_done, state)`` is called after every step with a function returning this
    loop's state (step, sample order, optimizer, schedule), which ``resume`` continues from.
    ``loss(model, inputs, labels)`` -> (loss, logits) replaces cross-entropy (REM's adversarial loss).
    Under torchrun (``world``) it trains on this process's share of each batch, transformed with ``draws``.
    """
    optimizer, scheduler, order, first = _sgd(model, steps, lr=lr, momentum=momentum, weight_decay=weight_decay,
                                              lr_decay=lr_decay, lr_milestones=lr_milestones, resume=resume)
    n, device = len(x), x.device
    bar = tqdm(range(first, steps), desc=desc, disable=not progress, leave=False, initial=first, total=steps)
    started = None
    for step in bar:
        if step == first + 1:  # the first step warms up; time the next ones
            started = time.perf_counter()
        elif step == first + 1 + TIMED_STEPS:
            warn_if_long(desc, (time.perf_counter() - started) / TIMED_STEPS, steps - step, device)
        index, order = next_batch(order, n, batch_size, generator, device, world)
        batch = x[index] if prepare is None else prepare(index, step)
        value, logits = train_step(model, optimizer, scheduler, transform(batch, draws or generator), y[index], loss)
        acc = (logits.argmax(1) == y[index]).float().mean().item()
        bar.set_postfix(loss=f"{value.item():.3f}", acc=f"{acc:.3f}")
        if log is not None and (step % 50 == 0 or step == steps - 1):
            log.append({"step": step, "loss": round(value.item(), 4), "acc": round(acc, 4)})
        if stop is not None and stop(step):
            if log is not None:
                log.append({"step": step, "stopped": True})
            return step + 1
        if after_step is not None:
            after_step(step + 1, lambda: {"steps_done": step + 1, "order": order, "optimizer": optimizer.state_dict(),
                                          "scheduler": scheduler.state_dict()})
    return steps


def next_batch(order: torch.Tensor, n: int, batch_size: int, generator: torch.Generator, device, world=None):
    """The next minibatch of the sample order (refilled with a permutation of the ``n`` images when short) and
    the rest of the order; under torchrun, where every process draws the same batch, this process's share."""
    if len(order) < batch_size:
        order = torch.cat([order, torch.randperm(n, generator=generator)])
    index, order = order[:batch_size].to(device), order[batch_size:]
    return (index if world is None else world.share(index)), order


def accuracy(model: torch.nn.Module, inputs: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor, batch_size: int = 512) -> float:
    """Accuracy of ``model`` (eval mode) on the float images ``inputs(index)`` returns, batch by batch."""
    model.eval()
    with torch.no_grad():
        correct = sum((model(inputs(index)).argmax(1) == y[index]).sum().item()
                      for index in torch.arange(len(y), device=y.device).split(batch_size))
    return correct / len(y)
