"""Symlinked folders in an input (issue 30, finding 5): ``c0/loop -> ..`` and ``c0/ext -> /outside``
were skipped without a word and left empty folders in the release. Now a symlinked folder inside
the root is followed, one that leaves it or loops is refused in one line, and no folder of a
release is ever empty."""
import os

import numpy as np
import pytest
from PIL import Image

from medshield.cli import main

QUICK = ["--method", "random", "--quiet"]


@pytest.fixture
def owner(tmp_path):
    root = tmp_path / "owner"
    for label in (0, 1):
        for i in range(4):
            (root / f"c{label}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((16, 16), 40 * i + 100 * label, np.uint8)).save(root / f"c{label}" / f"{i}.png")
    return root


def protect(capsys, source, out):
    code = main(["protect", str(source), "--out", str(out), *QUICK])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name, target, message", [
    ("loop", "..", "a symlink loop (it points back to"),
    ("ext", "OUTSIDE", "a symlink to"),
])
def test_a_link_that_loops_or_leaves_the_root_is_refused_in_one_line(capsys, tmp_path, owner, name, target, message):
    outside = tmp_path / "outside"
    outside.mkdir()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(outside / "secret.png")
    os.symlink(str(outside) if target == "OUTSIDE" else target, owner / "c0" / name)
    code, err = protect(capsys, owner, tmp_path / "rel")
    assert code == 2 and err.count("\n") == 1 and f"c0/{name}: {message}" in err, err
    assert target != "OUTSIDE" or f"outside {owner}" in err
    assert not (tmp_path / "rel").exists() and not list(tmp_path.glob(".rel*"))


def test_a_link_inside_the_root_is_followed_and_no_folder_is_empty(capsys, tmp_path, owner):
    (owner / "c1" / "more").mkdir()
    Image.fromarray(np.full((16, 16), 77, np.uint8)).save(owner / "c1" / "more" / "x.png")
    os.symlink("../c1/more", owner / "c0" / "shared")  # inside the root: its image is class c0's too
    (owner / "c0" / "empty").mkdir()
    code, err = protect(capsys, owner, tmp_path / "rel")
    assert code == 0, err
    release = tmp_path / "rel"
    assert (release / "c0" / "shared" / "x.png").is_file() and not (release / "c0" / "shared").is_symlink()
    folders = [p for p in release.rglob("*") if p.is_dir()]
    assert folders and all(any(f.is_file() for f in d.rglob("*")) for d in folders)  # not one empty folder
    code, err = main(["restore", str(release), "--out", str(tmp_path / "back")]), capsys.readouterr().err
    assert code == 0, err
    assert np.array_equal(np.array(Image.open(owner / "c0" / "shared" / "x.png")),
                          np.array(Image.open(tmp_path / "back" / "c0" / "shared" / "x.png")))
