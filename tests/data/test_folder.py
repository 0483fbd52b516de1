"""Image folders in: layouts, labels, formats, bit depths and the errors that name the file."""
import csv
import re
import json

import numpy as np
import pytest
import tifffile
from builders import make_folder, medmnist_images, png_rgb16, rgb16
from PIL import Image

from medshield.cli import main
from medshield.data.folder import load_folder, read_image
from medshield.errors import InputError


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_csv_labels_with_splits_protect_train_only_and_evaluate(capsys, tmp_path, medmnist_root):
    train, train_labels, test, test_labels = medmnist_images(medmnist_root, "breastmnist", 30)
    images, labels = np.concatenate([train, test]), np.concatenate([train_labels, test_labels])
    split = ["train"] * 30 + ["test"] * 30
    root, rows = make_folder(tmp_path, images, labels, ".png", split=split)
    labels_csv = tmp_path / "labels.csv"
    with open(labels_csv, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label", "split"])
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "release"
    code, _, err = run(capsys, "protect", str(root), "--labels", str(labels_csv), "--out", str(out), "--method", "random", "--quiet")
    assert code == 0, err
    for row in rows:
        same = (root / row["path"]).read_bytes() == (out / row["path"]).read_bytes()
        assert same == (row["split"] == "test")
    assert (out / "medshield-labels.csv").is_file()
    code, _, err = run(capsys, "evaluate", str(out), "--compare", "--arch", "small-cnn", "--width", "8", "--epochs", "1",
                       "--json", str(tmp_path / "e.json"), "--quiet")
    assert code == 0, err
    report = json.loads((tmp_path / "e.json").read_text())
    assert report["dataset"] == root.name and 0 <= report["clean"]["test_accuracy"] <= 1


def test_folder_validation_errors_name_the_file(capsys, tmp_path, medmnist_root):
    images, labels, _, _ = medmnist_images(medmnist_root, "breastmnist", 6)
    root, rows = make_folder(tmp_path, images, labels, ".png")
    Image.fromarray(np.full((28, 28), 300, np.uint16)).save(root / "class_1" / "zz_deep.png")
    code, _, err = run(capsys, "protect", str(root), "--out", str(tmp_path / "x"))
    assert code == 2 and "zz_deep.png" in err and "bit depth" in err
    (root / "class_1" / "zz_deep.png").unlink()
    (root / "class_0" / "broken.png").write_bytes(b"not a png")
    code, _, err = run(capsys, "protect", str(root), "--out", str(tmp_path / "x"))
    assert code == 2 and "broken.png" in err and "cannot read" in err
    (root / "class_0" / "broken.png").unlink()
    labels_csv = tmp_path / "dup.csv"
    labels_csv.write_text("path,label\n" + "".join(f"{r['path']},{r['label']}\n" for r in rows + rows[:1]))
    code, _, err = run(capsys, "protect", str(root), "--labels", str(labels_csv), "--out", str(tmp_path / "x"))
    assert code == 2 and "listed twice" in err and rows[0]["path"] in err
    code, _, err = run(capsys, "protect", str(root), "--out", str(root / "inside"))
    assert code == 2 and "inside the input folder" in err
    assert not (tmp_path / "x").exists()


def test_sixteen_bit_values_load_as_uint16(tmp_path, medmnist_root):
    images, _, _, _ = medmnist_images(medmnist_root, "breastmnist", 4)
    root, _ = make_folder(tmp_path, images, np.array([0, 1, 0, 1]), ".png", sixteen=True)
    data = load_folder(root)
    assert data.images("train").dtype == np.uint16 and data.images("train").max() > 255


def test_a_single_label_is_rejected_with_the_way_out(capsys, tmp_path, medmnist_root):
    images, _, _, _ = medmnist_images(medmnist_root, "breastmnist", 3)
    root, _ = make_folder(tmp_path, images, np.zeros(3, int), ".png")
    code, _, err = run(capsys, "protect", str(root), "--out", str(tmp_path / "x"))
    assert code == 2 and "holds one class" in err and "--support SOURCE" in err
    code, _, err = run(capsys, "evaluate", str(root))
    assert code == 2 and "one class" in err


@pytest.mark.parametrize("interlace", [False, True])
def test_sixteen_bit_rgb_png_reads_all_16_bits(tmp_path, interlace):
    array = rgb16(np.random.default_rng(1).integers(0, 256, (13, 11, 3)))
    (tmp_path / "a.png").write_bytes(png_rgb16(array, interlace))
    read = read_image(tmp_path / "a.png")
    assert read.dtype == np.uint16 and np.array_equal(read, array)


@pytest.mark.parametrize("name, said", [("palette.png", "palette image.*--convert"), ("alpha16.tif", "not 16-bit RGB")])
def test_palette_and_alpha_images_are_still_rejected(tmp_path, name, said):
    if name == "palette.png":
        Image.new("P", (4, 4)).save(tmp_path / name)
    else:
        tifffile.imwrite(tmp_path / name, np.zeros((4, 4, 4), np.uint16), photometric="rgb", extrasamples=["unassalpha"])
    with pytest.raises(InputError, match=said):
        read_image(tmp_path / name)


@pytest.mark.parametrize("listed", ["../evil/x.png", "ABSOLUTE", "link/x.png", "loop/x.png"])
def test_labels_csv_paths_outside_the_folder_are_refused_before_any_work(capsys, tmp_path, medmnist_root, listed):
    images, labels, _, _ = medmnist_images(medmnist_root, "breastmnist", 4)
    root, _ = make_folder(tmp_path, images, labels, ".png")
    outside = tmp_path / "evil"
    outside.mkdir()
    Image.fromarray(images[0]).save(outside / "x.png")
    (root / "link").symlink_to(outside)  # a symlink out of the folder
    (root / "loop").symlink_to(root / "loop")
    listed = str(outside / "x.png") if listed == "ABSOLUTE" else listed
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label\n" + "".join(f"{p.relative_to(root).as_posix()},{p.parent.name}\n"
                                            for p in sorted(root.rglob("*.png")) if "link" not in p.parts) + f"{listed},0\n")
    code, _, err = run(capsys, "protect", str(root), "--labels", str(csv), "--out", str(tmp_path / "x"))
    assert code == 2 and err.count("\n") == 1 and ("outside" in err or "without '..'" in err or "symlink loop" in err), err
    assert not (tmp_path / "x").exists()


