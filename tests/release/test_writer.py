import json

import numpy as np
import pytest

from medshield.data import load
from medshield.release import read_release, write_release
from medshield.errors import InputError


def protected_copy(data, value=3):
    images = data.images("train").copy()
    images[:, 0, 0] = np.clip(images[:, 0, 0].astype(int) + value, 0, 255).astype(np.uint8)
    return images


def test_release_layout_and_measured_bounds(tiny_npz, tmp_path):
    data = load(str(tiny_npz))
    before = tiny_npz.read_bytes()
    release = write_release(tmp_path / "out", data, protected_copy(data), {"method": "test", "dataset_file": "tiny.npz"}, max_linf=8, max_l0=0.1)
    assert sorted(p.name for p in release.path.iterdir()) == ["manifest.json", "manifest.sig", "owner.pub",
                                                               "restoration.sealed", "tiny.npz"]
    assert tiny_npz.read_bytes() == before  # the input is untouched
    manifest = json.loads((release.path / "manifest.json").read_text())
    assert manifest["measured"]["linf"] <= 3 and manifest["measured"]["changed_positions_max"] <= 1
    with np.load(release.path / "tiny.npz", allow_pickle=False) as npz:
        for key in ("test_images", "test_labels", "val_images", "train_labels"):
            assert np.array_equal(npz[key], data.arrays[key])
    assert read_release(release.path).manifest["method"] == "test"
    assert (tmp_path / "out.key").stat().st_mode & 0o777 == 0o600


def test_bound_violation_writes_nothing(tiny_npz, tmp_path):
    data = load(str(tiny_npz))
    with pytest.raises(RuntimeError, match="violates its bounds"):
        write_release(tmp_path / "out", data, protected_copy(data, value=20), {}, max_linf=8, max_l0=0.1)
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.npz"]  # only the input


def test_existing_output_needs_overwrite(tiny_npz, tmp_path):
    data = load(str(tiny_npz))
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(InputError, match="already exists.*--overwrite"):
        write_release(out, data, protected_copy(data), {}, max_linf=8, max_l0=0.1)
    assert (out / "old.txt").exists()
    write_release(out, data, protected_copy(data), {"dataset_file": "tiny.npz"}, max_linf=8, max_l0=0.1, overwrite=True)
    assert not (out / "old.txt").exists() and (out / "tiny.npz").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "out.key", "tiny.npz"]  # no temporary folders left


def test_never_writes_into_the_input_folder(tiny_npz):
    data = load(str(tiny_npz))
    with pytest.raises(InputError, match="contains the input"):
        write_release(tiny_npz.parent, data, protected_copy(data), {}, max_linf=8, max_l0=0.1, overwrite=True)
