"""Named settings. ``paper`` (the default) is the SALM paper's; others are explicit reductions.

A preset only fills values the user did not set, and every result records which preset ran.
``protect`` settings apply to every method that takes them; a method adds its own per preset
(its ``presets`` attribute), and ``protect.create_protection`` is the one place they merge.
"""
from __future__ import annotations

from .errors import InputError

PRESETS: dict[str, dict[str, dict]] = {
    # Appendix B.2 of the paper; M = 5000 source steps as in REM, the framework the paper adopts.
    "paper": {"protect": {}, "victim": {}},
    # 2 CPU cores, no GPU: protect + two victims on BloodMNIST in about 20 minutes (measured 1,173 s).
    "cpu": {
        "protect": {"steps": 300, "width": 16},
        # A fixed number of iterations, as in the paper (20,000), so small sets (Breast: 546
        # images) train as long as large ones: 600 iterations = 6.4 epochs of BloodMNIST.
        "victim": {"width": 16, "iterations": 600},
    },
}


# Victim training recipes by name (``--recipe``); without one, the preset's victim settings apply.
RECIPES: dict[str, dict] = {
    # Appendix B.2: SGD 0.1, momentum 0.9, wd 5e-4, 20,000 iterations of 128, lr x0.1 at 50/75 %.
    "paper": {},
    # MedMNIST v2's official ResNet-18 training: Adam 1e-3, 100 epochs of 128, lr x0.1 at 50 % and
    # 75 %, no weight decay, no augmentation, full width.
    "medmnist": {"optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0, "epochs": 100, "iterations": None,
                 "batch_size": 128, "schedule": "multistep", "lr_milestones": (0.5, 0.75), "augment": False},
    "cpu": PRESETS["cpu"]["victim"],
}


def recipe_settings(name: str) -> dict:
    if name not in RECIPES:
        raise InputError(f"unknown victim recipe {name!r}; available: {', '.join(RECIPES)}")
    return dict(RECIPES[name])


def preset(name: str, part: str) -> dict:
    """The ``part`` ("protect" or "victim") settings of preset ``name``."""
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}; available: {', '.join(PRESETS)}")
    return dict(PRESETS[name][part])
