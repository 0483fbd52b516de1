"""Who wrote a release, and whether it is still what they wrote: an Ed25519 signature anyone can check.

``manifest.json`` lists the SHA-256 of every file in the release; ``manifest.sig`` is the owner's
Ed25519 signature (``cryptography``) over the manifest's exact bytes, and ``owner.pub`` the public
key, whose fingerprint (SHA-256 of the raw 32-byte key) the manifest names. Checking needs no
secret. Anyone can re-sign an edited copy with a key of their own, so a recipient pins the owner
with the fingerprint (or public key) received from the owner out of band.

The signing key stays with the owner: a fresh one per release kept in the release's key file, or
one the owner reuses across releases (``--signing-key FILE``, created on first use, mode 0600),
so that every release of that owner shows the same fingerprint.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .._runtime import sha256_file
from ..data.walk import walk_files
from ..errors import InputError
from .sealing import warn_if_shared

log = logging.getLogger(__name__)
SIGNATURE = "manifest.sig"
PUBLIC_KEY = "owner.pub"
RAW = (serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass
class OwnerKey:
    """The owner's signing key; ``path`` is its own file, None when it lives in the release's key file."""

    key: Ed25519PrivateKey
    path: Path | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key.public_key())

    def raw(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                      serialization.NoEncryption())


def fingerprint(public_key: Ed25519PublicKey) -> str:
    return hashlib.sha256(public_key.public_bytes(*RAW)).hexdigest()


def owner_key(path: str | Path | None) -> OwnerKey:
    """The owner's reusable key from ``path`` (created there, readable by the owner only, when
    missing), or a fresh key for one release when ``path`` is None."""
    if path is None:
        return OwnerKey(Ed25519PrivateKey.generate())
    path = Path(path).expanduser().resolve()
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(pem)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        log.warning("created the signing key %s: keep it private and pass it to every protect run", path)
        return OwnerKey(key, path)
    warn_if_shared(path)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise InputError(f"cannot read the signing key {path} ({exc.strerror})") from None
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"{path} is not an Ed25519 signing key (PEM); give the file medshield created, or a new path")
    return OwnerKey(key, path)


def signing_key_from(raw: str) -> OwnerKey:
    """The per-release key kept (base64) in a release's key file."""
    return OwnerKey(Ed25519PrivateKey.from_private_bytes(base64.b64decode(raw)))


def sign_release(folder: Path, manifest_body: bytes, owner: OwnerKey) -> None:
    """Write ``manifest.sig`` (over ``manifest_body``) and ``owner.pub`` into the release folder."""
    (folder / SIGNATURE).write_text(base64.b64encode(owner.key.sign(manifest_body)).decode() + "\n")
    pem = owner.key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (folder / PUBLIC_KEY).write_bytes(pem)


def pinned_fingerprint(public_key: str | Path | None, given: str | None) -> str | None:
    """The owner's fingerprint from ``--public-key FILE`` or ``--fingerprint HEX``; one line when unusable."""
    if public_key is not None:
        try:
            return fingerprint(_public_key(Path(public_key).read_bytes()))
        except OSError as exc:
            raise InputError(f"--public-key {public_key}: cannot read it ({exc.strerror})") from None
        except ValueError:
            raise InputError(f"--public-key {public_key}: not an Ed25519 public key (PEM); give the owner's owner.pub") from None
    if given is not None:
        value = given.strip().lower().replace(":", "")
        if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
            raise InputError(f"--fingerprint {given}: expected 64 hexadecimal digits (the SHA-256 the owner gave you)")
        return value
    return None


def _public_key(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not Ed25519")
    return key


def signature_problem(folder: Path, manifest_body: bytes, manifest: dict, pinned: str | None) -> tuple[str | None, str]:
    """``(problem, owner fingerprint)``: problem is None when ``manifest.sig`` is a valid signature of the
    manifest by ``owner.pub``, whose fingerprint is the manifest's and, when ``pinned``, the owner's."""
    try:
        public = _public_key((folder / PUBLIC_KEY).read_bytes())
        signature = base64.b64decode((folder / SIGNATURE).read_text().strip(), validate=True)
    except FileNotFoundError as exc:
        return f"{Path(exc.filename).name} is missing: the release is unsigned (or written before signing)", ""
    except (OSError, ValueError, binascii.Error):
        return f"{PUBLIC_KEY} or {SIGNATURE} is damaged", ""
    found = fingerprint(public)
    try:
        public.verify(signature, manifest_body)
    except InvalidSignature:
        return f"{SIGNATURE} does not match manifest.json: the manifest was changed after signing", found
    if manifest.get("owner_fingerprint") != found:
        return f"{PUBLIC_KEY} is not the key the manifest names (owner {manifest.get('owner_fingerprint')})", found
    if pinned is not None and pinned != found:
        return f"signed by {found}, not by the owner you pinned ({pinned}): a re-signed copy", found
    return None, found


def file_problems(folder: Path, manifest: dict) -> list[tuple[str, str]]:
    """``(path, what)`` for every file that is not as the manifest lists it: missing, changed, or not listed."""
    listed = manifest.get("files") or {}
    problems = []
    root = folder.resolve()
    for rel, digest in sorted(listed.items()):
        target = (folder / rel).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            problems.append((rel, "missing"))
        elif sha256_file(target) != digest:
            problems.append((rel, "changed"))
    unsigned = {"manifest.json", SIGNATURE, PUBLIC_KEY}
    try:
        present = [p.relative_to(folder).as_posix() for p in walk_files(folder)]
    except InputError as exc:  # a link out of the release or a loop: not a file anyone signed
        return problems + [(str(exc).split(":")[0].removeprefix(f"{folder}/"), "not listed")]
    return problems + [(rel, "not listed") for rel in present if rel not in listed and rel not in unsigned]


def read_manifest(folder: Path) -> tuple[bytes, dict]:
    """The manifest's exact bytes (what the signature covers) and its content; one line when unreadable."""
    try:
        body = (folder / "manifest.json").read_bytes()
        manifest = json.loads(body)
        if not isinstance(manifest, dict):
            raise ValueError("not an object")
    except (OSError, ValueError) as exc:
        raise InputError(f"{folder} is not a medshield release: cannot read manifest.json ({exc.__class__.__name__})") from None
    return body, manifest


PROBLEMS = {"missing": "missing from the release", "changed": "changed since the release was signed (SHA-256 differs)",
            "not listed": "not in the signed manifest"}
