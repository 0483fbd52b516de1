"""EM: error-minimizing noise (Huang et al. 2021), in the REM-style iterative framework the SALM
paper used for it (Appendix C.2): the same bi-level loop as SALM, with no L0 mask.

``mode="sample"`` gives every image its own noise; ``mode="class"`` one noise per class, set
after each PGD batch to the mean of that batch's per-sample results for the class (the
original code's class-wise update), so every image of a class carries the same noise.
The noise is added to the image and the sum clipped to the valid range (the original code
clamped the noise itself to [0, 255] first and so dropped every negative component).
"""
from __future__ import annotations

import torch

from ..errors import InputError
from ._bilevel import ErrorMinimizingLoop
from .base import register_protection

MODES = ("sample", "class")


@register_protection
class EM(ErrorMinimizingLoop):
    """Dense error-minimizing noise within L-inf ``eps``.

    Parameters: those of the error-minimizing loop (paper defaults: eps 8/255, 10 PGD steps of
    1.6/255 with random start, M=5000 source steps, ResNet-18, SGD 0.1, no stop rule), plus
    mode : {"sample", "class"}, default="sample"
        Noise per image, or one noise per class (the mean of the per-image updates).
    """

    name = "em"
    # the paper's Table 1 and Table 5 (``Protection.paper_accuracy``)
    paper_accuracy = {"bloodmnist": 30.5, "pneumoniamnist": 65.8, "breastmnist": 46.2, "retinamnist": 13.0}
    paper_utility = {"ssim": 92.7, "ahash": 77.7, "phash": 89.1, "dhash": 77.4, "nmi": 42.9}

    def __init__(self, *, mode: str = "sample", **loop):
        super().__init__(**loop)
        if mode not in MODES:
            raise InputError(f"em: mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode

    def distributed_problem(self, processes):
        if self.mode == "class":
            return "its class-wise noise is the mean of each batch's updates, in order"
        return super().distributed_problem(processes)

    def _init_noise(self, run, x, y, num_classes, generator):
        if self.mode == "sample":
            return super()._init_noise(run, x, y, num_classes, generator)
        # One noise per class (small: kept in memory); the random start of each class's first image seeds it.
        first = torch.stack([(y == c).nonzero()[0, 0] for c in y.unique()])
        run.state.class_noise = torch.zeros((num_classes, *x.shape[1:]), device=x.device)
        run.state.class_noise[y[first]] = self._random_start(x[first], generator)

    def _load(self, run, index, y):
        if self.mode == "sample":
            return super()._load(run, index, y)
        return run.state.class_noise[y].clone()

    def _store(self, run, index, y, d):
        if self.mode == "sample":
            return super()._store(run, index, y, d)
        for c in y.unique():
            run.state.class_noise[c] = d[y == c].mean(dim=0)

    def _checkpoint_state(self, run) -> dict:
        return {"class_noise": run.state.class_noise} if self.mode == "class" else {}
