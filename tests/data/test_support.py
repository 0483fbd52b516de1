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
from medshield.protect import PROTECTIONS, list_protections

FAST = dict(steps=3, width=4, batch_size=32, pgd_steps=2)


def one_class_folder(root, n=24, size=28):
    """An institution's folder of one diagnosis: gray PNGs in one sub-folder."""
    rng = np.random.default_rng(0)
    (root / "melanoma").mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size, size), dtype=np.uint8)).save(root / "melanoma" / f"{i}.png")
    return root


def test_drawn_classes_follow_the_seed():
    pool = [("a", c) for c in range(5)] + [("b", c) for c in range(3)]
    assert draw_classes(pool, 3, 0) == draw_classes(pool, 3, 0)
    assert len({tuple(draw_classes(pool, 3, seed)) for seed in range(6)}) > 1
    with pytest.raises(InputError, match="fewer than the 9 asked for"):
        draw_classes(pool, 9, 0)


def test_support_of_another_size_and_channel_count_is_converted(tmp_path):
    owner = load(str(synthetic_npz(tmp_path / "owner.npz", classes=2)))  # 28 px gray
    source = load(str(synthetic_npz(tmp_path / "source.npz", size=32, channels=3, classes=6)))
    other = load(str(synthetic_npz(tmp_path / "other.npz", size=20, classes=2)))  # gray, smaller
    combined = WithSupport(owner, {"source.npz": source, "other.npz": other}, 3, seed=1)
    images, labels = combined.images("train"), combined.labels("train")
    assert images.shape[1:] == (28, 28) and images.dtype == np.uint8
    assert np.array_equal(images[: len(owner.images("train"))], owner.images("train"))
    assert set(labels[len(owner.images("train")):]) == {2, 3, 4} and combined.num_classes == 5
    assert [c["label"] for c in combined.record["classes"]] == [2, 3, 4]
    assert combined.record["sources"] == ["source.npz", "other.npz"]
    gray = convert(np.full((1, 8, 8), 255, np.uint8), 255, np.zeros((4, 4, 3), np.uint16), 65535)
    assert gray.shape == (1, 4, 4, 3) and gray.dtype == np.uint16 and int(gray.min()) == 65535


def test_support_images_never_reach_the_release(tmp_path):
    owner_path = synthetic_npz(tmp_path / "owner.npz", classes=2, n_train=40)
    arrays = dict(np.load(owner_path))
    for split in ("train", "val", "test"):
        arrays[f"{split}_labels"][:] = 1  # an owner holding one class
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
    assert support["sources"] == ["source.npz"] and len(support["classes"]) == 3
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
    for method in (name for name in list_protections() if not PROTECTIONS.get(name).accepts_support):
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


def test_an_institution_holding_some_classes_protects_them_with_support_and_leaves_the_rest(tmp_path):
    """Appendix D.2's setting: the generation sees only the held classes (plus support); the others stay clean."""
    owner_path = synthetic_npz(tmp_path / "owner.npz", classes=3, n_train=60)
    source = synthetic_npz(tmp_path / "source.npz", classes=6, seed=3)
    original = load(str(owner_path))
    release = pipeline.protect(str(owner_path), tmp_path / "out", method="salm", params=FAST, progress=False,
                               support=str(source), support_classes=2, classes=[1])
    labels = original.labels("train")
    changed = (release.data.images("train") != original.images("train")).reshape(len(labels), -1).any(axis=1)
    assert changed[labels == 1].all() and not changed[labels != 1].any()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["support"]["owner_images"] == int((labels == 1).sum())
    assert [c["label"] for c in manifest["support"]["classes"]] == [3, 4]
