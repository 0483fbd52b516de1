"""Named settings. ``paper`` (the default) is the SALM paper's; others are explicit reductions.

A preset only fills values the user did not set, and every result records which preset ran.
"""
from __future__ import annotations

from .errors import InputError

PRESETS: dict[str, dict[str, dict]] = {
    # Appendix B.2 of the paper; M = 5000 source steps as in REM, the framework the paper adopts.
    "paper": {"protect": {}, "victim": {}},
    # 2 CPU cores, no GPU: protect + two victims on BloodMNIST in about 30 minutes.
    "cpu": {
        "protect": {"steps": 300, "width": 16},
        "victim": {"width": 16, "epochs": 8, "iterations": None},
    },
}


def preset(name: str, part: str) -> dict:
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}; available: {', '.join(PRESETS)}")
    return dict(PRESETS[name][part])
