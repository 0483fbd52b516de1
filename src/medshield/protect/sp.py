"""SP: synthetic shortcut perturbations (Yu et al. 2022; SALM paper Appendix C.3).

No model. Each class gets a cluster of points in a low-dimensional space (scikit-learn's
``make_classification``: hypercube vertices, ``class_sep`` apart); every feature of a point is
upsampled to a square patch, so each image receives a patchwork whose pattern says its class.
The reference scales each pattern into an L2 ball; the SALM paper used an L-inf radius of 8/255,
which is what ``eps`` is here: each pattern is scaled so its largest component is ``eps``.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.datasets import make_classification

from .base import Protection, check_range, register_protection

BATCH = 256  # images upsampled at a time


def default_patch_size(size: int) -> int:
    """The reference's 8 px patches at 32 px, scaled to the image size (7 px at 28, 56 at 224)."""
    return max(1, round(size / 4))


@register_protection
class SP(Protection):
    """Class-wise clusters of random features, upsampled into patches, within L-inf ``eps``.

    Parameters
    eps : float, default=8/255
    patch_size : int or None, default=None
        Side of a feature's patch in pixels; None scales the reference's 8 px at 32 px.
    class_sep : float, default=10.0
        Distance between class clusters (reference value).
    """

    name = "sp"
    # the paper's Table 1 and Table 5 (``Protection.paper_accuracy``)
    paper_accuracy = {"bloodmnist": 30.5, "pneumoniamnist": 70.1, "breastmnist": 50.0, "retinamnist": 8.3}
    paper_utility = {"ssim": 99.9, "ahash": 95.4, "phash": 99.9, "dhash": 99.3, "nmi": 99.9}

    def __init__(self, *, eps: float = 8 / 255, patch_size: int | None = None, class_sep: float = 10.0):
        super().__init__(eps=eps)
        if patch_size is not None:
            check_range(self.name, "patch_size", patch_size, 1, 4096)
        check_range(self.name, "class_sep", class_sep, 0.0, 1e6)
        self.patch_size = patch_size
        self.class_sep = class_sep

    def _perturb(self, x, y, run, *, num_classes, generator, progress):
        n, channels, height, width = x.shape
        patch = self.patch_size or default_patch_size(min(height, width))
        rows, cols = math.ceil(height / patch), math.ceil(width / patch)
        dim = channels * rows * cols
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        labels = y.cpu().numpy()
        counts = np.bincount(labels, minlength=num_classes)
        # Enough balanced points that every class has at least as many as it has images.
        points, point_labels = make_classification(
            n_samples=int(counts.max()) * num_classes, n_features=dim, n_informative=dim, n_redundant=0,
            n_repeated=0, n_classes=num_classes, n_clusters_per_class=1, class_sep=self.class_sep,
            flip_y=0.0, shuffle=True, random_state=seed,
        )
        features = np.empty((n, dim), dtype=np.float32)
        for c in range(num_classes):
            features[labels == c] = points[point_labels == c][: counts[c]]
        # Upsampled one batch at a time: the features are small, the patterns are image-sized.
        for index in torch.arange(n).split(BATCH):
            pattern = torch.from_numpy(features[index.numpy()]).view(len(index), channels, rows, cols)
            pattern = pattern.repeat_interleave(patch, dim=2).repeat_interleave(patch, dim=3)[:, :, :height, :width]
            scale = pattern.abs().amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
            yield index, pattern / scale * self.eps
