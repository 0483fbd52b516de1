"""Inputs that cannot exhaust the machine: an ``.npz`` member's size is known from its header before
anything is inflated, and refused above the limit; a member holding more than its header says, an
oversized header, an image declaring too many bytes are one line each.

The zip bomb here is genuine: 6 GB of zeros deflated into about 6 MB (each 64 MiB block compressed
once, after a full flush, and repeated), with the right CRC, the shape of the one that took 236 s
and 6.7 GB of memory before the fix.
"""
import functools
import io
import json
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medshield.cli import main

BLOCK = 1 << 26  # 64 MiB of zeros per repeated deflate block
SRC = Path(__file__).resolve().parents[2] / "src"


@functools.cache
def zeros_block() -> bytes:
    """64 MiB of zeros deflated after a full flush: the same bytes wherever in a stream they go."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(bytes(BLOCK)) + compressor.flush(zlib.Z_FULL_FLUSH)


def npy_header(shape, descr="|u1") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def zip_bomb(path: Path, blocks: int, member: str = "train_images.npy", declared: int | None = None) -> Path:
    """A one-member ``.npz`` whose member inflates to an ``.npy`` header and ``blocks`` x 64 MiB of zeros;
    the header declares them all, or ``declared`` bytes (then the rest lies beyond it)."""
    header = npy_header((blocks * BLOCK if declared is None else declared,))
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = compressor.compress(header) + compressor.flush(zlib.Z_FULL_FLUSH)
    data = start + zeros_block() * blocks + compressor.flush()
    crc, zeros = zlib.crc32(header), bytes(BLOCK)
    for _ in range(blocks):
        crc = zlib.crc32(zeros, crc)
    size, name = len(header) + blocks * BLOCK, member.encode()
    zip64 = struct.pack("<HHQQ", 1, 16, size, len(data))
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 8, 0, 33, crc, 0xFFFFFFFF, 0xFFFFFFFF, len(name), len(zip64))
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 8, 0, 33, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                          len(name), len(zip64), 0, 0, 0, 0, 0) + name + zip64
    body = local + name + zip64 + data
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(body), 0)
    path.write_bytes(body + central + end)
    return path


def test_the_bomb_builder_makes_a_valid_archive(tmp_path):
    """The same construction, small: zipfile inflates it to exactly the declared zeros, CRC checked."""
    path = zip_bomb(tmp_path / "small.npz", blocks=3)
    with zipfile.ZipFile(path) as archive:
        content = archive.read("train_images.npy")  # raises on a wrong CRC or size
    header = npy_header((3 * BLOCK,))
    assert content[:len(header)] == header and len(content) == len(header) + 3 * BLOCK and not any(content[-4096:])


MEASURE = """
import json, sys, time
from medshield.data.bounded import input_limit, set_input_limit
from medshield.data.medmnist import load
from medshield.errors import InputError


def peak_mb():  # VmHWM: peak resident memory since this process's exec (getrusage's maxrss keeps the parent's)
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")) / 1024


if input_limit() >= 6e9:  # a machine of 30 GB or more: its default limit (a fifth of it) would let the bomb in
    set_input_limit(4 * 10**9)
before, start = peak_mb(), time.perf_counter()
try:
    load(sys.argv[1])
    outcome = "read"
except InputError as exc:
    outcome = str(exc)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "outcome": outcome, "peak_mb_after_imports": before, "peak_mb": peak_mb()}))
"""


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    return zip_bomb(tmp_path_factory.mktemp("bomb") / "bomb.npz", blocks=90)  # 6.04 GB declared and real


def test_a_6_gb_zip_bomb_is_refused_in_under_a_second_and_500_mb(bomb):
    """In a fresh process: the read adds under 500 MB to the peak (importing torch alone takes ~500 MB)."""
    assert bomb.stat().st_size < 8e6  # a few MB on disk
    run = subprocess.run([sys.executable, "-c", MEASURE, str(bomb)], capture_output=True, text=True,
                         env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}, timeout=120)
    measured = json.loads(run.stdout)
    assert "declares 6.04 GB" in measured["outcome"] and "--max-input-bytes" in measured["outcome"], measured
    assert measured["seconds"] < 1.0 and measured["peak_mb"] - measured["peak_mb_after_imports"] < 500, measured


def test_the_bomb_is_one_line_from_the_command_line_too(capsys, bomb, tmp_path):
    code = main(["protect", str(bomb), "--out", str(tmp_path / "out"), "--method", "random", "--quiet",
                 "--max-input-bytes", str(4 * 10**9)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "train_images (shape (6039797760,), uint8) declares 6.04 GB" in err, err
    assert not (tmp_path / "out").exists()


def write_npz_member(path: Path, name: str, content: bytes, others: dict | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for key, value in (others or {}).items():
            buffer = io.BytesIO()
            np.save(buffer, value)
            archive.writestr(f"{key}.npy", buffer.getvalue())
        archive.writestr(f"{name}.npy", content)
    return path


def test_a_member_that_inflates_beyond_its_header_is_refused(capsys, tmp_path):
    path = write_npz_member(tmp_path / "x.npz", "train_images", npy_header((10, 28, 28)) + bytes(10 * 28 * 28 + 1 << 20))
    code = main(["protect", str(path), "--out", str(tmp_path / "out"), "--method", "random", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "holds more data than its header declares" in err, err


def test_an_oversized_header_is_refused(capsys, tmp_path):
    """A header that claims 60 kB of text (numpy reads at most 10 kB: a header is a few dozen bytes)."""
    text = ("{'descr': '|u1', 'fortran_order': False, 'shape': (10,), }" + " " * 60000 + "\n").encode()
    header = b"\x93NUMPY\x02\x00" + struct.pack("<I", len(text)) + text
    path = write_npz_member(tmp_path / "x.npz", "train_images", header + bytes(10))
    code = main(["protect", str(path), "--out", str(tmp_path / "out"), "--method", "random", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "not a valid .npy header" in err, err


def test_the_limit_is_an_option_and_images_get_it_before_decoding(capsys, tiny_npz, tmp_path):
    code = main(["protect", str(tiny_npz), "--out", str(tmp_path / "out"), "--method", "random", "--quiet",
                 "--max-input-bytes", "50000"])
    err = capsys.readouterr().err
    assert code == 2 and "train_images (shape (120, 28, 28), uint8) declares 94,080 bytes" in err and "50,000" in err, err
    folder = tmp_path / "images" / "c0"
    folder.mkdir(parents=True)
    for i in range(2):
        Image.fromarray(np.zeros((300, 300), np.uint8)).save(folder / f"{i}.png")
    code = main(["protect", str(folder.parent), "--out", str(tmp_path / "out"), "--method", "random", "--quiet",
                 "--max-input-bytes", "50000"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "0.png declares 90,000 bytes once decoded" in err, err
    main(["protect", str(tiny_npz), "--out", str(tmp_path / "ok"), "--method", "random", "--quiet"])
    assert (tmp_path / "ok" / "manifest.json").is_file()  # the default limit reads ordinary data
