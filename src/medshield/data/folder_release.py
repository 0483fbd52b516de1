"""Write a protected copy of an image or DICOM folder: same tree, names, formats and bit depths.

Training images are re-encoded with their perturbation (PNG, TIFF, BMP losslessly); every other
file is copied byte for byte. JPEG inputs are either re-encoded as JPEG at quality 100, which
still loses part of the perturbation (a warning says so and the manifest records the measured
bounds), or, with ``jpeg_as_png``, written as PNG beside the same name. ``manifest.json`` and
``perturbation.npz`` go to the root of the copy. As for MedMNIST releases, the copy is built
under a temporary name, the bounds are checked on the written files, and only then renamed.

Everything is done image by image or a chunk at a time: the protected images arrive as an
on-disk array, the written files are read back into another, compared with the originals' cache
and their difference streamed into ``perturbation.npz``, so writing needs memory for a chunk.
"""
from __future__ import annotations

import csv
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from .._runtime import sha256_file
from ..bounds import pixel_change
from ..errors import InputError
from .folder import load_folder
from .release import MANIFEST, PERTURBATION, Release, check_output_dir, move_into_place
from .scratch import ScratchArray, save_npz

log = logging.getLogger(__name__)
LABELS_COPY = "medshield-labels.csv"
CHUNK = 256  # images per step when comparing the written files with the originals


def write_folder_release(
    out_dir: str | Path, source, protected_train, manifest: dict, *,
    max_linf: int, max_l0: float, overwrite: bool = False, labels_csv: str | Path | None = None, jpeg_as_png: bool = False,
) -> Release:
    """``protected_train``: the train images in ``source``'s order, an array or a :class:`ScratchArray`
    (read one image at a time)."""
    out = check_output_dir(out_dir, [source.path] + ([Path(labels_csv)] if labels_csv else []), overwrite)
    for reserved in (MANIFEST, PERTURBATION, LABELS_COPY):
        if (source.path / reserved).exists():
            raise InputError(f"{source.path / reserved} exists; medshield writes that name at the release root, rename it first")
    train = source.indices("train")
    targets = {source.files[i]: n for n, i in enumerate(train)}
    jpeg_inputs = [rel for rel in targets if source.is_lossy(rel, jpeg_as_png)]
    if jpeg_inputs:
        log.warning("%d JPEG training images are re-encoded as JPEG, which weakens the perturbation; "
                    "pass --jpeg-as-png to write them as PNG", len(jpeg_inputs))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        names = {}
        for path in sorted(source.path.rglob("*")):
            rel = path.relative_to(source.path).as_posix()
            if path.is_dir():
                (tmp / rel).mkdir(parents=True, exist_ok=True)
            elif rel in targets:
                names[rel] = source.output_name(rel, jpeg_as_png)
                (tmp / names[rel]).parent.mkdir(parents=True, exist_ok=True)
                source.write_file(rel, protected_train[targets[rel]], tmp / names[rel], manifest)
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
        save_npz(tmp / PERTURBATION, train_perturbation=delta, files=np.array([names[source.files[i]] for i in train]))
        manifest = {
            **manifest, "format": source.format, "labels_file": labels_file, "jpeg_as_png": jpeg_as_png,
            "measured": {**measured, "limit_linf": max_linf, "limit_l0": max_l0, "lossy_jpeg_output": lossy},
            "files": {rel: sha256_file(tmp / rel) for rel in sorted(set(names.values()))},
            "renamed": {k: v for k, v in names.items() if k != v},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        move_into_place(tmp, out)
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
