"""REM: robust error-minimizing noise (Fu et al., ICLR 2022, arXiv:2203.14533).

Error-minimizing noise (EM) is undone by adversarial training: a trainer who trains on
adversarial examples within a radius rho_a no longer minimizes the loss the noise was made to
minimize. REM solves min over the model, min over the noise (radius rho_u), max over an
adversarial perturbation (radius rho_a < rho_u), with expectation over transformations: the
source model trains on adversarial examples of the transformed perturbed images, and each PGD
step on the noise descends the loss of those adversarial examples. It is EM's loop with
``adv_eps`` set (``protect/_bilevel.py`` holds the robust step), and the reference's settings:
rho_u 8/255 (10 steps of 1.6/255), rho_a 4/255 (10 steps of 0.8/255, random start), J = 5
transformations per PGD step, 5000 source steps of ResNet-18.
"""
from __future__ import annotations

from .base import register_protection
from .em import EM


@register_protection
class REM(EM):
    """Robust error-minimizing noise within L-inf ``eps``, against adversarial training up to ``adv_eps``.

    Parameters: those of EM (mode, and the error-minimizing loop's), with the reference's
    adv_eps : float or None, default=eps/2
        rho_a: the adversarial radius the noise is made to survive, below eps (rho_u); None:
        half of eps, the reference's 4/255 at 8/255.
    samples : int, default=5
        J, sampled transformations per PGD step (the reference's expectation over transformations).
    """

    name = "rem"
    # 2 CPU cores: the reference's J = 5 and 10 ascent steps cost ~50x EM per step; J = 1 and 2 steps ~3x.
    presets = {"cpu": {"samples": 1, "adv_steps": 2}}

    def __init__(self, *, adv_eps: float | None = None, samples: int = 5, **loop):
        if adv_eps is None:
            adv_eps = loop.get("eps", 8 / 255) / 2
        super().__init__(adv_eps=adv_eps, samples=samples, **loop)
