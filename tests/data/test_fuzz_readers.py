"""Hostile input, fuzzed: mutated .npz, PNG, TIFF and DICOM files end in success or in exit 2 with one
line, never a traceback (exit 1) and never a written output. The files are real where the shared
MedMNIST folder is (BreastMNIST, images made from it, pydicom's sample CT). The method is
``random``: no training, so every case costs only the reading and the writing it triggers.

Derandomized, so CI tries the same cases every run; ``benchmarks/fuzz_readers.py`` runs many more
through ``MEDSHIELD_FUZZ_EXAMPLES`` and tallies the outcomes each case appends to ``MEDSHIELD_FUZZ_LOG``.
"""
import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image
from pydicom.data import get_testdata_file

from medshield.cli import main

FUZZ = settings(max_examples=int(os.environ.get("MEDSHIELD_FUZZ_EXAMPLES", 30)), deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def mutate(data: bytes, cut: int, flips: list[tuple[int, int]]) -> bytes:
    """``data`` truncated to ``cut`` bytes (when shorter than it), with some bytes XOR-ed."""
    out = bytearray(data[: max(1, min(cut, len(data)))])
    for offset, mask in flips:
        out[offset % len(out)] ^= mask or 1
    return bytes(out)


MUTATIONS = dict(cut=st.integers(1, 1 << 20), flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=6))


def protect_ends_cleanly(capsys, target: str, out, *extra, label: str | None = None) -> None:
    code = main(["protect", target, "--out", str(out), "--method", "random", "--quiet", *extra])
    err = capsys.readouterr().err
    if os.environ.get("MEDSHIELD_FUZZ_LOG"):
        with open(os.environ["MEDSHIELD_FUZZ_LOG"], "a") as log:
            log.write(json.dumps({"input": label or Path(target).suffix or "folder", "exit": code, "lines": err.count("\n"),
                                  "output_left": code != 0 and out.exists(), "error": err.strip()[:200]}) + "\n")
    assert code in (0, 2), err  # 1 is an unexpected failure: a traceback reached the user
    if code == 2:
        assert err.count("\n") == 1 and err.startswith("medshield: error:"), err
        assert not out.exists()
    shutil.rmtree(out, ignore_errors=True)
    out.with_name(out.name + ".key").unlink(missing_ok=True)


@pytest.fixture(scope="module")
def npz_bytes(medmnist_root) -> bytes:
    return (medmnist_root / "breastmnist.npz").read_bytes()


@FUZZ
@given(**MUTATIONS)
def test_mutated_npz_files(capsys, tmp_path_factory, npz_bytes, cut, flips):
    work = tmp_path_factory.mktemp("fuzz")
    (work / "tiny.npz").write_bytes(mutate(npz_bytes, cut, flips))
    protect_ends_cleanly(capsys, str(work / "tiny.npz"), work / "out")


@FUZZ
@given(member=st.sampled_from(["train_images", "train_labels", "test_images", "test_labels"]), **MUTATIONS)
def test_npz_whose_member_is_mutated_inside_a_valid_archive(capsys, tmp_path_factory, npz_bytes, member, cut, flips):
    """Past the zip layer: one .npy member's bytes truncated or flipped (header lies included), CRCs valid."""
    work = tmp_path_factory.mktemp("fuzz")
    with zipfile.ZipFile(io.BytesIO(npz_bytes)) as source, zipfile.ZipFile(work / "tiny.npz", "w") as target:
        for name in source.namelist():
            data = source.read(name)
            target.writestr(name, mutate(data, cut, flips) if name == f"{member}.npy" else data)
    protect_ends_cleanly(capsys, str(work / "tiny.npz"), work / "out")


