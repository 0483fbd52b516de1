"""A full disk (issue 30, finding 4): two torch ``RuntimeError`` tracebacks and a half-written
``DIR.work/checkpoint-0/state.pt`` before. Now a write the machine refuses is one line and exit 2;
the checkpoint being written is removed, the previous one kept, and ``--resume`` continues from it
once space is freed, to the bytes of an uninterrupted run.

The disk is a real 4 MB tmpfs (root only; skipped elsewhere) filled with a ballast file at the
moment the test wants it full; one test injects the error instead and runs everywhere.
"""
import errno
import os
import subprocess

import numpy as np
import pytest

from medshield import run_plan
from medshield.cli import main
from medshield.release import writer as release_module
from medshield.errors import InputError
from medshield.protect import _checkpoint
from medshield.protect._checkpoint import Checkpoint, work_folder

FAST = ["--method", "salm", "--steps", "6", "--width", "4", "--batch-size", "32", "--pgd-steps", "2", "--quiet"]


@pytest.fixture
def disk(tmp_path):
    """A 4 MB filesystem of its own, and a way to fill it."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("mounting a small tmpfs needs root")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def fill(disk, keep_bytes: int = 0):
    """Take every free byte of ``disk`` but ``keep_bytes``."""
    stat = os.statvfs(disk)
    (disk / "ballast").write_bytes(bytes(max(0, stat.f_bavail * stat.f_frsize - keep_bytes)))


def leftovers(disk):
    return sorted(p.relative_to(disk).as_posix() for p in disk.rglob("*") if p.name != "ballast")


def every_step_checkpoints(monkeypatch, fill_after=None, disk=None):
    """Save at every stage boundary and every few steps; fill the disk after ``fill_after`` saves."""
    real_save, saves = Checkpoint.save, []
    monkeypatch.setattr(Checkpoint, "due", lambda self: True)

    def save(self, state, arrays):
        real_save(self, state, arrays)
        saves.append(self.path.name)
        if len(saves) == fill_after:
            fill(disk)

    monkeypatch.setattr(Checkpoint, "save", save)
    return saves


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one_and_resume_continues(capsys, monkeypatch, disk, tmp_path,
                                                                                     tiny_npz):
    reference = tmp_path / "reference"
    assert main(["protect", str(tiny_npz), "--out", str(reference), "--seed", "3", *FAST]) == 0
    capsys.readouterr()
    out = disk / "rel"
    with monkeypatch.context() as patch:
        saves = every_step_checkpoints(patch, fill_after=2, disk=disk)
        code = main(["protect", str(tiny_npz), "--out", str(out), "--seed", "3", *FAST])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "No space left on device" in err and "--resume" in err, err
    assert f"the previous one, {saves[-1]}, is kept" in err
    checkpoints = sorted(p.name for p in (disk / "rel.work").glob("checkpoint-*"))  # the half-written one is gone
    assert checkpoints == [saves[-1]] and (disk / "rel.work" / "latest").read_text().strip() == saves[-1]
    assert not out.exists() and not list(disk.glob(".rel*")) and not (disk / "rel.key").exists()
    (disk / "ballast").unlink()
    assert main(["protect", str(tiny_npz), "--out", str(out), "--seed", "3", "--resume", *FAST]) == 0
    with np.load(reference / "tiny.npz") as a, np.load(out / "tiny.npz") as b:
        assert np.array_equal(a["train_images"], b["train_images"])  # the same bytes as a run never interrupted
    assert not work_folder(out).exists()


def test_a_full_disk_while_publishing_leaves_nothing_and_resume_finishes(capsys, monkeypatch, disk, tiny_npz):
    out = disk / "rel"
    real_staging = release_module.staging_folder

    def staging_then_full(target):
        folder = real_staging(target)
        fill(disk, keep_bytes=8192)
        return folder

    with monkeypatch.context() as patch:
        patch.setattr(release_module, "staging_folder", staging_then_full)
        code = main(["protect", str(tiny_npz), "--out", str(out), *FAST])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "No space left on device" in err, err
    assert all(p.startswith("rel.work") for p in leftovers(disk)), leftovers(disk)  # no release, key or staging folder
    (disk / "ballast").unlink()
    assert main(["protect", str(tiny_npz), "--out", str(out), "--resume", *FAST]) == 0
    assert leftovers(disk) == ["rel", "rel.key", *sorted(f"rel/{f}" for f in
                               ("manifest.json", "manifest.sig", "owner.pub", "restoration.sealed", "tiny.npz"))]


def test_an_injected_write_error_removes_the_checkpoint_being_written(tmp_path, monkeypatch):
    """Runs without root: the checkpoint's writer raises as a full disk does, on the second save."""
    checkpoint = Checkpoint(tmp_path / "work", {"run": 1})
    checkpoint.save({"step": 1}, {})
    real_write, calls = _checkpoint._write_checkpoint, []

    def write(target, state, arrays, run):
        calls.append(target.name)
        (target / "state.pt").write_bytes(b"half")
        raise OSError(errno.EDQUOT, "Disk quota exceeded", str(target / "state.pt"))

    monkeypatch.setattr(_checkpoint, "_write_checkpoint", write)
    with pytest.raises(InputError, match=r"Disk quota exceeded.*removed and the previous one, checkpoint-0, is kept"):
        checkpoint.save({"step": 2}, {})
    assert calls == ["checkpoint-1"] and not (tmp_path / "work" / "checkpoint-1").exists()
    assert checkpoint.path.name == "checkpoint-0" and checkpoint.load({})["step"] == 1
    monkeypatch.setattr(_checkpoint, "_write_checkpoint", real_write)
    checkpoint.save({"step": 2}, {})
    assert checkpoint.path.name == "checkpoint-1" and checkpoint.load({})["step"] == 2


def test_a_refused_write_is_exit_2_not_a_traceback(capsys, monkeypatch, tiny_npz, tmp_path):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "out"))

    monkeypatch.setattr(run_plan, "write_release", read_only)
    code = main(["protect", str(tiny_npz), "--out", str(tmp_path / "out"), "--method", "random", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Read-only file system" in err, err
