"""Image folder releases: the same tree out, formats, bit depths and bounds kept, originals untouched."""
import json

import numpy as np
import pytest
import tifffile
from builders import make_folder, medmnist_images, png_rgb16, rgb16, tree_digest
from PIL import Image

from medshield.cli import main
from medshield.data.folder import read_image


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("suffix, sixteen", [(".png", False), (".png", True), (".tif", True), (".bmp", False)])
def test_folder_release_mirrors_files_formats_bit_depths_and_bounds(capsys, tmp_path, medmnist_root, suffix, sixteen):
    images, labels, _, _ = medmnist_images(medmnist_root, "breastmnist", 40)
    root, _ = make_folder(tmp_path, images, labels, suffix, sixteen)
    before = tree_digest(root)
    out = tmp_path / "release"
    code, _, err = run(capsys, "protect", str(root), "--out", str(out), "--steps", "3", "--width", "4",
                       "--batch-size", "20", "--pgd-steps", "2", "--sparse", "--quiet")  # --sparse: L0 is checked too
    assert code == 0, err
    assert tree_digest(root) == before  # originals byte-identical
    written = tree_digest(out)
    assert set(written) == set(before) | {"manifest.json", "manifest.sig", "owner.pub", "restoration.sealed"}
    assert written["README.txt"] == before["README.txt"]
    limit = 8 * 257 if sixteen else 8
    for rel in before:
        if rel.endswith(suffix):
            with Image.open(root / rel) as a, Image.open(out / rel) as b:
                assert (a.format, a.mode) == (b.format, b.mode)
                diff = np.abs(np.asarray(b).astype(np.int64) - np.asarray(a).astype(np.int64))
            assert diff.max() <= limit and (diff > 0).mean() <= 0.10
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "folder" and manifest["measured"]["limit_linf"] == limit
    assert 0 < manifest["measured"]["linf"] <= limit


def test_rgb_jpeg_can_be_written_as_png(capsys, tmp_path, medmnist_root):
    images, labels, _, _ = medmnist_images(medmnist_root, "bloodmnist", 24)
    root, _ = make_folder(tmp_path, images, labels, ".jpg")
    out = tmp_path / "release"
    code, _, err = run(capsys, "protect", str(root), "--out", str(out), "--method", "random", "--jpeg-as-png", "--quiet")
    assert code == 0, err
    pngs = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert len(pngs) == 24 and not list(out.rglob("*.jpg"))
    with Image.open(out / pngs[0]) as image:
        assert image.mode == "RGB"
    assert json.loads((out / "manifest.json").read_text())["measured"]["linf"] <= 8


def test_sixteen_bit_rgb_png_and_tiff_release(capsys, tmp_path, medmnist_root):
    images, labels, _, _ = medmnist_images(medmnist_root, "bloodmnist", 24)
    images = rgb16(images)
    root = tmp_path / "owner_rgb16"
    for i, (image, label) in enumerate(zip(images, labels)):
        (root / f"class_{label}").mkdir(parents=True, exist_ok=True)
        if i % 2:
            tifffile.imwrite(root / f"class_{label}/img_{i:03d}.tif", image, photometric="rgb")
        else:
            (root / f"class_{label}/img_{i:03d}.png").write_bytes(png_rgb16(image))
    before = tree_digest(root)
    out = tmp_path / "release"
    code, _, err = run(capsys, "protect", str(root), "--out", str(out), "--method", "random", "--quiet")
    assert code == 0, err
    assert tree_digest(root) == before  # originals byte-identical
    assert set(tree_digest(out)) == set(before) | {"manifest.json", "manifest.sig", "owner.pub", "restoration.sealed"}
    linf = 0
    for i, rel in enumerate(sorted(before)):
        with Image.open(out / rel) as image:
            assert image.format == ("TIFF" if rel.endswith(".tif") else "PNG")
        if rel.endswith(".tif"):
            with tifffile.TiffFile(out / rel) as tif:
                page = tif.pages[0]
                assert (page.dtype, page.shape, page.photometric) == (np.uint16, (28, 28, 3), tifffile.PHOTOMETRIC.RGB)
        else:
            assert (out / rel).read_bytes()[24:26] == bytes([16, 2])  # IHDR: 16 bits, RGB
        diff = np.abs(read_image(out / rel).astype(np.int64) - read_image(root / rel).astype(np.int64))
        linf = max(linf, int(diff.max()))
    measured = json.loads((out / "manifest.json").read_text())["measured"]
    assert measured["limit_linf"] == 2056 and 0 < linf == measured["linf"] <= 2056
