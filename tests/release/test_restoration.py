"""A release is safe to publish; its key, kept apart, gives an authorized partner the originals back.

For an .npz, an 8-bit PNG folder, a 16-bit TIFF folder and pydicom's sample DICOM: nothing in the
release folder reveals the perturbation, the originals, the key, paths or the host; ``restore``
with the key gives the originals back exactly; a wrong key or a damaged payload is one error
line and nothing written; the owner's tools work from the release plus the key.
"""
import base64
import json
import re
import socket

import numpy as np
import pydicom
import pytest
from PIL import Image
from builders import make_folder, medmnist_images, series

from medshield.cli import main
from medshield.release.restoration import RESTORATION

FAST = ["--steps", "3", "--width", "4", "--batch-size", "20", "--pgd-steps", "2", "--quiet"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def owner_dataset(kind, tmp_path, medmnist_root, tiny_npz):
    """(input path, extra protect arguments, train image files relative to the input or None for .npz)."""
    if kind == "npz":
        return tiny_npz, [], None
    if kind == "dicom":
        root, labels = series(tmp_path, "CT_small.dcm")
        return root, ["--labels", labels], sorted(p.name for p in root.iterdir())[:-2]  # the last two are test slices
    images, labels, _, _ = medmnist_images(medmnist_root, "breastmnist", 30)
    root, _ = make_folder(tmp_path, images, labels, ".png" if kind == "png8" else ".tif", sixteen=kind == "tif16")
    return root, [], sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.suffix in (".png", ".tif"))


def pixels(path):
    if path.suffix == ".dcm":
        return pydicom.dcmread(path).pixel_array
    with Image.open(path) as image:
        return np.asarray(image)


def arrays_in(folder):
    """Every array and image a stranger could read from the folder, by file."""
    found = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                found.update({f"{path.name}:{k}": npz[k] for k in npz.files})
        elif path.suffix in (".png", ".tif", ".dcm"):
            found[path.relative_to(folder).as_posix()] = pixels(path)
    return found


@pytest.fixture(params=["npz", "png8", "tif16", "dicom"])
def protected(request, capsys, tmp_path, medmnist_root, tiny_npz):
    source, extra, train_files = owner_dataset(request.param, tmp_path, medmnist_root, tiny_npz)
    out = tmp_path / "release"
    code, _, err = run(capsys, "protect", source, "--out", out, *extra, *FAST)
    assert code == 0, err
    assert "keep it private" in err
    return request.param, source, out, train_files, extra


def originals_and_deltas(kind, source, out, train_files):
    if kind == "npz":
        with np.load(source, allow_pickle=False) as a, np.load(out / source.name, allow_pickle=False) as b:
            original, released = a["train_images"], b["train_images"]
        return [original], [released.astype(np.int32) - original]
    original = [pixels(source / rel) for rel in train_files]
    delta = [pixels(out / rel).astype(np.int32) - o for rel, o in zip(train_files, original)]
    return original, delta


