"""Projected gradient descent on a network's input: the one loop every method and defense runs.

Error-minimizing noise (EM, SALM) and targeted poisons (TAP) descend the cross-entropy of their
labels; adversarial training ascends it (``adversarial``), and robust error-minimizing noise
(REM) descends the loss of the adversarial example of each transformed image. Each step moves the perturbation by ``step_size`` along
the gradient's sign (only where a mask allows), then projects it back into the L-inf ball and
the valid pixel range. ``eps`` and ``step_size`` are fractions of the range (8/255).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def project_linf(delta: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Clip ``delta`` to [-eps, eps] and so that ``x + delta`` stays inside [0, 1]."""
    delta = delta.clamp(-eps, eps)
    return (x + delta).clamp(0.0, 1.0) - x


def signed_step(delta, grad, step_size: float, x, eps: float, *, descend: bool, mask=None):
    """One PGD step: move ``delta`` by ``step_size`` along sign(grad) (down if ``descend``),
    only where ``mask`` is set, then project back into the radius and the valid range."""
    direction = grad.sign() if mask is None else grad.sign() * mask
    if descend:
        direction = -direction
    return project_linf(delta + step_size * direction, x, eps)


def pgd(model, x: torch.Tensor, delta: torch.Tensor, labels: torch.Tensor, *, steps: int, step_size: float, eps: float,
        descend: bool, transform: Callable | None = None, generator: torch.Generator | None = None, samples: int = 1,
        mask: Callable | None = None, constrain: Callable | None = None, inner: Callable | None = None) -> torch.Tensor:
    """``steps`` PGD steps on ``delta`` for the cross-entropy of ``model`` on ``x + delta`` against ``labels``.

    ``transform(batch, generator)``: a random transformation the loss is averaged over, drawn
    ``samples`` times per step (the gradients are summed). ``mask(grad, delta, step)``: where this
    step may move (None: everywhere). ``constrain(delta)``: applied after each projection (a
    method's own constraint). ``inner(batch)``: what the model sees instead of the transformed
    perturbed batch, e.g. its adversarial example for robust methods. Returns the new delta.
    """
    for step in range(steps):
        delta.requires_grad_(True)
        grad = torch.zeros_like(delta)
        for _ in range(samples):
            batch = x + delta
            if transform is not None:
                batch = transform(batch, generator)
            if inner is not None:
                batch = inner(batch)
            grad += torch.autograd.grad(F.cross_entropy(model(batch), labels), delta)[0]
        delta = delta.detach()
        delta = signed_step(delta, grad, step_size, x, eps, descend=descend,
                            mask=mask(grad, delta, step) if mask is not None else None)
        if constrain is not None:
            delta = constrain(delta)
    return delta


def adversarial(model, x: torch.Tensor, labels: torch.Tensor, *, eps: float, steps: int, step_size: float,
                generator: torch.Generator) -> torch.Tensor:
    """``x``'s adversarial example: PGD *ascent* within ``eps`` from a uniform random start (Madry et
    al.), the model in eval mode meanwhile (batch statistics untouched). Detached from ``x``."""
    x = x.detach()
    start = project_linf(((torch.rand(x.shape, generator=generator) * 2 - 1) * eps).to(x.device), x, eps)
    was_training = model.training
    model.eval()
    delta = pgd(model, x, start, labels, steps=steps, step_size=step_size, eps=eps, descend=False)
    model.train(was_training)
    return x + delta