def test_test_labels_that_no_train_image_has_are_refused(capsys, tmp_path, medmnist_root):
    images, labels, _, _ = medmnist_images(medmnist_root, "breastmnist", 6)
    split = ["train", "train", "train", "train", "test", "test"]
    root, rows = make_folder(tmp_path, images, np.array([0, 1, 0, 1, 0, 1]), ".png", split=split)
    rows[-1]["label"] = "class_7"
    labels_csv = tmp_path / "labels.csv"
    labels_csv.write_text("path,label,split\n" + "".join(f"{r['path']},{r['label']},{r['split']}\n" for r in rows))
    code, _, err = run(capsys, "protect", str(root), "--labels", str(labels_csv), "--out", str(tmp_path / "x"))
    assert code == 2 and "test images have label(s) ['class_7'] that no train image has" in err


@pytest.mark.parametrize("limit", [300, 500])  # 784 pixels: Pillow's error above 2x the limit, its warning above 1x
def test_images_over_the_pixel_limit_are_one_error(capsys, tmp_path, medmnist_root, monkeypatch, limit):
    images, labels, _, _ = medmnist_images(medmnist_root, "breastmnist", 4)
    root, _ = make_folder(tmp_path, images, labels, ".png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    code, _, err = run(capsys, "protect", str(root), "--out", str(tmp_path / "x"))
    assert code == 2 and err.count("\n") == 1 and "decompression bomb" in err and not (tmp_path / "x").exists()


def test_a_truncated_png_is_one_error(capsys, tmp_path, medmnist_root):
    images, labels, _, _ = medmnist_images(medmnist_root, "breastmnist", 4)
    root, _ = make_folder(tmp_path, images, labels, ".png")
    victim = sorted(root.rglob("*.png"))[0]
    victim.write_bytes(victim.read_bytes()[:60])
    code, _, err = run(capsys, "protect", str(root), "--out", str(tmp_path / "x"))
    assert code == 2 and err.count("\n") == 1 and victim.name in err and not (tmp_path / "x").exists()


@pytest.mark.parametrize("content, message", [
    (b"path,label\n\xff\xfeclass_0/img_000.png,0\n", "not UTF-8"),
    (b"path,label\nclass_0/img_000.png\n", "fewer fields"),
    (b"path,label\nclass_0/img_000.png,0,extra\n", "more fields"),
    (b"path,label\nclass_0/img\x00_000.png,0\n", "NUL byte"),
])
def test_malformed_labels_files_are_one_error(capsys, tmp_path, medmnist_root, content, message):
    images, labels, _, _ = medmnist_images(medmnist_root, "breastmnist", 4)
    root, _ = make_folder(tmp_path, images, labels, ".png")
    labels_csv = tmp_path / "labels.csv"
    labels_csv.write_bytes(content)
    code, _, err = run(capsys, "protect", str(root), "--labels", str(labels_csv), "--out", str(tmp_path / "x"))
    assert code == 2 and err.count("\n") == 1 and re.search(message, err), err


def test_a_symlinked_image_pointing_outside_the_folder_is_refused(capsys, tmp_path, medmnist_root):
    images, labels, _, _ = medmnist_images(medmnist_root, "breastmnist", 4)
    root, _ = make_folder(tmp_path, images, labels, ".png")
    Image.fromarray(images[0]).save(tmp_path / "elsewhere.png")
    (root / f"class_{labels[0]}" / "linked.png").symlink_to(tmp_path / "elsewhere.png")
    code, _, err = run(capsys, "protect", str(root), "--out", str(tmp_path / "x"))
    assert code == 2 and err.count("\n") == 1 and "outside" in err and not (tmp_path / "x").exists()
