"""Key files and sealed files: what undoes a release stays encrypted, its key stays with the owner.

A release folder is published, so what restores the originals (the perturbation and the little
else restoring needs) goes into it only sealed: AES-256-GCM from ``cryptography``, under a fresh
random key per release that is written to a key file outside the folder, readable by its owner
only. Payloads can be larger than memory, so they are sealed as a stream of 1 MiB chunks, each
its own AES-GCM message, in the STREAM construction that age and Tink use: the nonce is the chunk
counter plus a last-chunk flag, and the file header (format version and release id) followed by
the SHA-256 of the release's manifest (:func:`manifest_digest`) is the associated data of every
chunk. A flipped byte, a reordered, dropped or appended chunk, a truncation anywhere (also at a
chunk boundary), or a manifest changed after sealing then fails authentication, and nothing
decrypted is used before every chunk has passed.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import tempfile
import uuid
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import InputError

log = logging.getLogger(__name__)
MAGIC = b"MEDSHIELD-SEALED-2\n"
CHUNK = 1 << 20
TAG = 16
KEY_FORMAT = "medshield-key-1"


def new_release_id() -> str:
    return uuid.uuid4().hex


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def _nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _header(release_id: str) -> bytes:
    return MAGIC + bytes.fromhex(release_id)


def manifest_digest(manifest: dict) -> bytes:
    """What the sealed data is bound to: the manifest as written, less the sealed file's own hash
    (which is computed after sealing), in canonical JSON."""
    files = {k: v for k, v in (manifest.get("files") or {}).items() if k != "restoration.sealed"}
    canonical = json.dumps({**manifest, "files": files}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).digest()


def seal(source: BinaryIO, dest: BinaryIO, key: bytes, release_id: str, bound: bytes) -> None:
    """Encrypt ``source`` (read from its start) into ``dest``, bound to ``bound`` (a manifest digest)."""
    header = _header(release_id)
    aead = AESGCM(key)
    dest.write(header)
    header += bound
    source.seek(0)
    chunk, index = source.read(CHUNK), 0
    while True:
        following = source.read(CHUNK)
        dest.write(aead.encrypt(_nonce(index, not following), chunk, header))
        if not following:
            return
        chunk, index = following, index + 1


def unseal(path: Path, key: bytes, release_id: str, bound: bytes) -> BinaryIO:
    """Decrypt the sealed file ``path`` into an unnamed temporary file (positioned at 0), or one error."""
    damaged = InputError(f"{path}: cannot decrypt it with this key: the key is wrong, or this file or "
                         "manifest.json was modified or truncated")
    header = _header(release_id)
    aead = AESGCM(key)
    plain = tempfile.TemporaryFile(prefix="medshield-")
    try:
        with open(path, "rb") as sealed:
            found = sealed.read(len(header))
            if not found.startswith(MAGIC):
                raise InputError(f"{path}: not a medshield sealed file")
            if found != header:
                raise InputError(f"{path}: sealed for release {found[len(MAGIC):].hex() or '?'}, not for the key's release "
                                 f"{release_id}; use the key written with this release")
            header += bound
            chunk, index = sealed.read(CHUNK + TAG), 0
            while True:
                following = sealed.read(CHUNK + TAG)
                try:
                    plain.write(aead.decrypt(_nonce(index, not following), chunk, header))
                except InvalidTag:
                    raise damaged from None
                if not following:
                    break
                chunk, index = following, index + 1
    except OSError as exc:
        plain.close()
        raise InputError(f"{path}: cannot read it ({exc.strerror})") from None
    except InputError:
        plain.close()
        raise
    plain.seek(0)
    return plain


def default_key_path(release_dir: str | Path) -> Path:
    """``DIR.key`` beside the release folder ``DIR``."""
    out = Path(release_dir).expanduser().resolve()
    return out.parent / f"{out.name}.key"


def check_key_path(key_path: Path, release_dir: Path, overwrite: bool) -> None:
    """Refuse a key inside the release (it would be published) or over an existing file (without ``overwrite``)."""
    key_path, release_dir = key_path.expanduser().resolve(), release_dir.expanduser().resolve()
    if release_dir == key_path or release_dir in key_path.parents:
        raise InputError(f"--key-out {key_path} is inside the release folder {release_dir}, which is published; "
                         "keep the key outside it")
    if key_path.exists() and not overwrite:
        raise InputError(f"key file {key_path} already exists; choose another --key-out, or pass --overwrite "
                         "to replace the release and its key")


def write_key_file(path: Path, key: bytes, release_id: str, private: dict, signing_key: bytes | None = None) -> Path:
    """Write the key (and the owner's private record, and the release's own signing key when it has
    no reusable one) readable by the owner only, atomically.

    The file is created under a temporary name with mode 0600 and renamed into place."""
    path = path.expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {"format": KEY_FORMAT, "release_id": release_id, "key": base64.b64encode(key).decode(), "private": private}
    if signing_key is not None:
        content["signing_key"] = base64.b64encode(signing_key).decode()
    body = json.dumps(content, indent=2) + "\n"
    tmp = path.parent / f".{path.name}.partial-{os.getpid()}"
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(body)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def warn_if_shared(path: Path) -> None:
    """A secret file others can read is a leak waiting to happen: say so, with the fix."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning("%s is readable by others (mode %o); restrict it: chmod 600 %s", path, mode, path)


def read_key_file(path: str | Path) -> dict:
    """The key file as a dict with ``key`` (32 bytes), ``release_id`` and ``private``; or one error."""
    path = Path(path).expanduser()
    try:
        content = json.loads(path.read_text())
        warn_if_shared(path)
        if content.get("format") != KEY_FORMAT:
            raise ValueError("format")
        key = base64.b64decode(content["key"], validate=True)
        if len(key) != 32:
            raise ValueError("length")
        bytes.fromhex(content["release_id"])
    except FileNotFoundError:
        raise InputError(f"key file {path} does not exist") from None
    except OSError as exc:
        raise InputError(f"cannot read the key file {path} ({exc.strerror})") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise InputError(f"{path} is not a medshield key file (written by 'medshield protect' beside the release)") from None
    return {**content, "key": key}