def rewritten_npz(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@FUZZ
@given(key=st.sampled_from(["train_images", "train_labels", "test_images", "test_labels"]),
       change=st.sampled_from(["float", "int64", "negative", "huge", "shape", "empty", "scalar", "drop"]))
def test_npz_arrays_that_lie_about_their_content(capsys, tmp_path_factory, npz_bytes, key, change):
    with np.load(io.BytesIO(npz_bytes), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    value = arrays[key]
    arrays[key] = {"float": value.astype(np.float32), "int64": value.astype(np.int64), "negative": value.astype(np.int16) - 300,
                   "huge": value.astype(np.int64) + 10**6, "shape": value.reshape(len(value), -1)[:, :5],
                   "empty": value[:0], "scalar": np.array(3), "drop": None}[change]
    if arrays[key] is None:
        del arrays[key]
    work = tmp_path_factory.mktemp("fuzz")
    (work / "tiny.npz").write_bytes(rewritten_npz(arrays))
    protect_ends_cleanly(capsys, str(work / "tiny.npz"), work / "out")


def test_an_npz_whose_member_is_not_an_array_is_refused(capsys, tmp_path):
    path = tmp_path / "tiny.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("train_images.npy", b"not an array")
    protect_ends_cleanly(capsys, str(path), tmp_path / "out")


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory, medmnist_root):
    """A two-class folder of PNGs, TIFFs and JPEGs (4 each) made from BreastMNIST's first train images."""
    root = tmp_path_factory.mktemp("images") / "owner"
    with np.load(medmnist_root / "breastmnist.npz", allow_pickle=False) as npz:
        images, labels = npz["train_images"][:12], npz["train_labels"][:12, 0]
    for i, (image, label) in enumerate(zip(images, labels)):
        (root / f"c{label}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / f"c{label}" / f"{i:02d}{('.png', '.tif', '.jpg')[i % 3]}")
    return root


def protect_with_one_file_mutated(capsys, tmp_path_factory, source, pick, cut, flips, *extra) -> None:
    """A copy of the folder ``source`` with its ``pick``-th file (in name order) mutated, protected."""
    work = tmp_path_factory.mktemp("fuzz")
    folder = shutil.copytree(source, work / source.name)
    victim = sorted(p for p in folder.rglob("*") if p.is_file())[pick]
    victim.write_bytes(mutate(victim.read_bytes(), cut, flips))
    protect_ends_cleanly(capsys, str(folder), work / "out", *extra)


@FUZZ
@given(pick=st.integers(0, 11), **MUTATIONS)
def test_mutated_png_tiff_and_jpeg_files(capsys, tmp_path_factory, image_folder, pick, cut, flips):
    protect_with_one_file_mutated(capsys, tmp_path_factory, image_folder, pick, cut, flips)


@pytest.fixture(scope="module")
def dicom_series(tmp_path_factory):
    root = tmp_path_factory.mktemp("dicom") / "series"
    root.mkdir()
    rows = []
    for i in range(6):
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        ds.SOPInstanceUID = f"1.2.3.{i + 1}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(root / f"s{i}.dcm", enforce_file_format=True)
        rows.append(f"s{i}.dcm,{i % 2},{'test' if i >= 4 else 'train'}\n")
    (root.parent / "labels.csv").write_text("path,label,split\n" + "".join(rows))
    return root


@FUZZ
@given(pick=st.integers(0, 5), **MUTATIONS)
def test_mutated_dicom_files(capsys, tmp_path_factory, dicom_series, pick, cut, flips):
    protect_with_one_file_mutated(capsys, tmp_path_factory, dicom_series, pick, cut, flips,
                                  "--labels", str(dicom_series.parent / "labels.csv"))


@pytest.mark.parametrize("drop", ["PixelData", "Rows", "BitsStored", "PhotometricInterpretation"])
def test_dicom_without_required_elements_is_one_error(capsys, tmp_path, dicom_series, drop):
    folder = shutil.copytree(dicom_series, tmp_path / "series")
    ds = pydicom.dcmread(folder / "s0.dcm")
    delattr(ds, drop)
    ds.save_as(folder / "s0.dcm", enforce_file_format=True)
    protect_ends_cleanly(capsys, str(folder), tmp_path / "out", "--labels", str(dicom_series.parent / "labels.csv"))


@FUZZ
@given(blocks=st.integers(1, 8), member=st.sampled_from(["train_images", "train_labels", "test_images"]),
       lie=st.sampled_from(["declared", "beyond"]))
def test_zip_bombs_are_refused_before_they_inflate(capsys, tmp_path_factory, blocks, member, lie):
    """A member of up to 537 MB of deflated zeros (a few hundred kB on disk), under a limit of 64 MB: either its
    header declares it all ("declared") or declares 10 bytes and the rest follows ("beyond")."""
    from test_bounded import BLOCK, zip_bomb

    work = tmp_path_factory.mktemp("fuzz")
    path = zip_bomb(work / "tiny.npz", blocks, member=f"{member}.npy", declared=None if lie == "declared" else 10)
    assert path.stat().st_size < blocks * BLOCK // 500
    protect_ends_cleanly(capsys, str(path), work / "out", "--max-input-bytes", str(64 << 20), label="zip bomb")


@FUZZ
@given(length=st.integers(10_001, 1 << 20), member=st.sampled_from(["train_images", "test_labels"]))
def test_oversized_npy_headers_are_refused(capsys, tmp_path_factory, npz_bytes, length, member):
    """A member whose header claims up to 1 MB of text (numpy reads at most 10 kB of header)."""
    import struct

    text = b"{'descr': '|u1', 'fortran_order': False, 'shape': (10,), }" + b" " * length + b"\n"
    work = tmp_path_factory.mktemp("fuzz")
    with zipfile.ZipFile(io.BytesIO(npz_bytes)) as source, zipfile.ZipFile(work / "tiny.npz", "w") as target:
        for name in source.namelist():
            data = source.read(name)
            target.writestr(name, b"\x93NUMPY\x02\x00" + struct.pack("<I", len(text)) + text + bytes(10)
                            if name == f"{member}.npy" else data)
    protect_ends_cleanly(capsys, str(work / "tiny.npz"), work / "out", label="oversized .npy header")
