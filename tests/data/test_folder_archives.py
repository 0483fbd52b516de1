"""Folders as owners hold them: split sub-folders, mixed gray and RGB, mixed sizes, duplicates
and leaks, and the odd files real archives contain."""
import json
import shutil

import numpy as np
import pytest
from PIL import Image, ImageFilter

from medshield.cli import main
from medshield.data.folder import load_folder, read_image
from medshield.errors import InputError

SIZES = (28, 40, 56)
QUICK = ("--method", "random", "--quiet")


def medmnist(root, flag):
    with np.load(root / f"{flag}.npz", allow_pickle=False) as npz:
        return {key: npz[key] for key in ("train_images", "train_labels", "test_images", "test_labels")}


def archive(tmp_path, medmnist_root, n_train=12, n_test=6):
    """Training/<class>/ and Testing/<class>/ from BreastMNIST (gray) and BloodMNIST (colour):
    gray and RGB, JPEG and PNG, three sizes, a train image copied into test, a .DS_Store."""
    gray, colour = medmnist(medmnist_root, "breastmnist"), medmnist(medmnist_root, "bloodmnist")
    root = tmp_path / "archive"
    for split, key, n in (("Training", "train", n_train), ("Testing", "test", n_test)):
        for i in range(n):
            label = int(gray[f"{key}_labels"][i % 12, 0] if i >= 2 else i % 2)  # both classes in every split
            side = SIZES[i % 3]
            folder = root / split / ("benign" if label else "malignant")
            folder.mkdir(parents=True, exist_ok=True)
            g = Image.fromarray(gray[f"{key}_images"][i]).resize((side, side))
            c = Image.fromarray(colour[f"{key}_images"][i]).resize((side, side))
            kind = i % 4
            image, name = [(g, f"g{i}.png"), (c, f"c{i}.png"), (g.convert("RGB"), f"gr{i}.png"), (c, f"c{i}.jpg")][kind]
            image.save(folder / name, quality=95)
    source = root / "Training" / "malignant" / "g0.png"
    shutil.copy(source, root / "Testing" / "malignant" / "copy_of_g0.png")
    (root / ".DS_Store").write_bytes(b"\0\0\0\1Bud1\0")
    (root / "Training" / "._g0.png").write_bytes(b"\0\5\26\7AppleDouble")
    (root / "Thumbs.db").write_bytes(b"thumbnails of the originals")
    (root / "Training" / "notes.txt").write_text("owner's notes\n")
    return root


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def images_of(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.suffix in (".png", ".jpg")
                  and not p.name.startswith("."))


def test_archive_is_protected_as_it_is_and_restored_pixel_identical(capsys, caplog, tmp_path, medmnist_root):
    """The issue's Must-show: the release mirrors names, formats and modes; the bounds hold per
    file on the written bytes (JPEG re-encoding recorded as lossy); restore gives every file back."""
    root = archive(tmp_path, medmnist_root)
    out = tmp_path / "release"
    code, _, err = run(capsys, "protect", root, "--out", out, *QUICK)
    assert code == 0, err
    said = caplog.text
    assert "LEAK: 1 val/test images also sit in train" in said and "Testing/malignant/copy_of_g0.png" in said
    assert "skipped 3 hidden or system files" in said and "copied unchanged: Training/notes.txt" in said
    assert "10 gray and 9 colour images; protecting in colour" in said
    assert "images of 3 sizes (28x28, 40x40, 56x56); the source model works at 40 x 40" in said
    assert images_of(out) == images_of(root)
    assert not (out / ".DS_Store").exists() and not (out / "Thumbs.db").exists() and not (out / "Training" / "._g0.png").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["layout"] == {"kind": "split-folders", "splits": {"Testing": "test", "Training": "train"}}
    assert manifest["working"]["size"] == 40 and manifest["working"]["sizes"] == 3 and manifest["working"]["channels"] == 3
    assert manifest["duplicates"]["held_out_images_in_train"] == 1 and manifest["skipped_files"] == 3
    assert manifest["other_files"] == ["Training/notes.txt"]
    for rel in images_of(root):
        with Image.open(root / rel) as a, Image.open(out / rel) as b:
            assert (a.format, a.mode, a.size) == (b.format, b.mode, b.size), rel
        diff = np.abs(read_image(out / rel).astype(np.int64) - read_image(root / rel).astype(np.int64))
        if rel.startswith("Testing"):
            assert diff.max() == 0  # only train images are protected
        elif rel.endswith(".png"):
            assert 0 < diff.max() <= 8, rel  # the bound on the written bytes, each file at its own size
    assert manifest["measured"]["lossy_jpeg_output"] is True
    restored = tmp_path / "restored"
    assert run(capsys, "restore", out, "--out", restored)[0] == 0
    assert images_of(restored) == images_of(root)
    for rel in images_of(root):
        assert np.array_equal(read_image(restored / rel), read_image(root / rel)), rel
        with Image.open(root / rel) as a, Image.open(restored / rel) as b:
            assert (a.format, a.mode) == (b.format, b.mode)
    code, text, _ = run(capsys, "verify", out)
    assert code == 0 and "warning  duplicates" in text and "1 val/test images also in train" in text


