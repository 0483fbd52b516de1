"""Re-check a release on its own, as its owner before publishing it or a recipient before trusting it.

Five checks, each a row with ``ok`` True, False, or None (could not be checked without the key):

- signature: ``manifest.sig`` is the Ed25519 signature of the manifest by ``owner.pub``, the key
  the manifest names, and, when pinned (``--public-key`` or ``--fingerprint``), the owner's: no
  secret needed (:mod:`.signing`);
- files: every file the manifest lists is in the folder with the SHA-256 it recorded, and no other;
- sealed: ``restoration.sealed`` is there, sealed, and belongs to this release;
- private: nothing in the folder would help undo the protection or name the owner: no key file,
  no private record in the manifest, no absolute path or host name in the text files; with the
  key also: neither the key nor the input's path in any file, no array equal to the originals or
  the perturbation;
- bounds: the released pixels differ from the originals by at most the radius and the L0 bound the
  manifest states, measured on the bytes. With ``--original`` this compares against an independent
  copy. With the key the originals are the release minus the sealed perturbation, so it checks
  the perturbation sealed at writing, and the restored originals must match the hashes sealed
  with them; that the release still holds the bytes written is the files check, which the
  signature makes binding.

A release that cannot be read (a changed ``.npz``, a lost image) fails the check that names the
file (exit 1), not the command; only unusable arguments end it (exit 2).
"""
from __future__ import annotations

import base64
import re
import socket
import zipfile
from pathlib import Path

import numpy as np

from ..bounds import files_change, pixel_change
from ..data.bounded import read_npy, read_npz
from ..data.duplicates import duplicate_report
from ..data.medmnist import load
from ..data.opening import load_directory
from ..data.walk import walk_files
from ..errors import InputError
from .format import format_of
from .reading import check_same_layout, original_of, read_release, working_of
from .restoration import RESTORATION
from .sealing import KEY_FORMAT, MAGIC, default_key_path, read_key_file
from .signing import PROBLEMS, file_problems, pinned_fingerprint, read_manifest, signature_problem

PRIVATE_FIELDS = ("input", "command", "machine", "private")  # what the key file keeps and a manifest must not
TEXT_SUFFIXES = (".json", ".csv", ".txt", ".md", ".yaml", ".yml")
ABSOLUTE_PATH = re.compile(r'(?:^|["\s,=(])(/(?:home|Users|root|mnt|media|srv|data|work|tmp|var|opt)/[^"\s,]*|[A-Za-z]:\\[^"\s,]*)')


def verify_release(path: str | Path, key: str | Path | None = None, original: str | None = None,
                   labels: str | None = None, public_key: str | Path | None = None,
                   fingerprint: str | None = None) -> list[dict]:
    """The checks' rows (``check``, ``ok``, ``detail``); the key beside the release is used when there."""
    folder = Path(path)
    body, manifest = read_manifest(folder)
    pinned = pinned_fingerprint(public_key, fingerprint)
    try:
        files = walk_files(folder)
    except InputError:
        files = []  # a link out of the folder: the files check names it
    if key is None and original is None and default_key_path(folder).is_file():
        key = default_key_path(folder)
    secrets = []
    if key is not None:
        content = read_key_file(key)
        input_path = content.get("private", {}).get("input", {}).get("path")
        secrets = [content["key"], base64.b64encode(content["key"])] + ([input_path.encode()] if input_path else [])
    rows = [_signature(folder, body, manifest, pinned), _files(folder, manifest), _sealed(folder, manifest),
            _private(folder, manifest, files, secrets)]
    try:
        release = read_release(folder)
    except InputError as exc:  # the release (not the arguments) is unreadable: the checks above name the file
        return rows + [row("bounds", False, f"not measurable: {exc}")]
    kind = format_of(manifest)
    if getattr(release.data, "pairs", None) is not None and kind.reports_duplicates:
        rows.append(_duplicates(release.data))
    if key is None and original is None:
        rows.append(row("bounds", None, "not checked: pass --key (the release's key) or --original (its input)"))
        return rows
    try:
        clean = original_of(release, key) if original is None else None
    except InputError as exc:  # the release does not restore
        rows.append(row("bounds", False, f"not measurable: {exc}"))
        return rows
    if clean is None:
        clean = _given(original, labels, release)
    if kind.per_file_bounds:  # files of their own sizes: compared file by file
        rows.append(_bounds(release, files_change(_file_pairs(release, clean))))
        return rows
    clean = clean.images("train")
    rows.append(_bounds(release, pixel_change(clean, release.data.images("train"))))
    if kind.public_arrays:  # arrays anyone can read: none may be the originals or the perturbation
        rows.append(_arrays(files, clean, release.data.images("train")))
    return rows


def row(check: str, ok: bool | None, detail: str) -> dict:
    return {"check": check, "ok": ok, "detail": detail}


def _given(original: str, labels: str | None, release):
    """The dataset ``--original``, unchecked beyond its train images' shape: how far they are is the check."""
    data = load_directory(original, labels, **working_of(release)) if Path(original).is_dir() else load(original)
    check_same_layout(release, data, original)
    return data


def _signature(folder: Path, body: bytes, manifest: dict, pinned: str | None) -> dict:
    problem, found = signature_problem(folder, body, manifest, pinned)
    if problem:
        return row("signature", False, problem)
    if pinned:
        return row("signature", True, f"manifest signed (Ed25519) by the owner you pinned, {found}")
    return row("signature", True, f"manifest signed (Ed25519) by {found}; pin the owner with --fingerprint or "
                                  "--public-key (given by the owner) to rule out a re-signed copy")


