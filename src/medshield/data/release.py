"""A release folder: the protected ``.npz``, the public ``manifest.json`` and the sealed restoration data.

The folder is a valid MedMNIST root (``medmnist.BloodMNIST(split="train", root=DIR)`` reads the
protected images) and holds nothing that undoes the protection without the key: the perturbation
is only in ``restoration.sealed`` (:mod:`.restoration`), the key goes to a key file outside the
folder. The manifest lists every file's SHA-256 and is signed by the owner (:mod:`.signing`), for
this writer and the folder one alike (:func:`seal_sign_publish`). It is assembled under a hidden temporary name and renamed into place only when complete
and when the bytes on disk have passed the bound check, so an interrupted or failed run never
leaves a half-written release, and the input is never written to.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._runtime import sha256_file
from ..bounds import pixel_change
from ..errors import InputError
from .medmnist import MedMNISTData, load
from .restoration import RESTORATION, Restoration, Sealed, new_sealed, pixel_digest, restore_rows, write_restoration
from .sealing import check_key_path, default_key_path, write_key_file
from .signing import OwnerKey, owner_key, sign_release
from .walk import walk_files

MANIFEST = "manifest.json"


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
    check_writable(out, f"--out {out_dir}")
    return out


def check_writable(path: Path, what: str) -> None:
    """Before hours of work: the nearest existing folder above ``path`` must take a new file."""
    parent = next(p for p in path.parents if p.exists())
    if not parent.is_dir():
        raise InputError(f"{what}: {parent} is a file, not a folder; choose another location")
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise InputError(f"{what}: cannot write in {parent} ({exc.strerror}); choose a writable location") from None


def staging_folder(out: Path) -> Path:
    """A new, empty folder beside ``out`` to assemble it in, named to be hidden; the leftovers of
    runs killed while writing to ``out`` (nothing cleans up after SIGKILL) are removed first."""
    for stale in out.parent.glob(f".{out.name}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    tmp.mkdir()
    return tmp


def move_into_place(tmp: Path, out: Path) -> None:
    """Replace ``out`` by the finished ``tmp`` folder with renames only (no half-written state)."""
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old)
    else:
        tmp.rename(out)


def seal_sign_publish(tmp: Path, out: Path, manifest: dict, payload: tuple, *, key_out: Path | None, private: dict,
                      owner: OwnerKey | None) -> dict:
    """Finish a release assembled in ``tmp``: list every file's SHA-256, seal ``payload`` (perturbation,
    record, originals) bound to that manifest, sign the manifest, write the key file and move the
    release into place. Returns the manifest as written."""
    owner = owner or owner_key(None)
    sealed = new_sealed()
    files = {p.relative_to(tmp).as_posix(): sha256_file(p) for p in walk_files(tmp)}
    manifest = {**manifest, "release_id": sealed.release_id, "owner_fingerprint": owner.fingerprint, "files": files}
    write_restoration(tmp, sealed, manifest, *payload)
    manifest["files"] = {**files, RESTORATION: sha256_file(tmp / RESTORATION)}
    body = (json.dumps(manifest, indent=2) + "\n").encode()
    (tmp / MANIFEST).write_bytes(body)
    sign_release(tmp, body, owner)
    publish(tmp, out, sealed, key_out, private, None if owner.path else owner.raw())
    return manifest


def publish(tmp: Path, out: Path, sealed: Sealed, key_out: Path | None, private: dict, signing_key: bytes | None) -> Path:
    """Write the key file, then move the finished release into place (the key is removed if that fails)."""
    key_path = write_key_file(key_out or default_key_path(out), sealed.key, sealed.release_id, private, signing_key)
    try:
        move_into_place(tmp, out)
    except BaseException:
        key_path.unlink(missing_ok=True)
        raise
    return key_path


def write_release(
    out_dir: str | Path,
    source: MedMNISTData,
    protected_train: np.ndarray,
    manifest: dict,
    *,
    max_linf: int,
    max_l0: float,
    overwrite: bool = False,
    key_out: Path | None = None,
    private: dict | None = None,
    measure_utility=None,
    owner: OwnerKey | None = None,
) -> Release:
    """Write the release, verify its bounds on the bytes written, seal what restores the originals
    (its key to ``key_out``, default ``DIR.key``, with the owner's ``private`` record), sign it with
    ``owner`` (default: a fresh key kept in the key file), then move it into place. ``measure_utility(original, released)``, when given, adds its result to the manifest."""
    out = check_output_dir(out_dir, [source.path], overwrite)
    check_key_path(key_out or default_key_path(out), out, overwrite)
    original = source.images("train")
    if protected_train.shape != original.shape or protected_train.dtype != np.uint8:
        raise ValueError("protected images must have the original train images' shape and uint8 dtype")
    tmp = staging_folder(out)
    try:
        dataset_file = tmp / f"{source.name}.npz"
        np.savez_compressed(dataset_file, **{**source.arrays, "train_images": protected_train})
        with np.load(dataset_file, allow_pickle=False) as written:
            released = written["train_images"]
        measured = pixel_change(original, released)
        if measured["linf"] > max_linf or measured["changed_positions_max"] > max_l0 * measured["positions_per_image"]:
            raise RuntimeError(f"release violates its bounds (L-inf <= {max_linf}, L0 <= {max_l0}): {measured}")
        delta = (released.astype(np.int16) - original.astype(np.int16)).astype(np.int8)
        record = {"format": "npz", "dataset_file": dataset_file.name, "train_sha256": pixel_digest(original)}
        manifest = {
            **manifest,
            "measured": {**measured, "limit_linf": max_linf, "limit_l0": max_l0},
            "utility": measure_utility(original, released) if measure_utility else None,
        }
        manifest = seal_sign_publish(tmp, out, manifest, (delta, record), key_out=key_out, private=private or {}, owner=owner)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Release(path=out, manifest=manifest, data=load(str(out / f"{source.name}.npz")))


def is_release(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def read_npz_release(path: str | Path) -> Release:
    """Open an ``.npz`` release folder written by :func:`write_release` (``data.opening.read_release``
    opens either kind)."""
    folder = Path(path)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        dataset_file = folder / manifest["dataset_file"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{folder} is not a medshield release: cannot read {MANIFEST} ({exc.__class__.__name__})") from None
    return Release(path=folder, manifest=manifest, data=load(str(dataset_file)))


def restored_npz(release: Release, restoration: Restoration) -> MedMNISTData:
    """The original dataset of an ``.npz`` release, in memory: its arrays byte-identical to the input's."""
    released = release.data.images("train")
    original = np.empty_like(released)
    for rows, block in restore_rows(released, restoration):
        original[rows] = block
    expected = restoration.record.get("train_sha256")
    if expected is not None and pixel_digest(original) != expected:
        raise InputError(f"{release.path / release.manifest['dataset_file']}: the restored train images do not match the "
                         "originals' SHA-256 sealed with the release (the release was changed since it was written)")
    return release.data.with_train(original)