def test_the_release_reveals_neither_perturbation_nor_originals_nor_key(protected):
    kind, source, out, train_files, _ = protected
    key_file = out.parent / "release.key"
    assert key_file.is_file() and key_file.stat().st_mode & 0o777 == 0o600
    originals, deltas = originals_and_deltas(kind, source, out, train_files)
    assert any(d.any() for d in deltas)  # the release is perturbed
    for name, array in arrays_in(out).items():  # (a) no readable array is a perturbation or an original train image
        for delta in deltas:
            assert not (array.shape == delta.shape and np.array_equal(array.astype(np.int32), delta)), name
        for original in originals:
            assert not (array.shape == original.shape and np.array_equal(array, original)), name
    key = json.loads(key_file.read_text())
    secrets = [str(source.resolve()).encode(), str(out.parent).encode(), key["key"].encode(),
               base64.b64decode(key["key"]), *[o.tobytes() for o in originals if o.size >= 64]]
    for path in (p for p in out.rglob("*") if p.is_file()):  # (b) no key, path or original bytes in any file
        content = path.read_bytes()
        for secret in secrets:
            assert secret not in content, (path, secret[:40])
        if path.suffix in (".json", ".csv"):  # no host name in what medshield writes as text
            assert not re.search(rf"\b{re.escape(socket.gethostname())}\b", content.decode()), path
    assert not list(out.rglob("*.key"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert not {"input", "command", "machine"} & set(manifest) and manifest["release_id"] == key["release_id"]
    assert manifest["utility"]["images"] == min(1000, manifest["train_images"]) and 50 < manifest["utility"]["ssim"] < 100
    assert manifest["utility"]["delta_e"] > 0  # the colour difference a recipient reads before opening an image
    assert key["private"]["input"]["path"] == str(source.resolve()) and key["private"]["input"]["sha256"]


def test_restore_with_the_key_gives_the_originals_back(protected, capsys, tmp_path):
    kind, source, out, train_files, _ = protected
    restored = tmp_path / "restored"
    code, _, err = run(capsys, "restore", out, "--key", out.parent / "release.key", "--out", restored)
    assert code == 0, err
    if kind == "npz":  # (c) byte-identical arrays
        with np.load(source, allow_pickle=False) as a, np.load(restored / source.name, allow_pickle=False) as b:
            assert sorted(a.files) == sorted(b.files)
            for name in a.files:
                assert a[name].dtype == b[name].dtype and np.array_equal(a[name], b[name]), name
        return
    names = {p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file()}
    assert names <= {p.relative_to(restored).as_posix() for p in restored.rglob("*") if p.is_file()}
    for rel in names:
        if rel in train_files:  # (c) pixel-identical, same format and bit depth
            a, b = pixels(source / rel), pixels(restored / rel)
            assert a.dtype == b.dtype and np.array_equal(a, b), rel
            if kind == "dicom":
                x, y = pydicom.dcmread(source / rel), pydicom.dcmread(restored / rel)
                assert y.SOPInstanceUID == x.SOPInstanceUID and y.file_meta.MediaStorageSOPInstanceUID == x.SOPInstanceUID
                assert list(y.ImageType) == list(x.ImageType) and "DerivationDescription" not in y
            else:
                with Image.open(source / rel) as x, Image.open(restored / rel) as y:
                    assert (x.format, x.mode) == (y.format, y.mode)
        else:  # untouched files come back byte for byte
            assert (source / rel).read_bytes() == (restored / rel).read_bytes(), rel


def test_a_wrong_key_or_damaged_payload_is_one_line_and_writes_nothing(protected, capsys, tmp_path):
    kind, source, out, train_files, extra = protected
    key_file = out.parent / "release.key"
    other = tmp_path / "other"
    assert run(capsys, "protect", source, "--out", other, *extra, *FAST)[0] == 0
    sealed = out / RESTORATION
    payload = sealed.read_bytes()
    wrong_key = json.loads(key_file.read_text())
    wrong_key["key"] = base64.b64encode(bytes(32)).decode()
    (tmp_path / "wrong.key").write_text(json.dumps(wrong_key))
    flipped = bytearray(payload)
    flipped[len(payload) // 2] ^= 0x01
    changed = "restoration.sealed: changed since the release was signed"  # the signed manifest's SHA-256 catches it first
    cases = [("wrong.key", None, "cannot decrypt"), ("other.key", None, "belongs to release"),
             ("release.key", bytes(flipped), changed), ("release.key", payload[:-20], changed),
             ("release.key", payload[:100], changed)]
    for key_name, damaged, message in cases:
        sealed.write_bytes(damaged or payload)
        target = tmp_path / "restored"
        code, _, err = run(capsys, "restore", out, "--key", tmp_path / key_name, "--out", target)
        assert code == 2 and err.count("\n") == 1 and message in err, (key_name, err)
        assert not target.exists() and not list(tmp_path.glob(".restored*"))
    sealed.write_bytes(payload)


def test_owner_tools_work_from_the_release_and_its_key(capsys, tmp_path, tiny_npz):
    out = tmp_path / "release"
    key = tmp_path / "vault" / "blood.key"
    assert run(capsys, "protect", tiny_npz, "--out", out, "--key-out", key, *FAST)[0] == 0
    assert key.is_file() and not (tmp_path / "release.key").exists()
    recipe = ["--arch", "small-cnn", "--width", "4", "--iterations", "2", "--quiet"]
    code, _, err = run(capsys, "evaluate", out, "--compare", *recipe)
    assert code == 2 and err.count("\n") == 1 and "--key FILE" in err and "--original PATH" in err
    report = tmp_path / "eval.json"
    code, _, err = run(capsys, "evaluate", out, "--compare", "--key", key, "--json", report, *recipe)
    assert code == 0, err
    assert json.loads(report.read_text())["clean"]["training_data"] == "clean"
    code, _, err = run(capsys, "evaluate", out, "--compare", "--original", tiny_npz, *recipe)
    assert code == 0, err
    code, _, err = run(capsys, "utility", out, "--key", key, "--quiet")
    assert code == 0, err
    code, _, err = run(capsys, "report", out, "--key", key, "--out", tmp_path / "report")
    assert code == 0, err
    assert (tmp_path / "report" / "index.html").is_file()


def test_the_key_is_never_written_into_the_release_or_over_another_key(capsys, tmp_path, tiny_npz):
    out = tmp_path / "release"
    code, _, err = run(capsys, "protect", tiny_npz, "--out", out, "--key-out", out / "k.key", *FAST)
    assert code == 2 and "inside the release folder" in err and not out.exists()
    (tmp_path / "release.key").write_text("the owner's other key")
    code, _, err = run(capsys, "protect", tiny_npz, "--out", out, *FAST)
    assert code == 2 and "already exists" in err and not out.exists()
    assert (tmp_path / "release.key").read_text() == "the owner's other key"
