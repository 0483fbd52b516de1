"""Shared fixtures: real MedMNIST files from ../shared when present, generated ones otherwise."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "medmnist"


def synthetic_npz(
    path: Path, *, n_train=120, n_test=60, size=28, channels=1, classes=2, seed=0, background=(0, 80), blob=200
) -> Path:
    """A MedMNIST-layout file whose classes differ by a bright blob's position (easy to learn).

    Up to 9 classes (a 3 x 3 grid of positions).
    """
    rng = np.random.default_rng(seed)

    def split(n):
        labels = rng.integers(0, classes, size=(n, 1))
        images = rng.integers(*background, size=(n, size, size, channels)).astype(np.uint8)
        for i, label in enumerate(labels[:, 0]):
            if classes <= 2:  # a bar at the top or the bottom
                r = 2 + (label * (size - 10)) // max(1, classes - 1)
                images[i, r : r + 6, 4:-4] = blob
            else:  # a square on a 3-column grid, so that every class sits apart from the others
                r, c = 2 + (label // 3) * (size // 3), 2 + (label % 3) * (size // 3)
                images[i, r : r + 6, c : c + 6] = blob
        return (images[..., 0] if channels == 1 else images), labels.astype(np.uint8)

    arrays = {}
    for name, n in (("train", n_train), ("val", n_test // 2), ("test", n_test)):
        arrays[f"{name}_images"], arrays[f"{name}_labels"] = split(n)
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="session")
def medmnist_root(tmp_path_factory) -> Path:
    """Folder with breast-, blood- and pneumoniamnist.npz: the real ones, or generated stand-ins."""
    if (SHARED / "breastmnist.npz").is_file():
        return SHARED
    root = tmp_path_factory.mktemp("medmnist")
    synthetic_npz(root / "breastmnist.npz", n_train=546, n_test=156)
    synthetic_npz(root / "bloodmnist.npz", channels=3, classes=8, n_train=400, n_test=200)
    synthetic_npz(root / "pneumoniamnist.npz", n_train=400, n_test=200)
    return root


@pytest.fixture(scope="session")
def real_medmnist(medmnist_root) -> bool:
    """Whether medmnist_root holds the official files (some claims hold only on real data)."""
    return medmnist_root == SHARED


@pytest.fixture
def tiny_npz(tmp_path) -> Path:
    return synthetic_npz(tmp_path / "tiny.npz")
