"""What a folder of images holds, as its owner laid it out: labels and splits from the folder
names, and the odd files real archives carry.

Two layouts are read without a labels file: ``root/<class>/...`` (every image is a training
image) and one ImageFolder per split, ``root/<split>/<class>/...``, the torchvision and Kaggle
way, with split folders named train/training, val/valid/validation or test/testing in any case.
Hidden and system files (``.DS_Store``, ``Thumbs.db``, ``desktop.ini``, AppleDouble ``._*``
and anything under a hidden folder or ``__MACOSX``) are skipped and counted: they are never read
and never copied into a release, since thumbnail caches hold small copies of the originals.
Other files that are not images are listed, so nothing is silently ignored.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from .labels import check_inside
from .walk import walk_files

SPLIT_FOLDERS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                 "test": "test", "testing": "test"}
SYSTEM_FILES = {".ds_store", "thumbs.db", "ehthumbs.db", "desktop.ini", "icon\r"}
SYSTEM_FOLDERS = {"__macosx", "$recycle.bin", "system volume information"}


@dataclass
class Scan:
    """The images (relative paths) with their labels and splits, and what else the folder holds."""

    files: list[str]
    labels: list[str]
    splits: list[str]
    layout: dict
    skipped: list[str] = field(default_factory=list)
    others: list[str] = field(default_factory=list)


def is_hidden_or_system(rel: Path) -> bool:
    """A dot-file or AppleDouble file, a known system file, or anything inside a hidden/system folder."""
    return any(part.startswith(".") or part.lower() in SYSTEM_FOLDERS for part in rel.parts) or rel.name.lower() in SYSTEM_FILES


def walk(root: Path, suffixes, reserved=()) -> Scan:
    """Every file under ``root``: images (by suffix), skipped hidden/system files, other files."""
    scan = Scan([], [], [], {})
    for path in walk_files(root):  # symlinked folders followed inside the root, refused when they leave it or loop
        rel = path.relative_to(root)
        if rel.as_posix() in reserved:
            continue
        if is_hidden_or_system(rel):
            scan.skipped.append(rel.as_posix())
        elif path.suffix.lower() in suffixes:
            check_inside(root, rel.as_posix(), str(path))  # a symlink out of the folder is refused like a CSV path
            scan.files.append(rel.as_posix())
        else:
            scan.others.append(rel.as_posix())
    return scan


def scan_folder(root: Path, suffixes, reserved=()) -> Scan:
    """Labels (and splits) from the folder names: ``root/<split>/<class>/...`` or ``root/<class>/...``."""
    scan = walk(root, suffixes, reserved)
    tops = sorted({Path(rel).parts[0] for rel in scan.files if len(Path(rel).parts) > 1})
    for rel in scan.files:
        if len(Path(rel).parts) < 2:
            raise InputError(f"{root / rel}: images must sit in one sub-folder per label (root/<label>/... or "
                             "root/<split>/<label>/...), or give --labels FILE.csv")
    split_named = [top for top in tops if top.lower() in SPLIT_FOLDERS]
    if not split_named:
        scan.labels = [Path(rel).parts[0] for rel in scan.files]
        scan.splits = ["train"] * len(scan.files)
        scan.layout = {"kind": "class-folders"}
        return scan
    _check_split_folders(root, tops, split_named, scan.files)
    scan.labels = [Path(rel).parts[1] for rel in scan.files]
    scan.splits = [SPLIT_FOLDERS[Path(rel).parts[0].lower()] for rel in scan.files]
    scan.layout = {"kind": "split-folders", "splits": {top: SPLIT_FOLDERS[top.lower()] for top in split_named}}
    _check_same_classes(root, scan)
    return scan


def _check_split_folders(root: Path, tops: list[str], split_named: list[str], files: list[str]) -> None:
    """Split folders only at the top, one per split, with a training split and class folders inside."""
    others = [top for top in tops if top not in split_named]
    if others:
        raise InputError(f"{root}: {', '.join(split_named)} look like split folders but {', '.join(others)} do not; "
                         "put every image under train/, val/ or test/ (root/<split>/<class>/...), or give --labels FILE.csv")
    by_split: dict[str, list[str]] = {}
    for top in split_named:
        by_split.setdefault(SPLIT_FOLDERS[top.lower()], []).append(top)
    for split, names in by_split.items():
        if len(names) > 1:
            raise InputError(f"{root}: {' and '.join(names)} are both the {split} split; merge them into one folder")
    if "train" not in by_split:
        raise InputError(f"{root}: split folders {', '.join(split_named)} but no train/ or training/ folder; there is "
                         "nothing to protect")
    for rel in files:
        if len(Path(rel).parts) < 3:
            raise InputError(f"{root / rel}: images in a split folder must sit in one sub-folder per class "
                             "(root/<split>/<class>/...)")


def _check_same_classes(root: Path, scan: Scan) -> None:
    """Every split holds the same class folders: otherwise the splits describe different tasks."""
    folders = {Path(rel).parts[0]: set() for rel in scan.files}
    for rel in scan.files:
        folders[Path(rel).parts[0]].add(Path(rel).parts[1])
    train = next(top for top in folders if SPLIT_FOLDERS[top.lower()] == "train")
    for top, classes in folders.items():
        missing, extra = sorted(folders[train] - classes), sorted(classes - folders[train])
        if missing or extra:
            said = "; ".join(([f"{top}/ lacks {', '.join(missing)}"] if missing else [])
                             + ([f"{top}/ has {', '.join(extra)} that {train}/ lacks"] if extra else []))
            raise InputError(f"{root}: the split folders hold different classes ({said}); every split needs the "
                             "same class folders (class names are case-sensitive)")
