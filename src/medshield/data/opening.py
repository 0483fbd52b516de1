"""Opening what medshield reads: MedMNIST files, image and DICOM folders, releases of both kinds,
and the originals a release was made from (with its key, or given and checked).

One entry for every command: ``open_dataset`` decides by what the path is; ``original_of`` is how
the owner's tools (evaluate --compare, utility, report, grid) get the clean data back.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import weakref
from pathlib import Path

from .._runtime import sha256_file
from ..bounds import pixel_change
from ..errors import InputError
from .dicom import is_dicom_file, load_dicom_folder
from .folder import FolderData, load_folder
from .folder_release import LABELS_COPY, read_folder_release, restore_folder
from .medmnist import MedMNISTData, load
from .release import MANIFEST, Release, is_release, read_npz_release, restored_npz
from .restoration import Restoration
from .sealing import default_key_path
from .walk import walk_files


def read_release(path: str | Path) -> Release:
    """Open a release folder written by ``protect``: an ``.npz`` release or a folder/DICOM one."""
    folder = Path(path)
    try:
        kind = json.loads((folder / MANIFEST).read_text()).get("format")
    except (OSError, ValueError, AttributeError) as exc:
        raise InputError(f"{folder} is not a medshield release: cannot read {MANIFEST} ({exc.__class__.__name__})") from None
    return read_folder_release(folder) if kind in ("folder", "dicom") else read_npz_release(folder)


def open_dataset(spec: str, root: str | None = None, labels: str | None = None) -> tuple[MedMNISTData | FolderData, Release | None]:
    """A release folder, an image folder, or a MedMNIST dataset (flag or .npz)."""
    if Path(spec).is_dir():
        if is_release(spec):
            release = read_release(spec)
            return release.data, release
        return load_directory(spec, labels), None
    return load(spec, root), None


def load_directory(path: str, labels: str | None, **working) -> FolderData:
    """A folder of DICOM files or of images (decided by what it holds); ``working``: the image
    folder's ``size``, ``channels`` and ``convert`` (:func:`~.folder.load_folder`)."""
    if any(is_dicom_file(p) for p in walk_files(path)):
        return load_dicom_folder(path, labels)
    return load_folder(path, labels, **working)


def working_of(release: Release) -> dict:
    """The working form a folder release was made in, to read its originals the same way."""
    working = release.manifest.get("working") or {}
    return {"size": working.get("size"), "channels": working.get("channels"),
            "convert": bool(release.manifest.get("converted"))}


def original_of(release: Release, key: str | Path | None = None, original: str | None = None,
                labels: str | None = None) -> MedMNISTData | FolderData:
    """The clean dataset a release was made from, for the owner's own tools.

    ``original`` (a dataset or folder, with ``labels`` for a CSV-labelled folder) is loaded and
    checked to match the release; otherwise the key (``key``, default ``DIR.key`` beside the
    release) restores it (in memory for ``.npz``, in a scratch folder for folders).
    """
    if original is not None:
        data = load_directory(original, labels, **working_of(release)) if Path(original).is_dir() else load(original)
        check_matches(release, data, original)
        return data
    if key is None and "input" in release.manifest and not default_key_path(release.path).exists():
        return _recorded_original(release)  # a release written before keys: its manifest names the input
    with Restoration(release.path, release.manifest, key) as restoration:
        if restoration.record["format"] == "npz":
            return restored_npz(release, restoration)
        folder = Path(tempfile.mkdtemp(prefix="medshield-original-"))
        try:
            restore_folder(release, restoration, folder / "original")
            data = load_directory(str(folder / "original"), _restored_labels(folder / "original"), **working_of(release))
        except BaseException:  # no scratch copy outlives a failure
            shutil.rmtree(folder, ignore_errors=True)
            raise
    weakref.finalize(data, shutil.rmtree, folder, ignore_errors=True)  # the scratch copy lives as long as the data
    return data


def check_same_layout(release: Release, data, spec: str) -> None:
    """``--original`` must hold train images of the release's shape and dtype."""
    ours, theirs = release.data.images("train"), data.images("train")
    if ours.shape != theirs.shape or ours.dtype != theirs.dtype:
        raise InputError(f"--original {spec}: train images {theirs.shape} {theirs.dtype} do not match the release's "
                         f"{ours.shape} {ours.dtype}; give the dataset this release was made from")


def check_matches(release: Release, data, spec: str) -> None:
    """``--original`` must be the dataset the release was made from: same train images, within the bounds."""
    check_same_layout(release, data, spec)
    ours, theirs = release.data.images("train"), data.images("train")
    measured = release.manifest["measured"]
    if pixel_change(theirs, ours)["linf"] > measured.get("limit_linf", measured["linf"]):
        raise InputError(f"--original {spec}: differs from the release by more than its radius; give the dataset this "
                         "release was made from")


def _recorded_original(release: Release) -> MedMNISTData | FolderData:
    """A release written before keys existed names its input in the manifest; check it is unchanged."""
    source = release.manifest["input"]
    path = Path(source["path"])
    missing = InputError(f"the original of {release.path} ({path}) is missing or changed; pass --original PATH")
    if release.manifest.get("format") in ("folder", "dicom"):
        if not path.is_dir():
            raise missing
        data = load_directory(str(path), source.get("labels"), **working_of(release))
        if data.fingerprint() != source["sha256"]:
            raise missing
        return data
    if not path.is_file() or sha256_file(path) != source["sha256"]:
        raise missing
    return load(str(path))


def _restored_labels(folder: Path) -> str | None:
    labels = folder / LABELS_COPY
    return str(labels) if labels.is_file() else None
