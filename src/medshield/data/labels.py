"""Where a folder's images get their labels and splits from a labels CSV (folder names: :mod:`.folder_scan`).

Shared by image folders and DICOM folders. Every path a CSV lists is checked before any work: it
must name a file inside the folder (relative, no '..', no symlink out of it), once; the CSV must
be UTF-8 with every field present; and the splits must describe one task.
"""
from __future__ import annotations

import csv
from pathlib import Path

from ..errors import InputError

SPLITS = ("train", "val", "test")


def read_labels_csv(labels_csv: Path) -> list[dict]:
    """The rows of a UTF-8 labels file (a BOM is allowed), every field present, or one clear error."""
    try:
        with open(labels_csv, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise InputError(f"{labels_csv}: cannot read the labels file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{labels_csv}: not UTF-8 text (byte {exc.start}); save the labels file as UTF-8") from None
    except csv.Error as exc:
        raise InputError(f"{labels_csv}: not a readable CSV ({exc})") from None
    for line, row in enumerate(rows, start=2):
        if None in row or None in row.values():
            raise InputError(f"{labels_csv} line {line}: {'more' if None in row else 'fewer'} fields than the header has")
    return rows


def check_inside(root: Path, rel: str, where: str) -> None:
    """A listed path must name a file inside the folder: relative, no '..', no symlink out of it.

    Otherwise a labels file could make protection read, and a release write, outside its folders."""
    if "\x00" in rel:
        raise InputError(f"{where}: the path {rel!r} contains a NUL byte")
    if Path(rel).is_absolute() or ".." in Path(rel).parts:
        raise InputError(f"{where}: {rel} must be a path relative to {root}, without '..'")
    try:
        resolved = (root / rel).resolve(strict=False)
        inside = resolved.is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a symlink loop
        raise InputError(f"{where}: {rel} cannot be resolved (a symlink loop?)") from None
    if not inside:
        raise InputError(f"{where}: {rel} resolves to {resolved}, outside {root}; copy the file into the folder")


def check_one_task(where, names: list[str], splits: list[str]) -> None:
    """Val and test labels must occur in train: otherwise the splits describe different tasks."""
    train = {n for n, s in zip(names, splits) if s == "train"}
    for split in ("val", "test"):
        unseen = sorted({n for n, s in zip(names, splits) if s == split} - train)
        if unseen:
            raise InputError(f"{where}: {split} images have label(s) {unseen} that no train image has; the splits must "
                             "describe one task (check the labels file)")


def paths_from_csv(root: Path, labels_csv: Path, suffixes: tuple[str, ...], kind: str,
                   rows: list[dict] | None = None) -> tuple[list[str], list[str], list[str]]:
    """(paths, labels, splits) a labels file lists, each path checked to name a file inside ``root``."""
    rows = read_labels_csv(labels_csv) if rows is None else rows
    if not rows or not {"path", "label"} <= set(rows[0]):
        raise InputError(f"{labels_csv}: needs a header with columns path,label (and optionally split)")
    files, labels, splits, seen = [], [], [], set()
    for line, row in enumerate(rows, start=2):
        rel = Path(row["path"].strip()).as_posix()
        check_inside(root, rel, f"{labels_csv} line {line}")
        if rel in seen:
            raise InputError(f"{labels_csv} line {line}: {rel} is listed twice")
        seen.add(rel)
        if not (root / rel).is_file():
            raise InputError(f"{labels_csv} line {line}: {root / rel} does not exist")
        if suffixes and Path(rel).suffix.lower() not in suffixes:
            raise InputError(f"{labels_csv} line {line}: {rel} is not {kind}")
        split = (row.get("split") or "train").strip().lower()
        if split not in SPLITS:
            raise InputError(f"{labels_csv} line {line}: split {split!r} is not one of {', '.join(SPLITS)}")
        if not (row["label"] or "").strip():
            raise InputError(f"{labels_csv} line {line}: {rel} has no label")
        files.append(rel)
        labels.append(row["label"].strip())
        splits.append(split)
    return files, labels, splits


def class_order(names: list[str]) -> list[str]:
    """Label names in class-index order (numeric labels in numeric order)."""
    unique = sorted(set(names))
    if all(n.lstrip("-").isdigit() for n in unique):  # numeric labels keep their numeric order
        unique = sorted(unique, key=int)
    return unique