def test_mixed_sizes_keep_the_bounds_per_file_with_sparse_noise(capsys, tmp_path, medmnist_root):
    root = archive(tmp_path, medmnist_root)
    out = tmp_path / "release"
    code, _, err = run(capsys, "protect", root, "--out", out, "--jpeg-as-png", "--steps", "2", "--width", "4",
                       "--batch-size", "8", "--pgd-steps", "1", "--sparse", "--size", "32", "--quiet")
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["working"]["size"] == 32 and manifest["working"]["size_chosen"] == "--size"
    limit_l0 = manifest["measured"]["limit_l0"]
    assert limit_l0 < 1
    for rel in images_of(root):
        if rel.startswith("Training"):
            released = out / rel.replace(".jpg", ".png")
            diff = np.abs(read_image(released).astype(np.int64) - read_image(root / rel).astype(np.int64))
            moved = diff.any(axis=-1) if diff.ndim == 3 else diff > 0
            assert diff.max() <= 8 and moved.mean() <= limit_l0, rel
    code, text, _ = run(capsys, "verify", out)
    assert code == 0 and "ok  bounds" in text


def test_split_folders_are_case_insensitive_and_must_share_classes(tmp_path):
    root = tmp_path / "set"
    for split, classes in (("TRAIN", ("a", "b")), ("Valid", ("a", "b")), ("test", ("a", "b"))):
        for label in classes:
            (root / split / label).mkdir(parents=True)
            Image.fromarray(np.full((8, 8), 9 if label == "a" else 200, np.uint8)).save(root / split / label / f"{split}.png")
    data = load_folder(root)
    assert data.class_names == ["a", "b"] and sorted(set(data.split)) == ["test", "train", "val"]
    assert data.notes["layout"]["splits"] == {"TRAIN": "train", "Valid": "val", "test": "test"}
    shutil.rmtree(root / "test" / "b")
    with pytest.raises(InputError, match="test/ lacks b"):
        load_folder(root)
    (root / "training" / "a").mkdir(parents=True)
    shutil.copy(root / "TRAIN" / "a" / "TRAIN.png", root / "training" / "a" / "more.png")
    with pytest.raises(InputError, match="are both the train split"):
        load_folder(root)


def test_split_folders_beside_other_folders_are_refused(tmp_path):
    for top in ("train", "misc"):
        (tmp_path / top / "a").mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / top / "a" / "x.png")
    with pytest.raises(InputError, match="misc do not"):
        load_folder(tmp_path)


