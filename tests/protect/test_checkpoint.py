"""A killed protection resumes from its checkpoint to the bytes of a run that was never interrupted:
stopped by an exception after a checkpoint, or by SIGKILL (no clean-up at all) in a child process."""
import signal
import subprocess
import sys

import numpy as np
import pytest

from medshield import pipeline
from medshield.errors import InputError
from medshield.protect._checkpoint import Checkpoint, work_folder

FAST = dict(steps=6, width=4, batch_size=32, pgd_steps=2)


class Killed(KeyboardInterrupt):
    """What the run sees when the machine goes down right after a checkpoint."""


def kill_after_saves(monkeypatch, count: int) -> None:
    real_save, saves = Checkpoint.save, []

    def save(self, state, arrays):
        real_save(self, state, arrays)
        saves.append(state["stage"])
        if len(saves) == count:
            raise Killed

    monkeypatch.setattr(Checkpoint, "save", save)


def release_images(release) -> np.ndarray:
    return np.array(release.data.images("train"))


# 120 images in batches of 32: EM-type runs save after 6 source steps, at the boundary and after 4
# final-pass batches; TAP after 8 source steps (2 epochs), at the boundary and after 4 poison batches.
TAP_FAST = dict(source_epochs=2, width=4, batch_size=32, pgd_steps=2, restarts=2)
RUNS = [("salm", FAST, (3, 7, 9)), ("salm", {**FAST, "sparse": True}, (3, 7, 9)), ("em", {**FAST, "mode": "class"}, (3, 7, 9)),
        ("tap", TAP_FAST, (3, 9, 11))]  # killed in the source steps; at the stage boundary; in the last stage


@pytest.mark.parametrize("method, params, kills_after",
                         [(method, params, kill) for method, params, kills in RUNS for kill in kills])
def test_a_killed_run_resumes_to_the_same_bytes(tmp_path, tiny_npz, monkeypatch, method, params, kills_after):
    settings = dict(method=method, params=params, seed=4, progress=False, checkpoint_every=0)
    reference = release_images(pipeline.protect(str(tiny_npz), tmp_path / "whole", **settings))
    assert not work_folder(tmp_path / "whole").exists()  # removed once the release is written

    with monkeypatch.context() as patch:
        kill_after_saves(patch, kills_after)
        with pytest.raises(Killed):
            pipeline.protect(str(tiny_npz), tmp_path / "out", **settings)
    assert work_folder(tmp_path / "out").exists() and not (tmp_path / "out").exists()
    with pytest.raises(InputError, match="pass --resume"):  # never silently started over
        pipeline.protect(str(tiny_npz), tmp_path / "out", **settings)
    with pytest.raises(InputError, match="another run.*seed"):
        pipeline.protect(str(tiny_npz), tmp_path / "out", **{**settings, "seed": 5}, resume=True)
    resumed = release_images(pipeline.protect(str(tiny_npz), tmp_path / "out", **settings, resume=True))
    assert np.array_equal(resumed, reference)
    assert not work_folder(tmp_path / "out").exists()


def test_resume_without_a_checkpoint_is_one_clear_error(tmp_path, tiny_npz):
    with pytest.raises(InputError, match="no checkpoint"):
        pipeline.protect(str(tiny_npz), tmp_path / "out", params=FAST, progress=False, resume=True)


KILLER = """
import os, signal, sys
from medshield import pipeline
from medshield.release import writer as release
from medshield.protect._checkpoint import Checkpoint

dataset, out, where, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
die = lambda *args: os.kill(os.getpid(), signal.SIGKILL)
if where == "save":  # right after the count-th checkpoint
    real, saves = Checkpoint.save, []
    def save(self, state, arrays):
        real(self, state, arrays)
        saves.append(state["stage"])
        if len(saves) == count:
            die()
    Checkpoint.save = save
else:  # while publishing: the release is assembled and its key written, not yet renamed into place
    release.move_into_place = die
pipeline.protect(dataset, out, method="salm", params=%r, seed=4, progress=False, checkpoint_every=0)
""" % (FAST,)


@pytest.mark.parametrize("where, count", [("save", 3), ("save", 9), ("publish", 0)])  # source steps; final pass; writing
def test_a_sigkilled_run_resumes_to_the_same_bytes(tmp_path, tiny_npz, where, count):
    settings = dict(method="salm", params=FAST, seed=4, progress=False, checkpoint_every=0)
    reference = release_images(pipeline.protect(str(tiny_npz), tmp_path / "whole", **settings))
    out = tmp_path / "out"
    killed = subprocess.run([sys.executable, "-c", KILLER, str(tiny_npz), str(out), where, str(count)],
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not out.exists() and work_folder(out).exists()
    assert (tmp_path / "out.key").exists() == (where == "publish")
    assert bool(list(tmp_path.glob(".out.partial-*"))) == (where == "publish")  # SIGKILL cleans nothing up
    resumed = release_images(pipeline.protect(str(tiny_npz), out, **settings, resume=True))
    assert np.array_equal(resumed, reference)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "out.key", "tiny.npz", "whole", "whole.key"]  # no leftovers
