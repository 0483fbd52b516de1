"""Support classes (paper Section 7.1): borrowed for the generation, converted, seeded, never released."""
import json

import numpy as np
import pytest
from PIL import Image

from conftest import synthetic_npz
from medshield import pipeline
from medshield.cli import main
from medshield.data import load
from medshield.data.support import WithSupport, convert, draw_classes
from medshield.errors import InputError

FAST = dict(steps=3, width=4, batch_size=32, pgd_steps=2)


def one_class_folder(root, n=24, size=28):
    """An institution's folder of one diagnosis: gray PNGs in one sub-folder."""
    rng = np.random.default_rng(0)
    (root / "melanoma").mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size, size), dtype=np.uint8)).save(root / "melanoma" / f"{i}.png")
    return root


def test_drawn_classes_follow_the_seed():
    labels = np.repeat(np.arange(8), 5)
    assert draw_classes(labels, 3, 0, "s") == draw_classes(labels, 3, 0, "s")
    assert len({tuple(draw_classes(labels, 3, seed, "s")) for seed in range(6)}) > 1
    with pytest.raises(InputError, match="fewer than the 9 asked for"):
        draw_classes(labels, 9, 0, "s")


def test_support_of_another_size_and_channel_count_is_converted(tmp_path):
    owner = load(str(synthetic_npz(tmp_path / "owner.npz", classes=2)))  # 28 px gray
    source = load(str(synthetic_npz(tmp_path / "source.npz", size=32, channels=3, classes=6)))
    combined = WithSupport(owner, source, "source.npz", 3, seed=1)
    images, labels = combined.images("train"), combined.labels("train")
    assert images.shape[1:] == (28, 28) and images.dtype == np.uint8
    assert np.array_equal(images[: len(owner.images("train"))], owner.images("train"))
    assert set(labels[len(owner.images("train")):]) == {2, 3, 4} and combined.num_classes == 5
    assert [c["label"] for c in combined.record["classes"]] == [2, 3, 4]
    gray = convert(np.full((1, 8, 8), 255, np.uint8), 255, np.zeros((4, 4, 3), np.uint16), 65535)
    assert gray.shape == (1, 4, 4, 3) and gray.dtype == np.uint16 and int(gray.min()) == 65535


def test_support_images_never_reach_the_release(tmp_path):
    owner_path = synthetic_npz(tmp_path / "owner.npz", classes=2, n_train=40)
    arrays = dict(np.load(owner_path))
    arrays["train_labels"][:] = 1  # an owner holding one class
    np.savez(owner_path, **arrays)
    source = synthetic_npz(tmp_path / "source.npz", classes=6, seed=3)
    release = pipeline.protect(str(owner_path), tmp_path / "out", method="em", params=FAST, progress=False,
                               support=str(source), support_classes=3, seed=2)
    released = release.data.images("train")
    assert released.shape == arrays["train_images"].shape
    assert np.array_equal(release.data.labels("train"), arrays["train_labels"].reshape(-1))
    assert np.abs(released.astype(int) - arrays["train_images"]).max() <= 8  # the owner's images, perturbed
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    support = manifest["support"]
    assert support["source"] == "source.npz" and len(support["classes"]) == 3
    assert all(c["images"] > 0 for c in support["classes"]) and str(tmp_path) not in json.dumps(support)


def test_one_class_folder_without_support_is_refused_before_any_compute(tmp_path, capsys, monkeypatch):
    from medshield.protect.base import Protection

    monkeypatch.setattr(Protection, "protect", lambda *a, **k: pytest.fail("computed before refusing"))
    folder = one_class_folder(tmp_path / "clinic")
    code = main(["protect", str(folder), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--support SOURCE" in err
    assert not (tmp_path / "out").exists()


def test_methods_without_a_source_task_reject_support(tmp_path, tiny_npz, capsys):
    for method in ("tap", "sp"):
        code = main(["protect", str(tiny_npz), "--out", str(tmp_path / method), "--method", method,
                     "--support", str(tiny_npz), "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and "needs no source task" in err and not (tmp_path / method).exists()


def test_one_class_folder_with_support_is_protected(tmp_path, capsys):
    folder = one_class_folder(tmp_path / "clinic")
    source = synthetic_npz(tmp_path / "source.npz", size=32, channels=3, classes=6)
    code = main(["protect", str(folder), "--out", str(tmp_path / "out"), "--support", str(source), "--support-classes", "2",
                 "--steps", "3", "--width", "4", "--pgd-steps", "2", "--batch-size", "16", "--quiet"])
    assert code == 0, capsys.readouterr().err
    files = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png"))
    assert files == sorted(f"melanoma/{i}.png" for i in range(24))  # only the owner's images
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [c["label"] for c in manifest["support"]["classes"]] == [1, 2]
