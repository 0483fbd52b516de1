"""Run context: seeding, device, and the facts a manifest records so a run can be repeated."""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import random
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import torch


def write_json(path: str | Path, value) -> Path:
    """Write ``value`` as indented JSON, whole or not at all (temporary name, then rename)."""
    target = Path(path).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.partial-{os.getpid()}"
    try:
        tmp.write_text(json.dumps(value, indent=2) + "\n")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)  # after a refused write; after the rename there is nothing to remove
    return target


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU generator for explicit sampling."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def use_threads(threads: int | None = None) -> int:
    """Set torch's CPU thread count (None keeps torch's default) and return the count in use.

    Results move with the thread count (floating-point sums run in another order), so every run
    records it, and a rerun with the same seed and threads repeats its bytes."""
    if threads is not None:
        if threads < 1:
            from .errors import InputError

            raise InputError(f"--threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def package_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for pkg in ("medshield", "torch", "torchvision", "numpy", "medmnist", "scikit-learn"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    return versions


def machine() -> dict[str, object]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
