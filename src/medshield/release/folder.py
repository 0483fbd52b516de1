"""The image folder release: a protected copy of the owner's folder, same tree, names, formats and bit depths.

Training images are re-encoded with their perturbation (PNG, TIFF, BMP losslessly); every other
file is copied byte for byte (:mod:`.tree`). JPEG inputs are either re-encoded as JPEG at quality
100, which still loses part of the perturbation (a warning says so and the manifest records the
measured bounds), or, with ``jpeg_as_png``, written as PNG beside the same name. ``manifest.json``
and ``restoration.sealed`` (the perturbation and what else restores the originals, encrypted; the
key goes outside the copy) go to its root.

Everything is done image by image (:mod:`.train_files`): the protected images arrive as an
on-disk array in the working form, each file is written at its own size and mode, read back,
measured and its difference streamed into the sealed payload, so writing needs memory for an
image. Hidden and system files are not copied (:mod:`..data.folder_scan`).
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import weakref
from pathlib import Path

from ..data.folder import FolderData, load_folder
from ..data.opening import load_directory
from ..errors import InputError
from .format import Release, ReleaseFormat, Request, Written, register_format
from .reading import restored_labels, working_of
from .restoration import Restoration
from .train_files import TrainFiles
from .tree import RELEASE_FILES, copy_tree, restore_folder, write_labels

log = logging.getLogger(__name__)


@register_format
class FolderFormat(ReleaseFormat):
    name = "folder"
    manifest_format = "folder"
    dataset_type = FolderData
    per_file_bounds = True
    reports_duplicates = True

    def inputs(self, data, request: Request) -> list[Path]:
        return [data.path] + ([Path(request.labels_csv)] if request.labels_csv else [])

    def check(self, data, released, request: Request) -> None:
        for reserved in RELEASE_FILES:
            if (data.path / reserved).exists():
                raise InputError(f"{data.path / reserved} exists; medshield writes that name at the release root, rename it first")
        jpeg_inputs = _lossy_inputs(data, request.jpeg_as_png)
        if jpeg_inputs:
            log.warning("%d JPEG training images are re-encoded as JPEG, which weakens the perturbation; "
                        "pass --jpeg-as-png to write them as PNG", len(jpeg_inputs))

    def write(self, tmp: Path, data, released, manifest: dict, request: Request) -> Written:
        """``released``: the train images in ``data``'s order, an array or a scratch array (read one image at a time)."""
        train = data.indices("train")
        names = copy_tree(data, tmp, {data.files[i] for i in train}, request.jpeg_as_png)
        labels_file = write_labels(data, tmp, names) if request.labels_csv else None
        train_files = TrainFiles(data, released, tmp, names, manifest, levels=request.max_linf, max_l0=request.max_l0)
        measured = train_files.write()
        lossy = bool(_lossy_inputs(data, request.jpeg_as_png))
        converted = data.notes.get("converted", {})
        record = {"format": self.name, "files": [names[data.files[i]] for i in train],
                  "pixels_sha256": train_files.pixel_digests, "shapes": train_files.file_shapes,
                  "renamed": {v: k for k, v in names.items() if k != v}, "changed_elements": train_files.changed_elements}
        originals = {rel: data.path / rel for rel in names if data.is_jpeg(rel) or rel in converted}
        return Written(
            measured=measured, payload=(train_files.perturbation.mapped(), record, originals),
            original=data.image_store("train"), released=train_files.written, lossy=lossy,
            header={"format": self.manifest_format, "labels_file": labels_file, "jpeg_as_png": request.jpeg_as_png},
            measured_notes={"lossy_jpeg_output": lossy},
            trailer={"renamed": {k: v for k, v in names.items() if k != v}, **data.notes},
        )

    def over_l0(self, measured: dict, max_l0: float) -> bool:
        return measured["l0_max"] > max_l0

    def read(self, folder: Path, manifest: dict) -> Release:
        labels = folder / manifest["labels_file"] if manifest.get("labels_file") else None
        data = self.load(folder, labels, manifest)
        data.name = manifest.get("dataset_name", data.name)  # the owner's dataset, not the output folder's name
        return Release(path=folder, manifest=manifest, data=data)

    def load(self, folder: Path, labels: Path | None, manifest: dict) -> FolderData:
        """The release's files as the folder reader reads them, in the working form it was made in."""
        working = manifest.get("working") or {}
        return load_folder(folder, labels, size=working.get("size"), channels=working.get("channels"),
                           convert=bool(manifest.get("converted")))

    def restored(self, release: Release, restoration: Restoration) -> FolderData:
        """The originals in a scratch folder that lives as long as the dataset read from it."""
        folder = Path(tempfile.mkdtemp(prefix="medshield-original-"))
        try:
            restore_folder(release, restoration, folder / "original")
            data = load_directory(str(folder / "original"), restored_labels(folder / "original"), **working_of(release))
        except BaseException:  # no scratch copy outlives a failure
            shutil.rmtree(folder, ignore_errors=True)
            raise
        weakref.finalize(data, shutil.rmtree, folder, ignore_errors=True)
        return data

    def restore_into(self, release: Release, restoration: Restoration, dest: Path, skip: frozenset, force: bool) -> list[str]:
        return restore_folder(release, restoration, dest, skip, force)

    def recorded_original(self, release: Release, missing: InputError) -> FolderData:
        source = release.manifest["input"]
        path = Path(source["path"])
        if not path.is_dir():
            raise missing
        data = load_directory(str(path), source.get("labels"), **working_of(release))
        if data.fingerprint() != source["sha256"]:
            raise missing
        return data


def _lossy_inputs(data, jpeg_as_png: bool) -> list[str]:
    """The train files written in a lossy format (JPEG kept as JPEG)."""
    return [rel for rel in (data.files[i] for i in data.indices("train")) if data.is_lossy(rel, jpeg_as_png)]
