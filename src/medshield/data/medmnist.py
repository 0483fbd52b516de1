"""Find, download and read MedMNIST-layout ``.npz`` files.

A dataset is named either by a MedMNIST flag (``bloodmnist``, ``bloodmnist_64``) looked up in a
root folder, or by the path of any ``.npz`` with MedMNIST's keys. Files are read without pickles
and with every array's declared size checked before it is inflated (:mod:`.bounded`): a release
from a stranger can never run code here, nor exhaust the machine's memory.
"""
from __future__ import annotations

import difflib
import hashlib
import os
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import InputError
from .bounded import read_npz
from .validation import validate_arrays

SIZES = (28, 64, 128, 224)
ROOT_ENV = "MEDSHIELD_DATA_ROOT"


def medmnist_info() -> dict:
    """MedMNIST's own metadata table (flags, tasks, labels, download URLs and MD5s)."""
    from medmnist import INFO

    return INFO


def flags_2d() -> list[str]:
    return [flag for flag in medmnist_info() if not flag.endswith("3d")]


def default_root() -> Path:
    """``--root`` falls back to $MEDSHIELD_DATA_ROOT, then to medmnist's own default folder."""
    if os.environ.get(ROOT_ENV):
        return Path(os.environ[ROOT_ENV]).expanduser()
    from medmnist.info import DEFAULT_ROOT

    return Path(DEFAULT_ROOT)


@dataclass
class MedMNISTData:
    """The arrays of one ``.npz`` as stored (layout kept for writing back) plus what they mean."""

    name: str
    path: Path
    arrays: dict[str, np.ndarray]
    num_classes: int
    task: str
    label_names: dict[str, str] = field(default_factory=dict)

    def images(self, split: str) -> np.ndarray:
        """Images as stored: (N, H, W) for gray, (N, H, W, C) for colour; uint8."""
        return self.arrays[f"{split}_images"]

    def labels(self, split: str) -> np.ndarray:
        """Class indices as a flat int64 vector."""
        return self.arrays[f"{split}_labels"].reshape(-1).astype(np.int64)

    @property
    def channels(self) -> int:
        images = self.images("train")
        return 1 if images.ndim == 3 else images.shape[-1]

    @property
    def splits(self) -> list[str]:
        return [s for s in ("train", "val", "test") if f"{s}_images" in self.arrays]

    def fingerprint(self) -> str:
        """sha256 of the ``.npz``: identifies the exact input."""
        with open(self.path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()

    def train_duplicate_groups(self) -> list[list[int]]:
        """Groups of train rows that must share their noise: none in a MedMNIST file (see ``FolderData``)."""
        return []

    def with_train(self, images: np.ndarray, labels: np.ndarray | None = None) -> "MedMNISTData":
        """The same dataset with its train split replaced (val and test untouched)."""
        arrays = {**self.arrays, "train_images": images}
        if labels is not None:
            arrays["train_labels"] = labels
        return replace(self, arrays=arrays)

    def train_subset(self, n: int, seed: int = 0) -> "MedMNISTData":
        """A seeded random subset of ``n`` train images, in their order (the whole split if smaller)."""
        if n >= len(self.images("train")):
            return self
        keep = np.sort(np.random.default_rng(seed).permutation(len(self.images("train")))[:n])
        return self.with_train(self.images("train")[keep], self.arrays["train_labels"][keep])


def parse_flag(spec: str) -> tuple[str, int]:
    """``bloodmnist`` -> (bloodmnist, 28); ``bloodmnist_64`` -> (bloodmnist, 64)."""
    flag, _, size = spec.lower().partition("_")
    if flag not in medmnist_info():
        close = difflib.get_close_matches(flag, flags_2d(), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise InputError(
            f"unknown dataset {spec!r}: {hint}give a path to a .npz file or one of: {', '.join(flags_2d())}"
        )
    if flag.endswith("3d"):
        raise InputError(f"{flag} is a 3D dataset; medshield protects 2D images, use one of: {', '.join(flags_2d())}")
    if size and (not size.isdigit() or int(size) not in SIZES):
        raise InputError(f"unknown size in {spec!r}: MedMNIST sizes are {', '.join(map(str, SIZES))}")
    return flag, int(size) if size else 28


def file_name(flag: str, size: int) -> str:
    return f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"


def resolve(spec: str, root: str | Path | None = None, download: bool = True) -> Path:
    """Path of the ``.npz`` a dataset argument names, downloading a missing MedMNIST file."""
    as_path = Path(spec).expanduser()
    if spec.endswith(".npz") or as_path.is_file():
        if not as_path.is_file():
            raise InputError(f"dataset file {spec} does not exist")
        return as_path
    if "/" in spec or "\\" in spec:
        raise InputError(f"{spec} does not exist: give an existing release or image folder, a .npz file, "
                         f"or a MedMNIST name such as bloodmnist")
    flag, size = parse_flag(spec)
    root = Path(root).expanduser() if root else default_root()
    path = root / file_name(flag, size)
    if path.is_file():
        return path
    if not download:
        raise InputError(f"{path} not found: download it or pass --root with the folder that holds it")
    return _download(flag, size, root)


def _download(flag: str, size: int, root: Path) -> Path:
    """Fetch through medmnist's own downloader, which checks the published MD5."""
    import medmnist

    info = medmnist_info()[flag]
    try:
        root.mkdir(parents=True, exist_ok=True)
        getattr(medmnist, info["python_class"])(split="train", root=str(root), size=size, download=True)
    except Exception as exc:  # medmnist wraps every network failure in a multi-line RuntimeError
        raise InputError(
            f"could not download {file_name(flag, size)} into {root} ({type(exc).__name__}); "
            f"without internet, put the file there or pass --root with the folder that holds it"
        ) from None
    return root / file_name(flag, size)


def load(spec: str, root: str | Path | None = None, download: bool = True) -> MedMNISTData:
    """Resolve, read and validate a dataset; raises :class:`InputError` on anything unusable."""
    path = resolve(spec, root, download)
    if not zipfile.is_zipfile(path):
        raise InputError(f"cannot read {path}: it is not a .npz archive; save the arrays with numpy.savez")
    try:
        arrays = read_npz(path)
    except InputError:
        raise
    except Exception as exc:  # a damaged archive or .npy header makes numpy raise nearly anything (SyntaxError, ...)
        reason = "it holds pickled objects" if "pickle" in str(exc).lower() else "it is not a readable .npz"
        raise InputError(f"cannot read {path}: {reason} ({exc.__class__.__name__})") from None
    damaged = sorted(key for key, value in arrays.items() if not isinstance(value, np.ndarray))
    if damaged:  # numpy hands back the raw bytes of a member without a valid .npy header
        raise InputError(f"cannot read {path}: {', '.join(damaged)} is not a numpy array (a damaged .npy member); "
                         "save the arrays with numpy.savez")
    name = path.name[: -len(".npz")] if path.name.endswith(".npz") else path.stem
    flag = name.split("_")[0]
    info = medmnist_info().get(flag)
    task = info["task"] if info else "multi-class"
    expected = len(info["label"]) if info else None
    num_classes = validate_arrays(arrays, path=path, task=task, num_classes=expected)
    return MedMNISTData(
        name=name,
        path=path,
        arrays=arrays,
        num_classes=num_classes,
        task=task,
        label_names=dict(info["label"]) if info else {},
    )
