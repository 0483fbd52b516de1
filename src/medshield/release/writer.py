"""Write a release: one skeleton for every format (:mod:`.format`).

A release folder holds the protected dataset, the public ``manifest.json`` and the sealed
restoration data, and nothing that undoes the protection without the key: the perturbation is
only in ``restoration.sealed`` (:mod:`.restoration`), the key goes to a key file outside the
folder. The manifest lists every file's SHA-256 and is signed by the owner (:mod:`.signing`).

:func:`write_release` stages the release under a hidden temporary name, has the dataset's format
write it there, checks the bounds (L-inf, L0) on the bytes written, seals what undoes them,
signs the manifest and renames the folder into place only then: an interrupted or failed run
never leaves a half-written release, and the input is never written to.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from .._runtime import sha256_file
from ..data.walk import walk_files
from ..errors import InputError
from .format import MANIFEST, Release, Request, format_for
from .restoration import RESTORATION, Sealed, new_sealed, write_restoration
from .sealing import check_key_path, default_key_path, write_key_file
from .signing import OwnerKey, owner_key, sign_release


def write_release(
    out_dir: str | Path,
    source,
    released,
    manifest: dict,
    *,
    max_linf: int,
    max_l0: float,
    overwrite: bool = False,
    key_out: Path | None = None,
    private: dict | None = None,
    measure_utility=None,
    owner: OwnerKey | None = None,
    labels_csv: str | Path | None = None,
    jpeg_as_png: bool = False,
) -> Release:
    """Write the release of ``source`` with the protected train images ``released`` (in its order,
    an array or a :class:`~medshield.data.scratch.ScratchArray`), verify its bounds on the bytes
    written, seal what restores the originals (its key to ``key_out``, default ``DIR.key``, with the
    owner's ``private`` record), sign it with ``owner`` (default: a fresh key kept in the key
    file), then move it into place. ``measure_utility(original, released)``, when given, adds its
    result to the manifest. ``labels_csv`` and ``jpeg_as_png`` are for image folders."""
    kind = format_for(source)
    request = Request(max_linf=max_linf, max_l0=max_l0, labels_csv=labels_csv, jpeg_as_png=jpeg_as_png)
    out = check_output_dir(out_dir, kind.inputs(source, request), overwrite)
    check_key_path(key_out or default_key_path(out), out, overwrite)
    kind.check(source, released, request)
    tmp = staging_folder(out)
    try:
        written = kind.write(tmp, source, released, manifest, request)
        measured = written.measured
        if (measured["linf"] > max_linf or kind.over_l0(measured, max_l0)) and not written.lossy:
            raise RuntimeError(f"release violates its bounds (L-inf <= {max_linf}, L0 <= {max_l0}): {measured}")
        manifest = {
            **manifest,
            **written.header,
            "measured": {**measured, "limit_linf": max_linf, "limit_l0": max_l0, **written.measured_notes},
            "utility": measure_utility(written.original, written.released) if measure_utility else None,
            **written.trailer,
        }
        manifest = seal_sign_publish(tmp, out, manifest, written.payload, key_out=key_out, private=private or {},
                                     owner=owner)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return kind.opened(out, source, manifest)


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
