"""Write a protected copy of an image or DICOM folder: same tree, names, formats and bit depths.

Training images are re-encoded with their perturbation (PNG, TIFF, BMP losslessly); every other
file is copied byte for byte. JPEG inputs are either re-encoded as JPEG at quality 100, which
still loses part of the perturbation (a warning says so and the manifest records the measured
bounds), or, with ``jpeg_as_png``, written as PNG beside the same name. ``manifest.json`` and
``restoration.sealed`` (the perturbation and what else restores the originals, encrypted; the
key goes outside the copy) go to its root. As for MedMNIST releases, the copy is built under a
temporary name, the bounds are checked on the written files, and only then renamed.

Everything is done image by image or a chunk at a time: the protected images arrive as an
on-disk array, the written files are read back into another, compared with the originals' cache
and their difference streamed into the sealed payload, so writing needs memory for a chunk.
"""
from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import numpy as np

from ..bounds import pixel_change
from ..errors import InputError
from .folder import load_folder
from .release import MANIFEST, Release, check_output_dir, seal_sign_publish, staging_folder
from .restoration import RESTORATION, Restoration, pixel_digest, restore_rows
from .scratch import ScratchArray
from .sealing import check_key_path, default_key_path
from .signing import PUBLIC_KEY, SIGNATURE, OwnerKey
from .walk import walk_files

log = logging.getLogger(__name__)
LABELS_COPY = "medshield-labels.csv"
CHUNK = 256  # images per step when comparing the written files with the originals


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
    for reserved in (MANIFEST, RESTORATION, LABELS_COPY, SIGNATURE, PUBLIC_KEY):
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
        names, changed = {}, {}
        for path in walk_files(source.path):  # files only: no folder of the release is ever empty
            rel = path.relative_to(source.path).as_posix()
            if rel in targets:
                names[rel] = source.output_name(rel, jpeg_as_png)
                (tmp / names[rel]).parent.mkdir(parents=True, exist_ok=True)
                elements = source.write_file(rel, protected_train[targets[rel]], tmp / names[rel], manifest)
                if elements:
                    changed[names[rel]] = elements
            else:
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, tmp / rel)
        labels_file = _write_labels(source, tmp, names) if labels_csv else None
        original = source.image_store("train")
        written = ScratchArray(original.shape, original.dtype)
        for n, i in enumerate(train):
            written[n] = source.read_file(tmp / names[source.files[i]])
        measured = pixel_change(original, written)
        lossy = bool(jpeg_inputs)
        violated = measured["linf"] > max_linf or measured["changed_positions_max"] > max_l0 * measured["positions_per_image"]
        if violated and not lossy:
            raise RuntimeError(f"release violates its bounds (L-inf <= {max_linf}, L0 <= {max_l0}): {measured}")
        delta = ScratchArray(original.shape, np.int8 if original.dtype == np.uint8 else np.int16)
        for start in range(0, len(delta), CHUNK):
            rows = slice(start, start + CHUNK)
            delta[rows] = written[rows].astype(np.int32) - original[rows].astype(np.int32)
        record = {"format": source.format, "files": [names[source.files[i]] for i in train],
                  "pixels_sha256": [pixel_digest(image) for start in range(0, len(train), CHUNK)
                                    for image in original[start:start + CHUNK]],
                  "renamed": {v: k for k, v in names.items() if k != v}, "changed_elements": changed}
        originals = {rel: source.path / rel for rel in names if source.is_jpeg(rel)}
        manifest = {
            **manifest, "format": source.format, "labels_file": labels_file, "jpeg_as_png": jpeg_as_png,
            "measured": {**measured, "limit_linf": max_linf, "limit_l0": max_l0, "lossy_jpeg_output": lossy},
            "utility": measure_utility(original, written) if measure_utility else None,
            "renamed": {k: v for k, v in names.items() if k != v},
        }
        seal_sign_publish(tmp, out, manifest, (delta.mapped(), record, originals), key_out=key_out,
                          private=private or {}, owner=owner)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return read_folder_release(out)


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
    sealed with the release, then written in the original's name and format (JPEG originals: their
    own bytes; DICOM: the changed elements put back); every other file is copied from the release
    (it was copied from the original). With a labels file the originals get ``medshield-labels.csv``
    under their own names. Files in ``skip`` (changed in the release) are left out; an image whose
    restored pixels miss their sealed hash is an error, or with ``force`` left out and returned.
    """
    data, record = release.data, restoration.record
    files, renamed = record["files"], record["renamed"]
    position = {rel: n for n, rel in enumerate(data.files[i] for i in data.indices("train"))}
    if set(files) - set(skip) != set(position) - set(skip):
        raise InputError(f"{release.path}: its train images are not those the restoration data was sealed with")
    order = np.array([position.get(rel, 0) for rel in files], dtype=np.int64)  # a skipped image's row is not used
    digests = record.get("pixels_sha256") or [None] * len(files)
    dest.mkdir(parents=True, exist_ok=True)
    for path in walk_files(release.path):
        rel = path.relative_to(release.path).as_posix()
        if rel not in position and rel not in skip and rel not in (MANIFEST, RESTORATION, LABELS_COPY, SIGNATURE, PUBLIC_KEY):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / rel)
    left_out = []
    for rows, originals in restore_rows(_Rows(data.image_store("train"), order), restoration):
        for rel, pixels, digest in zip(files[rows], originals, digests[rows]):
            if rel in skip:
                continue
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


class _Rows:
    """The release's train images in the order the payload lists them."""

    def __init__(self, store: ScratchArray, order: np.ndarray):
        self.store, self.order = store, order

    def __getitem__(self, rows: slice) -> np.ndarray:
        return self.store[self.order[rows]]


def read_folder_release(path: str | Path) -> Release:
    folder = Path(path)
    manifest = json.loads((folder / MANIFEST).read_text())
    labels = folder / manifest["labels_file"] if manifest.get("labels_file") else None
    if manifest.get("format") == "dicom":
        from .dicom import load_dicom_folder

        data = load_dicom_folder(folder, labels)
    else:
        data = load_folder(folder, labels)
    data.name = manifest.get("dataset_name", data.name)  # the owner's dataset, not the output folder's name
    return Release(path=folder, manifest=manifest, data=data)
