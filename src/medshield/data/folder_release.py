"""Write a protected copy of an image or DICOM folder: same tree, names, formats and bit depths.

Training images are re-encoded with their perturbation (PNG, TIFF, BMP losslessly); every other
file is copied byte for byte. JPEG inputs are either re-encoded as JPEG at quality 100, which
still loses part of the perturbation (a warning says so and the manifest records the measured
bounds), or, with ``jpeg_as_png``, written as PNG beside the same name. ``manifest.json`` and
``restoration.sealed`` (the perturbation and what else restores the originals, encrypted; the
key goes outside the copy) go to its root. As for MedMNIST releases, the copy is built under a
temporary name, the bounds are checked on the written files, and only then renamed.

Everything is done image by image (:mod:`.folder_writing`): the protected images arrive as an
on-disk array in the working form, each file is written at its own size and mode, read back,
measured and its difference streamed into the sealed payload, so writing needs memory for an
image. Hidden and system files are not copied (:mod:`.folder_scan`).
"""
from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import numpy as np

from ..errors import InputError
from .folder import LABELS_COPY, load_folder
from .folder_scan import is_hidden_or_system
from .folder_writing import TrainFiles
from .release import MANIFEST, Release, check_output_dir, seal_sign_publish, staging_folder
from .restoration import RESTORATION, Restoration, pixel_digest
from .sealing import check_key_path, default_key_path
from .signing import PUBLIC_KEY, SIGNATURE, OwnerKey
from .walk import walk_files

log = logging.getLogger(__name__)
RELEASE_FILES = (MANIFEST, RESTORATION, LABELS_COPY, SIGNATURE, PUBLIC_KEY)  # what a release adds at its root


def write_folder_release(
    out_dir: str | Path, source, protected_train, manifest: dict, *,
    max_linf: int, max_l0: float, overwrite: bool = False, labels_csv: str | Path | None = None, jpeg_as_png: bool = False,
    key_out: Path | None = None, private: dict | None = None, measure_utility=None, owner: OwnerKey | None = None,
) -> Release:
    """``protected_train``: the train images in ``source``'s order, an array or a :class:`ScratchArray`
    (read one image at a time). The key that unseals the restoration data goes to ``key_out``
    (default ``DIR.key``) with the owner's ``private`` record; ``measure_utility(original, written)``,
    when given, adds its result to the manifest; ``owner`` signs it (default: a fresh key kept in the key file)."""
    out = check_output_dir(out_dir, [source.path] + ([Path(labels_csv)] if labels_csv else []), overwrite)
    check_key_path(key_out or default_key_path(out), out, overwrite)
    for reserved in RELEASE_FILES:
        if (source.path / reserved).exists():
            raise InputError(f"{source.path / reserved} exists; medshield writes that name at the release root, rename it first")
    train = source.indices("train")
    targets = {source.files[i]: n for n, i in enumerate(train)}
    jpeg_inputs = [rel for rel in targets if source.is_lossy(rel, jpeg_as_png)]
    if jpeg_inputs:
        log.warning("%d JPEG training images are re-encoded as JPEG, which weakens the perturbation; "
                    "pass --jpeg-as-png to write them as PNG", len(jpeg_inputs))
    tmp = staging_folder(out)
    try:
        names = _copy_tree(source, tmp, targets, jpeg_as_png)
        labels_file = _write_labels(source, tmp, names) if labels_csv else None
        train_files = TrainFiles(source, protected_train, tmp, names, manifest, levels=max_linf, max_l0=max_l0)
        measured = train_files.write()
        lossy = bool(jpeg_inputs)
        violated = measured["linf"] > max_linf or measured["l0_max"] > max_l0
        if violated and not lossy:
            raise RuntimeError(f"release violates its bounds (L-inf <= {max_linf}, L0 <= {max_l0}): {measured}")
        converted = source.notes.get("converted", {})
        record = {"format": source.format, "files": [names[source.files[i]] for i in train],
                  "pixels_sha256": train_files.pixel_digests, "shapes": train_files.file_shapes,
                  "renamed": {v: k for k, v in names.items() if k != v}, "changed_elements": train_files.changed_elements}
        originals = {rel: source.path / rel for rel in names if source.is_jpeg(rel) or rel in converted}
        original, written = source.image_store("train"), train_files.written
        manifest = {
            **manifest, "format": source.format, "labels_file": labels_file, "jpeg_as_png": jpeg_as_png,
            "measured": {**measured, "limit_linf": max_linf, "limit_l0": max_l0, "lossy_jpeg_output": lossy},
            "utility": measure_utility(original, written) if measure_utility else None,
            "renamed": {k: v for k, v in names.items() if k != v},
            **source.notes,
        }
        seal_sign_publish(tmp, out, manifest, (train_files.perturbation.mapped(), record, originals), key_out=key_out,
                          private=private or {}, owner=owner)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return read_folder_release(out)


def _copy_tree(source, tmp: Path, targets, jpeg_as_png: bool) -> dict:
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


def _write_labels(source, tmp: Path, names: dict) -> str:
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
        _write_labels(data, dest, renamed)
    return sorted(skip) + left_out


def read_folder_release(path: str | Path) -> Release:
    folder = Path(path)
    manifest = json.loads((folder / MANIFEST).read_text())
    labels = folder / manifest["labels_file"] if manifest.get("labels_file") else None
    if manifest.get("format") == "dicom":
        from .dicom import load_dicom_folder

        data = load_dicom_folder(folder, labels)
    else:
        working = manifest.get("working") or {}
        data = load_folder(folder, labels, size=working.get("size"), channels=working.get("channels"),
                           convert=bool(manifest.get("converted")))
    data.name = manifest.get("dataset_name", data.name)  # the owner's dataset, not the output folder's name
    return Release(path=folder, manifest=manifest, data=data)
