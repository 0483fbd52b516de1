"""SALM: Sparsity-Aware Local Masking (Sun et al. 2024, arXiv:2403.10573), Algorithm 1.

Error-minimizing noise whose PGD updates are restricted to the top-K % pixel positions ranked
by the gradient magnitude (|g| summed over channels, Eq. (3)-(6)). Two readings, named for what
they bound:

Algorithm 1 as written (the default)
    The noise starts uniform over the whole image within the radius (line 2); at every PGD step
    the mask is recomputed from that step's gradient and only its top-K % positions move (lines
    7-14); nothing projects the noise onto K % afterwards. So each *update* is sparse and the
    release is dense: the paper's Table 5 gives SALM's release about EM's SSIM and NMI.
``sparse=True`` (``--sparse``)
    The release changes at most K % of each image's positions: the random start is cut to K %,
    and the released noise is projected onto each image's top-K positions by |noise| before
    quantization, so the bound holds on the bytes written. Its mask life cycle (``mask=``):

    ``"fixed"`` (default): the mask of an image is chosen from the gradient at the first PGD step
    of a visit, held for the visit, and recomputed when the image is next drawn at least
    ``mask_refresh`` source steps later; noise outside the mask is zeroed. ``"step"``: recomputed
    at every PGD step as in Algorithm 1; the support grows during the search and the release
    projection cuts it back. ``"final"``: no mask during the search (plain EM), only the release
    projection.

``mask_scope`` ranks per image (exactly K % per image), per batch (one threshold for the
batch), or per class: the paper defines the noise generation on one class D_c at a time
(Section 3.1, Eq. (2)); with ``"class"`` the |gradient| of every visit, normalized per image, is
added to a running score per class, and all images of a class share that class's top-K
positions (``mask_refresh`` does not apply: the class totals change a little at every visit).
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import InputError
from ._bilevel import ErrorMinimizingLoop
from ._ops import project_l0, topk_mask
from .base import check_range, register_protection

MASKS = ("fixed", "step", "final")
SCOPES = ("image", "batch", "class")


@register_protection
class SALM(ErrorMinimizingLoop):
    """Error-minimizing noise within L-inf ``eps`` whose PGD updates move only the top-``k`` positions.

    Parameters (besides those of the error-minimizing loop: eps, step_size, pgd_steps,
    random_start, steps, batch_size, arch, width, lr, momentum, weight_decay, lr_decay,
    lr_milestones, transform, samples, final_pass)
    k : float, default=0.10
        Fraction of pixel positions each PGD update may change per image (with ``sparse``: that
        the release may change).
    sparse : bool, default=False
        False: Algorithm 1 as written (dense release). True: the release changes at most ``k`` of
        each image's positions (README, SALM: Two readings).
    mask : {"fixed", "step", "final"}, default="step" (Algorithm 1), "fixed" with ``sparse``
        Mask life cycle; "fixed" and "final" exist only with ``sparse``.
    mask_scope : {"image", "batch", "class"}, default="image"
        Rank positions per image, per batch, or per class (shared by all images of a class).
    mask_refresh : int, default=1
        For ``mask="fixed"``: source steps before an image's mask may be recomputed on its next
        visit (1 = every visit).
    """

    name = "salm"
    # the paper's Table 1 and Table 5 (``Protection.paper_accuracy``)
    paper_accuracy = {"bloodmnist": 7.1, "pneumoniamnist": 63.9, "breastmnist": 53.2, "retinamnist": 12.2}
    paper_utility = {"ssim": 94.4, "ahash": 77.9, "phash": 89.4, "dhash": 77.2, "nmi": 44.7}

    def __init__(self, *, k: float = 0.10, sparse: bool = False, mask: str | None = None, mask_scope: str = "image",
                 mask_refresh: int = 1, **loop):
        super().__init__(**loop)
        check_range(self.name, "k", k, 1e-6, 1.0, " (a fraction: 0.10 for 10 %)")
        mask = mask or ("fixed" if sparse else "step")
        if mask not in MASKS:
            raise InputError(f"salm: mask must be one of {', '.join(MASKS)}, got {mask!r}")
        if not sparse and mask != "step":
            raise InputError(f"salm: mask {mask!r} is a variant of the sparse release; add --sparse (sparse=True), "
                             "or leave mask out for Algorithm 1 (a new mask at every PGD step)")
        if mask_scope not in SCOPES:
            raise InputError(f"salm: mask_scope must be one of {', '.join(SCOPES)}, got {mask_scope!r}")
        check_range(self.name, "mask_refresh", mask_refresh, 1, 10_000_000)
        self.k = k
        self.sparse = sparse
        self.mask = mask
        self.mask_scope = mask_scope
        self.mask_refresh = mask_refresh

    def distributed_problem(self, processes):
        if self.mask == "fixed" and self.mask_refresh > 1:
            return "mask_refresh > 1 keeps each image's last mask step in one process's memory"
        return super().distributed_problem(processes)

    def _init_noise(self, run, x, y, num_classes, generator):
        if self.mask_scope == "class":  # running |gradient| per class and position; labels to look them up
            run.state.labels = y
            run.state.class_scores = torch.zeros((num_classes, *x.shape[-2:]), device=y.device)
        elif self.mask == "fixed":  # masks on disk (one byte per position) like the noise; their step in RAM
            n, _, height, width = x.shape
            run.state.masks = run.storage.array((n, 1, height, width), np.bool_)
            run.state.mask_step = torch.full((n,), -(10**12), dtype=torch.long)
        super()._init_noise(run, x, y, num_classes, generator)

    def _checkpoint_arrays(self, run) -> dict:
        masks = getattr(run.state, "masks", None)
        return {**super()._checkpoint_arrays(run), **({"masks": masks} if masks is not None else {})}

    def _checkpoint_state(self, run) -> dict:
        return {name: getattr(run.state, name) for name in ("mask_step", "class_scores") if hasattr(run.state, name)}

    # its head names K, not the radius: a radius away from 8/255 is named last ("salm k=0.50 dct=2 eps=20")
    setting_options = {**ErrorMinimizingLoop.setting_options, "eps": lambda eps: f"eps={round(255 * eps):g}"}

    @classmethod
    def setting_head(cls, params: dict) -> str:
        return f"{cls.name} {'--sparse ' if params.get('sparse') else ''}k={params.get('k', 0.10):.2f}"

    @property
    def max_l0(self) -> float:
        return self.k if self.sparse else 1.0

    def sparsity(self) -> str:
        if self.sparse:
            return super().sparsity() + " (SALM --sparse)"
        options = self.setting_words(self.params())
        how = f"Algorithm 1 with {', '.join(options)}" if options else "Algorithm 1 as written"
        return (f"{how}: each PGD update moved at most {100 * self.k:g} % of an image's positions, "
                "from a dense random start; dense release (no bound on the number of changed positions)")

    def _start(self, delta):
        # Algorithm 1 starts dense; the sparse release cuts the start to K % so its bound holds throughout.
        return project_l0(delta, self.k) if self.sparse else delta

    def _update_mask(self, run, grad, delta, index, step, pgd_step):
        if self.mask == "final":
            return None
        scores = grad.abs().sum(dim=1)
        if self.mask_scope == "class":
            if self.mask == "step" or pgd_step == 0:
                run.state.batch_masks = self._class_masks(run, scores, index, learn=step < self.steps)
            return run.state.batch_masks
        if self.mask == "step":
            return topk_mask(scores, self.k, self.mask_scope)
        if pgd_step == 0:  # the batch's masks, refreshed where stale, held for this visit
            rows = index.cpu()
            masks = torch.from_numpy(run.state.masks[rows.numpy()]).to(grad.device)
            stale = (step - run.state.mask_step[rows]) >= self.mask_refresh
            if stale.any():
                fresh = topk_mask(scores, self.k, self.mask_scope)
                masks[stale.to(grad.device)] = fresh[stale.to(grad.device)]
                run.state.masks[rows.numpy()] = masks.cpu().numpy()
                run.state.mask_step[rows[stale]] = step
            run.state.batch_masks = masks
        return run.state.batch_masks

    def _class_masks(self, run, scores, index, learn: bool):
        """Add the batch's scores to its classes' running totals; each image gets its class's top-K.

        The totals are frozen for the final pass, so a class's released images share one mask.
        """
        labels = run.state.labels[index]
        if learn:
            share = scores / scores.sum(dim=(1, 2), keepdim=True).clamp_min(1e-12)
            if run.world is None:
                run.state.class_scores.index_add_(0, labels, share)
            else:  # under torchrun: every process's share of the batch, so that all hold the same totals
                run.state.class_scores += run.world.total(torch.zeros_like(run.state.class_scores).index_add_(0, labels, share))
        return topk_mask(run.state.class_scores, self.k, "image")[labels]

    def _constrain(self, run, delta, index):
        if self.mask == "fixed":
            return delta * run.state.batch_masks
        return delta
