"""The files of a folder release besides its train images: copied in, and copied back on restore.

Every file of the owner's tree but the train images (and hidden or system files, which may hold
thumbnails of the originals, :mod:`..data.folder_scan`) is copied byte for byte; restoring writes
the original tree back from the release, the train images from their sealed perturbation.
"""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np

from ..data.folder import LABELS_COPY
from ..data.folder_scan import is_hidden_or_system
from ..data.walk import walk_files
from ..errors import InputError
from .format import MANIFEST, Release
from .restoration import RESTORATION, Restoration, pixel_digest
from .signing import PUBLIC_KEY, SIGNATURE

RELEASE_FILES = (MANIFEST, RESTORATION, LABELS_COPY, SIGNATURE, PUBLIC_KEY)  # what a release adds at its root


def copy_tree(source, tmp: Path, targets, jpeg_as_png: bool) -> dict:
    """Every file but the train images (and hidden/system files) into ``tmp``, files only, so no
    folder of the release is ever empty; returns the release name of each train image."""
    names = {}
    for path in walk_files(source.path):  # symlinks followed inside the root, refused when they leave it or loop
        rel = path.relative_to(source.path).as_posix()
        if is_hidden_or_system(Path(rel)):
            continue
        if rel in targets:
            names[rel] = source.output_name(rel, jpeg_as_png)
            (tmp / names[rel]).parent.mkdir(parents=True, exist_ok=True)
        else:
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, tmp / rel)
    return names


def write_labels(source, tmp: Path, names: dict) -> str:
    """The copy's labels as a path-keyed CSV (SOP Instance UIDs change in derived DICOM files)."""
    with open(tmp / LABELS_COPY, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "split"])
        for rel, label, split in zip(source.files, source.label_index, source.split):
            writer.writerow([names.get(rel, rel), source.class_names[label], split])
    return LABELS_COPY


def restore_folder(release: Release, restoration: Restoration, dest: Path, skip: frozenset = frozenset(),
                   force: bool = False) -> list[str]:
    """Write the original tree of a folder release into the new folder ``dest``; returns the
    release files not restored.

    Train images: released pixels minus the perturbation, checked against the original's SHA-256
    sealed with the release, then written in the original's name and format (JPEG and converted
    originals: their own bytes; DICOM: the changed elements put back); every other file is copied
    from the release (it was copied from the original). With a labels file the originals get
    ``medshield-labels.csv`` under their own names. Files in ``skip`` (changed in the release) are
    left out; an image whose restored pixels miss their sealed hash is an error, or with ``force``
    left out and returned.
    """
    data, record = release.data, restoration.record
    files, renamed = record["files"], record["renamed"]
    train_files = {data.files[i] for i in data.indices("train")}
    if set(files) - set(skip) != train_files - set(skip):
        raise InputError(f"{release.path}: its train images are not those the restoration data was sealed with")
    digests, shapes = record["pixels_sha256"], record["shapes"]
    dest.mkdir(parents=True, exist_ok=True)
    for path in walk_files(release.path):
        rel = path.relative_to(release.path).as_posix()
        if rel not in train_files and rel not in skip and rel not in RELEASE_FILES:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / rel)
    left_out = []
    with restoration.file_perturbations() as take:
        for rel, digest, shape in zip(files, digests, shapes):
            delta = take(tuple(shape))  # read for a skipped file too, to keep the files after it in step
            if rel in skip:
                continue
            released = data.read_file(release.path / rel)
            if released.shape != tuple(shape):
                raise InputError(f"{release.path / rel}: its size differs from the image the release was sealed with")
            pixels = (released.astype(np.int32) - delta.astype(np.int32)).astype(released.dtype)
            if digest is not None and pixel_digest(pixels) != digest:
                if not force:
                    raise InputError(f"{release.path / rel}: the restored image does not match its original's SHA-256 "
                                     "sealed with the release; nothing was written")
                left_out.append(rel)
                continue
            name = renamed.get(rel, rel)
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            raw = restoration.original_bytes(name)
            if raw is not None:
                (dest / name).write_bytes(raw)
            else:
                data.restore_file(release.path / rel, pixels, dest / name, record["changed_elements"].get(rel))
    if release.manifest.get("labels_file"):
        write_labels(data, dest, renamed)
    return sorted(skip) + left_out
