"""Detection: does a simple model fit the release suspiciously fast?

Error-minimizing and similar noise works by being easier to learn than the images: a shortcut a
linear model can follow. A trainer can test for it without outside data (Zhu et al., "Detection
and defense of unlearnable examples", AAAI 2024; Yu et al., "Availability attacks create
shortcuts", KDD 2022): train a linear or two-layer model on the release for a few epochs and read
its *train* accuracy. On natural images such a model fits slowly; on a poisoned release it fits
within a few epochs. ``detectability`` is that train accuracy; beside the same on the original
(which the owner has), the gap says how visible the protection is to this test.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._runtime import seed_everything
from ..data.tensors import full_range, to_float, to_tensor
from ..errors import InputError

MODELS = ("linear", "two-layer")
HIDDEN = 256
#: a release the simple model fits this many points of train accuracy faster than its original reads as poisoned
DETECTABLE_POINTS = 10.0


def simple_model(kind: str, inputs: int, classes: int) -> nn.Module:
    if kind == "linear":
        return nn.Sequential(nn.Flatten(), nn.Linear(inputs, classes))
    if kind == "two-layer":
        return nn.Sequential(nn.Flatten(), nn.Linear(inputs, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, classes))
    raise InputError(f"detectability: model must be one of {', '.join(MODELS)}, got {kind!r}")


def detectability(images: np.ndarray, labels: np.ndarray, *, model: str = "linear", epochs: int = 3,
                  batch_size: int = 128, lr: float = 1e-3, seed: int = 0) -> float:
    """Train accuracy of a ``model`` ("linear" or "two-layer") after ``epochs`` of Adam on the stored
    ``images`` (N, H, W[, C]) with ``labels``: the fraction of the training images it fits."""
    if len(images) != len(labels) or len(images) == 0:
        raise InputError(f"detectability: {len(images)} images and {len(labels)} labels; give one label per image")
    if epochs < 1:
        raise InputError(f"detectability: epochs must be at least 1, got {epochs}")
    generator = seed_everything(seed)
    x = to_float(to_tensor(images), full_range(images.dtype))
    y = torch.from_numpy(np.asarray(labels).reshape(-1).astype(np.int64))
    net = simple_model(model, x[0].numel(), int(y.max()) + 1)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(epochs):
        for index in torch.randperm(len(x), generator=generator).split(batch_size):
            loss = F.cross_entropy(net(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        return float((net(x).argmax(1) == y).float().mean())


def detectability_gap(release: np.ndarray, original: np.ndarray, labels: np.ndarray, **settings) -> dict:
    """``detectability`` of the release and of its original under the same settings, and the gap
    (in points of train accuracy: how much faster the simple model fits the release)."""
    fitted = {name: detectability(images, labels, **settings) for name, images in (("release", release), ("original", original))}
    defaults = {"model": "linear", "epochs": 3}
    return {**fitted, "gap": fitted["release"] - fitted["original"], **{k: settings.get(k, v) for k, v in defaults.items()}}
