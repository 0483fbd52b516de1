"""`medshield verify` passes a release as written and fails each way it can be spoiled after writing."""
import json
import shutil

import numpy as np
import pytest
from test_restoration import protected, run  # noqa: F401  (the fixture: a release of each kind)


def verify(capsys, *argv):
    code, out, err = run(capsys, "verify", *argv)
    return code, {line.split(":")[0].split()[-1]: line.split()[0] for line in out.splitlines()}, out + err


def test_a_release_as_written_passes_every_check(protected, capsys, tmp_path):
    kind, source, out, _, extra = protected
    code, shown, text = verify(capsys, out, "--json", tmp_path / "checks.json")  # the key beside it is found
    assert code == 0, text
    expected = {"signature", "files", "sealed", "private", "bounds"} | ({"arrays"} if kind == "npz" else set())
    expected |= {"duplicates"} if kind in ("png8", "tif16") else set()  # image folders: duplicates and leaks
    assert set(shown) == expected and set(shown.values()) == {"ok"}, text
    checks = json.loads((tmp_path / "checks.json").read_text())
    assert all(c["ok"] for c in checks) and "L-inf" in next(c["detail"] for c in checks if c["check"] == "bounds")
    hidden = tmp_path / "elsewhere"
    shutil.move(out.parent / "release.key", hidden)
    code, shown, text = verify(capsys, out)  # a recipient without the key: bounds cannot be checked
    assert code == 0 and shown["bounds"] == "not" and shown["files"] == "ok", text
    code, shown, text = verify(capsys, out, "--original", source, *extra)
    assert code == 0 and shown["bounds"] == "ok", text


@pytest.mark.parametrize("protected", ["npz"], indirect=True)
def test_a_changed_image_fails_the_files_check_and_the_bounds_against_the_original(protected, capsys):
    kind, source, out, train_files, _ = protected
    path = out / source.name
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["train_images"][0] = np.clip(arrays["train_images"][0].astype(int) + 40, 0, 255).astype(np.uint8)
    np.savez_compressed(path, **arrays)
    code, shown, text = verify(capsys, out)  # with the key: the restored originals miss their sealed SHA-256
    assert code == 1 and shown["files"] == "FAILED" and shown["bounds"] == "FAILED" and "do not match" in text, text
    code, shown, text = verify(capsys, out, "--original", source)
    assert code == 1 and shown["files"] == "FAILED" and shown["bounds"] == "FAILED" and "L-inf 4" in text, text


@pytest.mark.parametrize("protected", ["npz", "png8"], indirect=True)
def test_a_key_or_private_record_in_the_folder_fails(protected, capsys):
    kind, source, out, _, _ = protected
    shutil.copy(out.parent / "release.key", out / "notes.key")
    code, shown, text = verify(capsys, out)
    assert code == 1 and shown["private"] == "FAILED" and "key file notes.key" in text, text
    (out / "notes.key").unlink()
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "command": ["medshield", str(source.resolve())]}))
    code, shown, text = verify(capsys, out)
    assert code == 1 and shown["private"] == "FAILED" and "'command'" in text, text


@pytest.mark.parametrize("protected", ["npz"], indirect=True)
def test_an_unsealed_perturbation_or_a_missing_file_fails(protected, capsys):
    kind, source, out, train_files, _ = protected
    with np.load(source, allow_pickle=False) as a, np.load(out / source.name, allow_pickle=False) as b:
        np.save(out / "noise.npy", b["train_images"].astype(np.int32) - a["train_images"])
    code, shown, text = verify(capsys, out)
    assert code == 1 and shown["arrays"] == "FAILED" and "noise.npy" in text, text
    (out / "noise.npy").unlink()
    (out / "restoration.sealed").unlink()
    code, shown, text = verify(capsys, out, "--original", source)
    assert code == 1 and shown["files"] == "FAILED" and shown["sealed"] == "FAILED", text


def test_a_folder_that_is_no_release_is_one_line(capsys, tmp_path):
    code, _, text = verify(capsys, tmp_path)
    assert code == 2 and text.count("\n") == 1 and "not a medshield release" in text