def _files(folder: Path, manifest: dict) -> dict:
    listed = manifest.get("files") or {}
    if not listed:
        return row("files", False, "the manifest lists no files")
    problems = file_problems(folder, manifest)
    if problems:
        shown = "; ".join(f"{rel}: {PROBLEMS[what]}" for rel, what in problems[:3])
        return row("files", False, shown + (f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""))
    return row("files", True, f"{len(listed)} listed files present, SHA-256 as recorded, none unlisted")


def _sealed(folder: Path, manifest: dict) -> dict:
    sealed = folder / RESTORATION
    if not sealed.is_file():
        return row("sealed", False, f"no {RESTORATION}: this release cannot be restored, or predates keys")
    with open(sealed, "rb") as handle:
        header = handle.read(len(MAGIC) + 16)
    if not header.startswith(MAGIC):
        return row("sealed", False, f"{RESTORATION} is not sealed: it may reveal the perturbation; do not publish it")
    if header[len(MAGIC):].hex() != manifest.get("release_id"):
        return row("sealed", False, f"{RESTORATION} belongs to another release than the manifest's")
    return row("sealed", True, f"{RESTORATION} sealed (AES-256-GCM) for release {manifest.get('release_id')}")


def _private(folder: Path, manifest: dict, files: list[Path], secrets: list[bytes]) -> dict:
    found = [f"manifest field {name!r}" for name in PRIVATE_FIELDS if name in manifest]
    host = socket.gethostname()
    for path in files:
        rel = path.relative_to(folder).as_posix()
        if path.suffix == ".key":
            found.append(f"key file {rel}")
            continue
        if path.suffix in TEXT_SUFFIXES:
            text = path.read_text(errors="replace")
            if KEY_FORMAT in text:
                found.append(f"a key in {rel}")
            if match := ABSOLUTE_PATH.search(text):
                found.append(f"absolute path {match.group(1)[:60]!r} in {rel}")
            if host and re.search(rf"\b{re.escape(host)}\b", text):
                found.append(f"this machine's name in {rel}")
        if secrets and path.name != RESTORATION:
            content = path.read_bytes()
            found += [f"the key or the input's path in {rel}" for secret in secrets if secret in content][:1]
    if found:
        return row("private", False, "; ".join(found[:4]) + (f" (+{len(found) - 4} more)" if len(found) > 4 else ""))
    scope = "key, input path, " if secrets else ""
    return row("private", True, f"no {scope}key file, private field, absolute path or host name in {len(files)} files")


def _file_pairs(release, clean):
    """(original, released) pixels of each train file at its own size, matched by name."""
    renamed = release.manifest.get("renamed") or {}
    released = {rel: rel for rel in (release.data.files[i] for i in release.data.indices("train"))}
    for i in clean.indices("train"):
        rel = clean.files[i]
        yield clean.read_file(clean.path / rel), release.data.read_file(release.path / released[renamed.get(rel, rel)])


def _duplicates(data) -> dict:
    """Duplicates in the release as published; a val/test image that sits in train is a warning."""
    report = duplicate_report(data.files, list(data.split), data.pairs)
    within = report["pairs"].get("train") or {}
    detail = (f"{within.get('byte-identical', 0)} byte-identical and {within.get('near-identical', 0)} near-identical "
              f"pairs within train; {report['held_out_images_in_train']} val/test images also in train")
    if report["held_out_images_in_train"]:
        example = next(e["examples"][0] for name, e in report["pairs"].items() if name.startswith("train/"))
        return {**row("duplicates", None, f"{detail} (e.g. {example[0]} and {example[1]}): accuracy on that split "
                                          "overstates what a model learned"), "warning": True}
    return row("duplicates", True, detail)


def _bounds(release, now: dict) -> dict:
    measured = release.manifest.get("measured") or {}
    limit_linf, limit_l0 = measured.get("limit_linf"), measured.get("limit_l0", 1.0)
    if limit_linf is None:
        return row("bounds", False, "the manifest states no radius (measured.limit_linf)")
    within = now["linf"] <= limit_linf and now["l0_max"] <= limit_l0 + 1e-12  # per image, at its own size
    detail = (f"L-inf {now['linf']} (limit {limit_linf}), at most {100 * now['l0_max']:.1f} % of positions changed "
              f"(limit {100 * limit_l0:g} %), on the released bytes")
    if not within and measured.get("lossy_jpeg_output"):
        return row("bounds", None, detail + "; JPEG re-encoding moves pixels beyond the bound (pass --jpeg-as-png)")
    return row("bounds", within, detail)


def _arrays(files: list[Path], original, released) -> dict:
    """No array a stranger can read equals the original train images or the perturbation."""
    original, released = np.asarray(original), np.asarray(released)
    perturbation = released.astype(np.int32) - original
    for path in (p for p in files if p.suffix in (".npz", ".npy")):
        try:
            if path.suffix == ".npy":
                arrays = {"": read_npy(path)}
            else:
                arrays = read_npz(path)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile):  # InputError too: a ValueError
            continue  # not an array a stranger could read either
        for name, array in arrays.items():
            if array.shape == original.shape and (np.array_equal(array, original) or np.array_equal(array, perturbation)):
                return row("arrays", False, f"{path.name}:{name} holds the original train images or the perturbation")
    return row("arrays", True, "no readable array equals the original train images or the perturbation")

