"""Opening a release, and the originals it was made from (with its key, or given and checked).

``open_dataset`` is the one entry for every command that takes a dataset or a release: it decides
by what the path is. ``original_of`` is how the owner's tools (evaluate --compare, utility,
report, grid) get the clean data back. How a release is read is its format's (:mod:`.format`),
named by its manifest.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..bounds import pixel_change
from ..data.folder import LABELS_COPY, FolderData
from ..data.medmnist import MedMNISTData, load
from ..data.opening import load_directory
from ..errors import InputError
from .format import MANIFEST, Release, format_of
from .restoration import Restoration
from .sealing import default_key_path


def is_release(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def read_release(path: str | Path) -> Release:
    """Open a release folder written by ``protect``, in the format its manifest names."""
    folder = Path(path)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        manifest.get("format")  # AttributeError: not a JSON object
    except (OSError, ValueError, AttributeError) as exc:
        raise InputError(f"{folder} is not a medshield release: cannot read {MANIFEST} ({exc.__class__.__name__})") from None
    return format_of(manifest, folder).read(folder, manifest)


def open_dataset(spec: str, root: str | None = None, labels: str | None = None) -> tuple[MedMNISTData | FolderData, Release | None]:
    """A release folder, an image folder, or a MedMNIST dataset (flag or .npz)."""
    if Path(spec).is_dir():
        if is_release(spec):
            release = read_release(spec)
            return release.data, release
        return load_directory(spec, labels), None
    return load(spec, root), None


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
        # A release written before keys names its input in the manifest; check it is unchanged.
        path = Path(release.manifest["input"]["path"])
        missing = InputError(f"the original of {release.path} ({path}) is missing or changed; pass --original PATH")
        return format_of(release.manifest).recorded_original(release, missing)
    with Restoration(release.path, release.manifest, key) as restoration:
        return format_of(release.manifest).restored(release, restoration)


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


def restored_labels(folder: Path) -> str | None:
    """The labels file a restored folder holds, when its release had one."""
    labels = folder / LABELS_COPY
    return str(labels) if labels.is_file() else None
