"""The source-model training loop every model-based method shares, and the signed PGD step.

EM and SALM train the source model on batches they perturb first (``prepare``); TAP trains it
on clean batches. Either way it is the same loop: SGD with momentum over minibatches drawn
without replacement, learning rate decayed at fixed fractions of the run, a transformation
sampled per batch.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..errors import InputError
from ..models import MODELS
from ._augment import TRANSFORMS
from ._ops import project_linf
from .base import check_range

log = logging.getLogger(__name__)


def source_settings(owner: str, *, batch_size, arch, width, lr, momentum, weight_decay, lr_decay, lr_milestones, transform) -> dict:
    """Validate the source model's training settings (shared by every model-based method)."""
    check_range(owner, "batch_size", batch_size, 1, 100_000)
    check_range(owner, "width", width, 1, 4096)
    check_range(owner, "lr", lr, 0.0, 10.0)
    if arch not in MODELS:
        raise InputError(f"{owner}: unknown source architecture {arch!r}; available: {', '.join(MODELS.names())}")
    if transform not in TRANSFORMS:
        raise InputError(f"{owner}: transform must be one of {', '.join(TRANSFORMS)}, got {transform!r}")
    if any(not 0 < m < 1 for m in lr_milestones):
        raise InputError(f"{owner}: lr_milestones are fractions of training in (0, 1), got {lr_milestones}")
    return {"batch_size": batch_size, "arch": arch, "width": width, "lr": lr, "momentum": momentum,
            "weight_decay": weight_decay, "lr_decay": lr_decay, "lr_milestones": tuple(lr_milestones), "transform": transform}


def signed_step(delta, grad, step_size: float, x, eps: float, *, descend: bool, mask=None):
    """One PGD step: move ``delta`` by ``step_size`` along sign(grad) (down if ``descend``),
    only where ``mask`` is set, then project back into the radius and the valid range."""
    direction = grad.sign() if mask is None else grad.sign() * mask
    if descend:
        direction = -direction
    return project_linf(delta + step_size * direction, x, eps)


TIMED_STEPS = 4  # source steps timed for the estimate of a run's length
LONG_RUN_S = 3600  # a run estimated longer than this is said so before the user waits for it


def warn_if_long(desc: str, seconds_per_step: float, remaining: int, device) -> None:
    """Say what a long run will cost while it is still cheap to stop (paper settings on a CPU: hours)."""
    estimate = seconds_per_step * remaining
    if estimate > LONG_RUN_S:
        hint = "; on a CPU, --preset cpu (fewer steps, narrower networks) is made for it" if device.type == "cpu" else ""
        log.warning(f"{desc}: about {estimate / 3600:.1f} h to go ({remaining} steps at {seconds_per_step:.1f} s on this "
                    f"{device.type.upper()}){hint}")


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
) -> int:
    """Train ``model`` for ``steps`` SGD steps; returns the number of steps run.

    ``x`` gives the clean images of a batch as ``x[index]`` (a tensor, or the lazily read
    ``TrainImages``); ``prepare(index, step)`` returns the batch to train on instead (default:
    the clean images); ``stop(step)`` ends training early when it returns True.
    ``after_step(steps_done, state)`` is called after every step with a function returning this
    loop's state (step, sample order, optimizer, schedule), which ``resume`` continues from.
    """
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [int(m * steps) for m in lr_milestones], gamma=lr_decay)
    n, device = len(x), x.device
    order, first = torch.empty(0, dtype=torch.long), 0
    if resume:
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        order, first = resume["order"], resume["steps_done"]
    bar = tqdm(range(first, steps), desc=desc, disable=not progress, leave=False, initial=first, total=steps)
    started = None
    for step in bar:
        if step == first + 1:  # the first step warms up; time the next ones
            started = time.perf_counter()
        elif step == first + 1 + TIMED_STEPS:
            warn_if_long(desc, (time.perf_counter() - started) / TIMED_STEPS, steps - step, device)
        if len(order) < batch_size:
            order = torch.cat([order, torch.randperm(n, generator=generator)])
        index, order = order[:batch_size].to(device), order[batch_size:]
        batch = x[index] if prepare is None else prepare(index, step)
        model.train()
        logits = model(transform(batch, generator))
        loss = F.cross_entropy(logits, y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        acc = (logits.argmax(1) == y[index]).float().mean().item()
        bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{acc:.3f}")
        if log is not None and (step % 50 == 0 or step == steps - 1):
            log.append({"step": step, "loss": round(loss.item(), 4), "acc": round(acc, 4)})
        if stop is not None and stop(step):
            if log is not None:
                log.append({"step": step, "stopped": True})
            return step + 1
        if after_step is not None:
            after_step(step + 1, lambda: {"steps_done": step + 1, "order": order, "optimizer": optimizer.state_dict(),
                                          "scheduler": scheduler.state_dict()})
    return steps


def accuracy(model: torch.nn.Module, inputs: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor, batch_size: int = 512) -> float:
    """Accuracy of ``model`` (eval mode) on the float images ``inputs(index)`` returns, batch by batch."""
    model.eval()
    with torch.no_grad():
        correct = sum((model(inputs(index)).argmax(1) == y[index]).sum().item()
                      for index in torch.arange(len(y), device=y.device).split(batch_size))
    return correct / len(y)