def test_rgb_with_equal_channels_is_gray_and_keeps_its_mode(capsys, tmp_path, medmnist_root):
    images = medmnist(medmnist_root, "breastmnist")["train_images"][:16]
    root = tmp_path / "gray"
    for i, image in enumerate(images):
        (root / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        (Image.fromarray(image).convert("RGB") if i % 2 else Image.fromarray(image)).save(root / f"c{i % 2}" / f"{i}.png")
    data = load_folder(root)
    assert data.channels == 1 and data.images("train").shape == (16, 28, 28)
    out = tmp_path / "release"
    assert run(capsys, "protect", root, "--out", out, *QUICK)[0] == 0
    for i in range(16):
        rel = f"c{i % 2}/{i}.png"
        with Image.open(out / rel) as written:
            assert written.mode == ("RGB" if i % 2 else "L")
            pixels = np.asarray(written)
        if i % 2:
            assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()


def test_channels_flag_chooses_gray_for_a_mixed_folder(capsys, tmp_path, medmnist_root):
    root = archive(tmp_path, medmnist_root)
    data = load_folder(root, channels=1)
    assert data.images("train").ndim == 3 and data.notes["working"]["channels_chosen"] == "--channels"
    assert load_folder(root).images("train").shape[-1] == 3


def test_duplicates_within_train_get_the_same_noise(capsys, caplog, tmp_path, medmnist_root):
    images = medmnist(medmnist_root, "breastmnist")["train_images"][:12]
    # image 2 smoothed, so that its re-sampled copy stays near it on the generated stand-in data too
    images[2] = np.asarray(Image.fromarray(images[2]).filter(ImageFilter.GaussianBlur(2)))
    root = tmp_path / "dups"
    for i, image in enumerate(images):
        (root / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / f"c{i % 2}" / f"{i}.png")
    shutil.copy(root / "c0" / "0.png", root / "c1" / "copy.png")
    Image.fromarray(images[2]).resize((56, 56)).resize((28, 28)).save(root / "c0" / "near.png")  # re-sampled copy
    data = load_folder(root)
    kinds = {frozenset((data.files[i], data.files[j])): kind for i, j, kind in data.pairs}
    assert kinds[frozenset(("c0/0.png", "c1/copy.png"))] == "byte-identical"
    assert kinds[frozenset(("c0/2.png", "c0/near.png"))] == "near-identical"
    out = tmp_path / "release"
    code, _, err = run(capsys, "protect", root, "--out", out, *QUICK)
    assert code == 0, err
    assert "1 byte-identical and 1 near-identical pairs of train images" in caplog.text
    assert (out / "c0" / "0.png").read_bytes() != (root / "c0" / "0.png").read_bytes()
    assert np.array_equal(read_image(out / "c0" / "0.png"), read_image(out / "c1" / "copy.png"))


def test_exif_rotated_jpeg_is_read_upright_and_keeps_its_tag(capsys, tmp_path):
    root = tmp_path / "exif"
    upright = np.zeros((20, 30), np.uint8)
    upright[:5] = 250  # a bright band at the top, as seen
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # stored sideways, tag 6 turns it back
        exif = Image.Exif()
        exif[0x0112] = 6
        stored.save(root / label / "x.jpg", quality=100, exif=exif)
    read = read_image(root / "a" / "x.jpg")
    assert read.shape == (20, 30) and read[:5].mean() > 200 and read[-5:].mean() < 50
    out = tmp_path / "release"
    assert run(capsys, "protect", root, "--out", out, *QUICK)[0] == 0
    with Image.open(out / "a" / "x.jpg") as written:
        assert written.getexif()[0x0112] == 6 and written.size == (20, 30)
    assert read_image(out / "a" / "x.jpg")[:5].mean() > 200


def test_opaque_alpha_is_rgb_and_other_modes_get_one_line_or_convert(capsys, tmp_path):
    root = tmp_path / "modes"
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        rgba = np.dstack([rng.integers(0, 255, (16, 16, 3), dtype=np.uint8), np.full((16, 16), 255, np.uint8)])
        Image.fromarray(rgba).save(root / label / "opaque.png")
    assert read_image(root / "a" / "opaque.png").shape == (16, 16, 3)
    rgba[0, 0, 3] = 10
    Image.fromarray(rgba).save(root / "a" / "clear.png")
    Image.fromarray(rgba[..., :3]).convert("P").save(root / "b" / "palette.png")
    Image.fromarray(rgba[..., :3]).convert("CMYK").save(root / "b" / "print.jpg")
    for name, said in (("a/clear.png", "RGBA image with 1 transparent pixels"), ("b/palette.png", "palette image"),
                       ("b/print.jpg", "CMYK image")):
        with pytest.raises(InputError, match=said) as caught:
            read_image(root / name)
        assert "--convert" in str(caught.value) and "\n" not in str(caught.value)
    code, _, err = run(capsys, "protect", root, "--out", tmp_path / "refused", *QUICK)
    assert code == 2 and len(err.strip().splitlines()) == 1
    out = tmp_path / "release"
    assert run(capsys, "protect", root, "--out", out, "--convert", *QUICK)[0] == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["converted"] == {"a/clear.png": "RGBA -> RGB", "b/palette.png": "P -> RGB", "b/print.jpg": "CMYK -> RGB"}
    with Image.open(out / "a" / "opaque.png") as written:
        assert written.mode == "RGBA"
    restored = tmp_path / "restored"
    assert run(capsys, "restore", out, "--out", restored)[0] == 0
    for name in ("a/clear.png", "b/palette.png", "b/print.jpg"):
        assert (restored / name).read_bytes() == (root / name).read_bytes()
    assert np.array_equal(read_image(restored / "a" / "opaque.png"), read_image(root / "a" / "opaque.png"))


def test_validation_decodes_each_file_once_and_keeps_none(tmp_path, monkeypatch):
    """Memory independent of the number of files: the validation pass holds one decoded image."""
    from medshield.data import folder

    for i in range(6):
        (tmp_path / f"c{i % 2}").mkdir(exist_ok=True)
        Image.fromarray(np.full((10 + i, 10 + i), 20 * i, np.uint8)).save(tmp_path / f"c{i % 2}" / f"{i}.png")
    decoded = []
    read = folder.read_pixels
    monkeypatch.setattr(folder, "read_pixels", lambda path, convert=False: decoded.append(path) or read(path, convert))
    data = load_folder(tmp_path)
    assert len(decoded) == 6 and data.caches == {} and data.size == 12


def test_a_mixed_size_release_opens_at_its_working_size(capsys, tmp_path, medmnist_root):
    """Victims (evaluate, grid) and the originals restored for --compare see the working size."""
    from medshield.release import open_dataset, original_of

    root = archive(tmp_path, medmnist_root)
    out = tmp_path / "release"
    assert run(capsys, "protect", root, "--out", out, "--size", "32", *QUICK)[0] == 0
    data, release = open_dataset(str(out))
    assert data.images("train").shape[1:] == (32, 32, 3) and data.images("test").shape[1:] == (32, 32, 3)
    original = original_of(release)
    assert original.images("train").shape == data.images("train").shape
    assert np.abs(original.images("train").astype(int) - data.images("train").astype(int)).max() <= 8


def test_the_report_shows_the_folder_and_its_leak(capsys, tmp_path, medmnist_root):
    root = archive(tmp_path, medmnist_root)
    out = tmp_path / "release"
    assert run(capsys, "protect", root, "--out", out, *QUICK)[0] == 0
    assert run(capsys, "report", out)[0] == 0
    page = (tmp_path / "release-report" / "index.html").read_text()
    assert "<h2>The folder</h2>" in page and "split-folders" in page
    assert "Warning: 1 val/test images also sit in train" in page and "copy_of_g0.png" in page
