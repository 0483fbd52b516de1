"""A release that cannot be forged, and a restore that checks what it gives back (issue 30, findings 1-2).

Each test first does what the hostile or careless user did (one pixel changed in a released PNG;
``"method": "random"`` edited in the manifest; the edit re-signed with another key), then shows
what happens now: ``verify`` names the file with exit 1 and needs no secret; ``restore`` writes
nothing (exit 2, one line naming the file) or, with ``--force``, what matches and the list of the
rest; pinning the owner refuses a re-signed copy; the sealed data is bound to the manifest.
"""
import base64
import json
import os
import tempfile

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image

from medshield.cli import main
from medshield.release.signing import fingerprint

QUICK = ["--method", "random", "--quiet"]  # no training: these tests are about the files


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(autouse=True)
def scratch(tmp_path, monkeypatch):
    """Python's temporary folder for each test, so that a leftover ``medshield-*`` would be seen."""
    folder = tmp_path / "tmpdir"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder
    assert not list(folder.iterdir()), "a command left a temporary file or folder behind"


@pytest.fixture
def folder_release(capsys, tmp_path, medmnist_root):
    with np.load(medmnist_root / "breastmnist.npz", allow_pickle=False) as npz:
        images, labels = npz["train_images"][:12], npz["train_labels"][:12, 0]
    source = tmp_path / "owner"
    for i, (image, label) in enumerate(zip(images, labels)):
        (source / f"c{label}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(source / f"c{label}" / f"img{i:03d}.png")
    out = tmp_path / "release"
    code, _, err = run(capsys, "protect", source, "--out", out, *QUICK)
    assert code == 0, err
    return source, out


def one_pixel_changed(out):
    target = sorted(out.glob("c1/*.png"))[0]
    pixels = np.array(Image.open(target))
    pixels[0, 0] ^= 1
    Image.fromarray(pixels).save(target)
    return target.relative_to(out).as_posix()


def verdicts(text):
    return {line.split(":")[0].split()[-1]: line.split()[0] for line in text.splitlines()}


def test_a_one_pixel_tamper_is_named_and_never_restored_as_an_original(capsys, tmp_path, folder_release):
    source, out = folder_release
    tampered = one_pixel_changed(out)
    code, text, _ = run(capsys, "verify", out)
    assert code == 1 and verdicts(text)["files"] == "FAILED" and f"{tampered}: changed" in text, text
    code, _, err = run(capsys, "restore", out, "--out", tmp_path / "restored")  # the finding: exit 0 and a wrong original
    assert code == 2 and err.count("\n") == 1 and f"{tampered}: changed since the release was signed" in err, err
    assert "--force" in err and not (tmp_path / "restored").exists() and not list(tmp_path.glob(".restored*"))
    code, _, err = run(capsys, "restore", out, "--out", tmp_path / "restored", "--force")
    assert code == 1 and f"not restored: {tampered}" in err, err
    restored = {p.relative_to(tmp_path / "restored").as_posix() for p in (tmp_path / "restored").rglob("*.png")}
    originals = {p.relative_to(source).as_posix() for p in source.rglob("*.png")}
    assert restored == originals - {tampered}
    for rel in restored:
        assert np.array_equal(np.array(Image.open(source / rel)), np.array(Image.open(tmp_path / "restored" / rel))), rel


def test_a_lost_image_or_a_flipped_npz_byte_fails_verify_naming_the_file(capsys, tmp_path, folder_release, tiny_npz):
    source, out = folder_release
    lost = sorted(out.glob("c0/*.png"))[0]
    lost.unlink()
    code, text, err = run(capsys, "verify", out)  # before: exit 2, a generic read error
    assert code == 1 and f"{lost.relative_to(out).as_posix()}: missing from the release" in text, text + err
    npz_out = tmp_path / "npz_release"
    assert run(capsys, "protect", tiny_npz, "--out", npz_out, *QUICK)[0] == 0
    data = bytearray((npz_out / "tiny.npz").read_bytes())
    data[len(data) // 2] ^= 0x40
    (npz_out / "tiny.npz").write_bytes(bytes(data))
    code, text, err = run(capsys, "verify", npz_out)  # the key beside it is used: the bounds cannot be measured
    assert code == 1 and "tiny.npz: changed since the release was signed" in text and not err, text + err
    assert verdicts(text)["bounds"] == "FAILED" and "not measurable" in text


def test_an_edited_manifest_fails_the_signature_and_the_seal(capsys, tmp_path, folder_release):
    source, out = folder_release
    manifest = out / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"method": "random"', '"method": "em"'))  # the finding's sed
    code, text, _ = run(capsys, "verify", out)
    assert code == 1 and verdicts(text)["signature"] == "FAILED" and "manifest was changed after signing" in text, text
    code, _, err = run(capsys, "restore", out, "--out", tmp_path / "restored", "--force")
    assert code == 2 and err.count("\n") == 1 and "changed after signing" in err and not (tmp_path / "restored").exists()


def resign(out, manifest: dict) -> str:
    """What a forger does: rewrite the manifest, sign it with a key of his own, ship his public key."""
    forger = Ed25519PrivateKey.generate()
    manifest["owner_fingerprint"] = fingerprint(forger.public_key())
    body = (json.dumps(manifest, indent=2) + "\n").encode()
    (out / "manifest.json").write_bytes(body)
    (out / "manifest.sig").write_text(base64.b64encode(forger.sign(body)).decode())
    (out / "owner.pub").write_bytes(forger.public_key().public_bytes(serialization.Encoding.PEM,
                                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return manifest["owner_fingerprint"]


def test_a_copy_re_signed_with_another_key_is_refused_once_the_owner_is_pinned(capsys, tmp_path, folder_release):
    source, out = folder_release
    owner_pub = tmp_path / "owner.pub"
    owner_pub.write_bytes((out / "owner.pub").read_bytes())  # what the owner gave the recipient out of band
    owner = json.loads((out / "manifest.json").read_text())["owner_fingerprint"]
    code, text, _ = run(capsys, "verify", out, "--fingerprint", owner)
    assert code == 0 and "by the owner you pinned" in text, text
    manifest = json.loads((out / "manifest.json").read_text())
    forged = resign(out, {**manifest, "method": "em"})
    code, text, _ = run(capsys, "verify", out)  # the owner, with the key beside it: the seal is bound to the manifest
    assert code == 1 and verdicts(text)["bounds"] == "FAILED" and "cannot decrypt" in text, text
    key = (tmp_path / "release.key").rename(tmp_path / "partner.key")
    code, text, _ = run(capsys, "verify", out)  # a recipient, unpinned: the forgery is self-consistent, its fingerprint tells
    assert code == 0 and forged in text and "pin the owner" in text, text
    for pin in (["--fingerprint", owner], ["--public-key", owner_pub]):
        code, text, _ = run(capsys, "verify", out, *pin)
        assert code == 1 and verdicts(text)["signature"] == "FAILED" and "re-signed copy" in text, text
        code, _, err = run(capsys, "restore", out, "--key", key, "--out", tmp_path / "restored", *pin)
        assert code == 2 and err.count("\n") == 1 and "re-signed copy" in err, err
    code, _, err = run(capsys, "restore", out, "--key", key, "--out", tmp_path / "restored")  # unpinned: the seal holds
    assert code == 2 and "cannot decrypt" in err and "manifest.json was modified" in err, err
    assert not (tmp_path / "restored").exists()


def test_verify_needs_no_secret_and_a_reused_signing_key_signs_every_release(capsys, tmp_path, tiny_npz):
    signing = tmp_path / "vault" / "owner.pem"
    for name in ("first", "second"):
        code, _, err = run(capsys, "protect", tiny_npz, "--out", tmp_path / name, "--signing-key", signing, *QUICK)
        assert code == 0, err
    assert signing.stat().st_mode & 0o777 == 0o600
    first, second = (json.loads((tmp_path / n / "manifest.json").read_text()) for n in ("first", "second"))
    assert first["owner_fingerprint"] == second["owner_fingerprint"]
    assert "signing_key" not in json.loads((tmp_path / "second.key").read_text())  # the owner's file holds it
    (tmp_path / "second.key").rename(tmp_path / "elsewhere.key")  # a recipient has no key
    code, text, _ = run(capsys, "verify", tmp_path / "second", "--public-key", tmp_path / "first" / "owner.pub")
    assert code == 0 and verdicts(text)["signature"] == "ok" and verdicts(text)["files"] == "ok", text
    listed = set(second["files"])
    assert listed == {"tiny.npz", "restoration.sealed"}  # every released file but the manifest and its signature


def test_a_key_file_others_can_read_is_warned_about(capsys, caplog, tmp_path, tiny_npz):
    assert run(capsys, "protect", tiny_npz, "--out", tmp_path / "release", *QUICK)[0] == 0
    assert "readable by others" not in caplog.text
    os.chmod(tmp_path / "release.key", 0o644)
    code, _, err = run(capsys, "restore", tmp_path / "release", "--out", tmp_path / "restored")
    assert code == 0 and "readable by others (mode 644)" in caplog.text and "chmod 600" in caplog.text, err
