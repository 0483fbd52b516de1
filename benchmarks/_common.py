"""Helpers shared by the benchmark scripts: data location, machine line, result files."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

from medshield._runtime import machine, now_iso
from medshield.data.medmnist import MedMNISTData

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "medmnist"
RESULTS = Path(__file__).resolve().parent / "results"


def data_root() -> Path:
    root = os.environ.get("MEDSHIELD_DATA_ROOT")
    if root:
        return Path(root)
    if SHARED.is_dir():
        return SHARED
    sys.exit(f"no data: set MEDSHIELD_DATA_ROOT or provide {SHARED}")


def subset(data: MedMNISTData, n: int, seed: int = 0) -> MedMNISTData:
    """The same dataset with a seeded random subset of ``n`` train images (val/test untouched)."""
    if n >= len(data.images("train")):
        return data
    keep = np.sort(np.random.default_rng(seed).permutation(len(data.images("train")))[:n])
    arrays = {**data.arrays, "train_images": data.images("train")[keep], "train_labels": data.arrays["train_labels"][keep]}
    return MedMNISTData(name=data.name, path=data.path, arrays=arrays, num_classes=data.num_classes, task=data.task, label_names=data.label_names)


def with_train_images(data: MedMNISTData, images: np.ndarray) -> MedMNISTData:
    return MedMNISTData(
        name=data.name, path=data.path, arrays={**data.arrays, "train_images": images},
        num_classes=data.num_classes, task=data.task, label_names=data.label_names,
    )


def context() -> dict:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=RESULTS).stdout.strip()
    except OSError:
        commit = "unknown"
    return {"command": " ".join([Path(sys.executable).name] + sys.argv), "date": now_iso(), "commit": commit,
            "machine": machine(), "cpu": platform.processor() or platform.machine()}
