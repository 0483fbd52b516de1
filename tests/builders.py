"""Datasets the tests build: image folders from MedMNIST images, DICOM series from pydicom's samples."""
import csv
import hashlib
import io

import numpy as np
import png
import pydicom
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid


def tree_digest(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def medmnist_images(root, flag, n):
    with np.load(root / f"{flag}.npz", allow_pickle=False) as npz:
        return npz["train_images"][:n], npz["train_labels"][:n, 0], npz["test_images"][:n], npz["test_labels"][:n, 0]


def make_folder(tmp_path, images, labels, suffix, sixteen=False, split=None):
    """root/<label>/img_<i><suffix>; 16-bit copies scale 8-bit values by 257."""
    root = tmp_path / f"owner_{suffix.strip('.')}{'_16' if sixteen else ''}"
    rows = []
    for i, (image, label) in enumerate(zip(images, labels)):
        rel = f"class_{label}/img_{i:03d}{suffix}"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        array = image.astype(np.uint16) * 257 if sixteen else image
        Image.fromarray(array).save(root / rel)
        rows.append({"path": rel, "label": f"class_{label}", "split": split[i] if split is not None else "train"})
    (root / "README.txt").write_text("owner's notes, copied unchanged\n")
    return root, rows


def png_rgb16(array, interlace=False):
    """A 16-bit RGB PNG written by another encoder (pypng), optionally Adam7-interlaced."""
    buffer = io.BytesIO()
    png.Writer(array.shape[1], array.shape[0], greyscale=False, bitdepth=16, interlace=interlace).write(
        buffer, array.reshape(array.shape[0], -1))
    return buffer.getvalue()


def rgb16(images, seed=0):
    """8-bit RGB images widened to 16 bits with a random low byte (truncation to 8 bits shows)."""
    low = np.random.default_rng(seed).integers(0, 256, images.shape)
    return (images.astype(np.uint16) << 8) | low.astype(np.uint16)


def series(tmp_path, name, n=8):
    """n CT (or MR) slices from pydicom's sample file, each shifted so they differ, labelled by parity.

    Slices keep the sample's transfer syntax: RLE samples are re-compressed, big-endian ones stay so.
    """
    source = pydicom.dcmread(get_testdata_file(name))
    syntax = source.file_meta.TransferSyntaxUID
    root = tmp_path / name.split(".")[0]
    root.mkdir()
    rows = []
    for i in range(n):
        ds = pydicom.dcmread(get_testdata_file(name))
        shifted = np.roll(source.pixel_array, 3 * i, axis=1)
        if syntax == RLELossless:
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.set_pixel_data(shifted, ds.PhotometricInterpretation, int(ds.BitsStored))
            ds.compress(RLELossless)
        else:  # the sample's own byte order
            ds.PixelData = shifted.astype(source.pixel_array.dtype.newbyteorder("<" if syntax.is_little_endian else ">")).tobytes()
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(root / f"slice_{i:02d}.dcm", enforce_file_format=True)
        assert pydicom.dcmread(root / f"slice_{i:02d}.dcm").file_meta.TransferSyntaxUID == syntax
        rows.append({"sop_instance_uid": ds.SOPInstanceUID, "label": "even" if i % 2 == 0 else "odd",
                     "split": "test" if i >= n - 2 else "train"})
    labels = tmp_path / f"{root.name}.csv"
    with open(labels, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["sop_instance_uid", "label", "split"])
        writer.writeheader()
        writer.writerows(rows)
    return root, labels
