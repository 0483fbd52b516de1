"""The ``.npz`` release: a MedMNIST-layout file with the protected train images.

The folder is a valid MedMNIST root (``medmnist.BloodMNIST(split="train", root=DIR)`` reads the
protected images); the other arrays are the input's. Its manifest has no ``format`` field (the
first releases had none) and names the file in ``dataset_file``. The sealed perturbation is one
array of the train images' shape, and restoring gives the arrays back byte for byte.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .._runtime import sha256_file
from ..bounds import pixel_change
from ..data.medmnist import MedMNISTData, load
from ..data.scratch import ScratchArray
from ..errors import InputError
from .format import MANIFEST, Release, ReleaseFormat, Request, Written, register_format
from .restoration import Restoration, pixel_digest, restore_rows


def dataset_file(data) -> str:
    """The name of the ``.npz`` an ``.npz`` release holds, which every manifest records in ``dataset_file``."""
    return f"{data.name}.npz"


@register_format
class NpzFormat(ReleaseFormat):
    name = "npz"
    manifest_format = None
    dataset_type = MedMNISTData
    public_arrays = True

    def check(self, data, released, request: Request) -> None:
        released = _array(released)
        original = data.images("train")
        if released.shape != original.shape or released.dtype != np.uint8:
            raise ValueError("protected images must have the original train images' shape and uint8 dtype")

    def write(self, tmp: Path, data, released, manifest: dict, request: Request) -> Written:
        original = data.images("train")
        path = tmp / dataset_file(data)
        np.savez_compressed(path, **{**data.arrays, "train_images": _array(released)})
        with np.load(path, allow_pickle=False) as stored:
            written = stored["train_images"]
        delta = (written.astype(np.int16) - original.astype(np.int16)).astype(np.int8)
        record = {"format": self.name, "dataset_file": path.name, "train_sha256": pixel_digest(original)}
        return Written(measured=pixel_change(original, written), payload=(delta, record), original=original,
                       released=written)

    def over_l0(self, measured: dict, max_l0: float) -> bool:
        return measured["changed_positions_max"] > max_l0 * measured["positions_per_image"]

    def opened(self, out: Path, data, manifest: dict) -> Release:
        return Release(path=out, manifest=manifest, data=load(str(out / dataset_file(data))))

    def read(self, folder: Path, manifest: dict) -> Release:
        try:
            path = folder / manifest["dataset_file"]
        except (KeyError, TypeError) as exc:
            raise InputError(f"{folder} is not a medshield release: cannot read {MANIFEST} ({exc.__class__.__name__})") from None
        return Release(path=folder, manifest=manifest, data=load(str(path)))

    def restored(self, release: Release, restoration: Restoration) -> MedMNISTData:
        """The original dataset in memory: its arrays byte-identical to the input's."""
        released = release.data.images("train")
        original = np.empty_like(released)
        for rows, block in restore_rows(released, restoration):
            original[rows] = block
        expected = restoration.record.get("train_sha256")
        if expected is not None and pixel_digest(original) != expected:
            raise InputError(f"{release.path / release.manifest['dataset_file']}: the restored train images do not match "
                             "the originals' SHA-256 sealed with the release (the release was changed since it was written)")
        return release.data.with_train(original)

    def restore_into(self, release: Release, restoration: Restoration, dest: Path, skip: frozenset, force: bool) -> list[str]:
        restored = self.restored(release, restoration)
        np.savez_compressed(dest / dataset_file(restored), **restored.arrays)
        return []

    def essential_files(self, manifest: dict) -> set:
        return {manifest.get("dataset_file")}

    def recorded_original(self, release: Release, missing: InputError) -> MedMNISTData:
        path = Path(release.manifest["input"]["path"])
        if not path.is_file() or sha256_file(path) != release.manifest["input"]["sha256"]:
            raise missing
        return load(str(path))


def _array(released):
    """The protected images as one array (a scratch array is mapped, not read into memory)."""
    return released.mapped() if isinstance(released, ScratchArray) else released
