"""One training step, and the optimizers and schedules, shared by source models and victims.

A method's source model and an adversary's victim learn the same way: forward, cross-entropy
(or a defense's loss), backward, an optimizer step, a schedule step. Keeping it in one place
means a change to how networks train (precision, a new optimizer) reaches both sides at once.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("multistep", "cosine", "constant")


def make_optimizer(model: torch.nn.Module, name: str, *, lr: float, momentum: float, weight_decay: float):
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")


def make_schedule(optimizer, name: str, *, total: int, milestones: tuple[float, ...] = (), decay: float = 0.1):
    """The learning-rate schedule over ``total`` steps; ``milestones`` are fractions of it."""
    if name == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, [int(m * total) for m in milestones], gamma=decay)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total)
    if name == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {name!r}")


def train_step(model, optimizer, scheduler, inputs: torch.Tensor, labels: torch.Tensor,
               loss: Callable | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One step on a batch; ``loss(model, inputs, labels)`` -> (loss, logits) replaces cross-entropy
    (a training-time defense). Returns the loss and the logits."""
    model.train()
    if loss is None:
        logits = model(inputs)
        value = F.cross_entropy(logits, labels)
    else:
        value, logits = loss(model, inputs, labels)
    optimizer.zero_grad(set_to_none=True)
    value.backward()
    optimizer.step()
    scheduler.step()
    return value, logits
