"""A release folder: the protected ``.npz``, the perturbation and ``manifest.json``.

The folder is a valid MedMNIST root (``medmnist.BloodMNIST(split="train", root=DIR)`` reads the
protected images). It is assembled under a hidden temporary name and renamed into place only
when complete and when the bytes on disk have passed the bound check, so an interrupted or
failed run never leaves a half-written release, and the input is never written to.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._runtime import sha256_file
from ..bounds import pixel_change
from ..errors import InputError
from .medmnist import MedMNISTData, load

MANIFEST = "manifest.json"
PERTURBATION = "perturbation.npz"


@dataclass
class Release:
    path: Path
    manifest: dict
    data: MedMNISTData


def check_output_dir(out_dir: str | Path, inputs: list[Path], overwrite: bool) -> Path:
    """Refuse an output that exists (without ``overwrite``) or that contains an input file."""
    out = Path(out_dir).expanduser().resolve()
    for source in inputs:
        source = source.resolve()
        if out == source or out in source.parents:
            raise InputError(f"--out {out_dir} contains the input {source}; choose a new folder so the input stays untouched")
        if source in out.parents:
            raise InputError(f"--out {out_dir} is inside the input folder {source}; choose a folder outside it")
    if out.exists() and not overwrite:
        raise InputError(f"--out {out_dir} already exists; choose a new folder or pass --overwrite")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out_dir} exists and is not a folder")
    return out


def move_into_place(tmp: Path, out: Path) -> None:
    """Replace ``out`` by the finished ``tmp`` folder with renames only (no half-written state)."""
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old)
    else:
        tmp.rename(out)


def write_release(
    out_dir: str | Path,
    source: MedMNISTData,
    protected_train: np.ndarray,
    manifest: dict,
    *,
    max_linf: int,
    max_l0: float,
    overwrite: bool = False,
) -> Release:
    """Write the release, verify its bounds on the bytes written, then move it into place."""
    out = check_output_dir(out_dir, [source.path], overwrite)
    original = source.images("train")
    if protected_train.shape != original.shape or protected_train.dtype != np.uint8:
        raise ValueError("protected images must have the original train images' shape and uint8 dtype")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        dataset_file = tmp / f"{source.name}.npz"
        np.savez_compressed(dataset_file, **{**source.arrays, "train_images": protected_train})
        with np.load(dataset_file, allow_pickle=False) as written:
            released = written["train_images"]
        measured = pixel_change(original, released)
        if measured["linf"] > max_linf or measured["changed_positions_max"] > max_l0 * measured["positions_per_image"]:
            raise RuntimeError(f"release violates its bounds (L-inf <= {max_linf}, L0 <= {max_l0}): {measured}")
        delta = (released.astype(np.int16) - original.astype(np.int16)).astype(np.int8)
        np.savez_compressed(tmp / PERTURBATION, train_perturbation=delta)
        manifest = {
            **manifest,
            "measured": {**measured, "limit_linf": max_linf, "limit_l0": max_l0},
            "files": {p.name: sha256_file(p) for p in sorted(tmp.iterdir())},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        move_into_place(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Release(path=out, manifest=manifest, data=load(str(out / f"{source.name}.npz")))


def is_release(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def read_release(path: str | Path) -> Release:
    """Open a release folder written by :func:`write_release`."""
    folder = Path(path)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        if manifest.get("format") in ("folder", "dicom"):
            from .folder_release import read_folder_release

            return read_folder_release(folder)
        dataset_file = folder / manifest["dataset_file"]
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{folder} is not a medshield release: cannot read {MANIFEST} ({exc.__class__.__name__})") from None
    return Release(path=folder, manifest=manifest, data=load(str(dataset_file)))
