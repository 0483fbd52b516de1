"""On-disk scratch arrays and lazy folders: what lets a dataset larger than RAM be protected."""
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medshield.bounds import pixel_change
from medshield.data import folder
from medshield.data.folder import load_folder
from medshield.data.scratch import ScratchArray


@pytest.fixture
def scratch_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_scratch_array_round_trips_and_leaves_no_file(scratch_dir):
    store = ScratchArray((10, 4, 5), np.uint16)
    assert list(scratch_dir.iterdir()) == []  # unnamed: the OS frees it with the array, even after a crash
    values = np.random.default_rng(0).integers(0, 65535, (3, 4, 5)).astype(np.uint16)
    store[[7, 2, 5]] = values
    assert np.array_equal(store[[7, 2, 5]], values) and not store[0].any()
    mapped = store.mapped()
    assert isinstance(mapped, np.memmap) and mapped.dtype == np.uint16 and not mapped.flags.writeable
    assert np.array_equal(mapped[2], values[1])


def test_pixel_change_in_chunks_matches_the_whole(scratch_dir):
    rng = np.random.default_rng(1)
    original = rng.integers(0, 256, (11, 6, 6, 3)).astype(np.uint8)
    released = np.clip(original.astype(int) + rng.integers(-3, 4, original.shape) * (rng.random(original.shape) < 0.1), 0, 255).astype(np.uint8)
    on_disk = ScratchArray(released.shape, released.dtype)
    on_disk[:] = released
    assert pixel_change(original, on_disk, chunk=4) == pixel_change(original, released, chunk=100)


def test_folder_is_read_lazily_one_file_at_a_time_into_a_read_only_map(scratch_dir, tmp_path, monkeypatch):
    root = tmp_path / "owner"
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (6, 9, 9)).astype(np.uint8)
    for i, image in enumerate(images):
        (root / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / f"c{i % 2}" / f"{i}.png")
    before = sorted(root.rglob("*"))
    data = load_folder(root)
    assert data.caches == {}  # validation decoded every file and kept none
    decoded = []
    read = folder.read_image
    monkeypatch.setattr(folder, "read_image", lambda path, convert=False: decoded.append(path) or read(path, convert))
    train = data.images("train")
    assert isinstance(train, np.memmap) and not train.flags.writeable and train.dtype == np.uint8
    assert len(decoded) == 6 and np.array_equal(train, images[[int(Path(f).stem) for f in data.files]])
    data.images("train")
    assert len(decoded) == 6  # decoded once, then read from the on-disk cache
    assert sorted(root.rglob("*")) == before  # the cache is not written beside the input
