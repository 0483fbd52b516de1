"""DICOM files in, DICOM files out (pydicom).

A folder of single-frame, single-sample (gray) DICOM files of one size and pixel format, in any
transfer syntax pydicom can decode (uncompressed little or big endian, deflated, RLE natively;
JPEG 2000 through Pillow; JPEG-LS and 12-bit JPEG with pylibjpeg or GDCM installed), with
labels from a CSV keyed by ``path`` (relative to the folder) or by ``sop_instance_uid``, and an
optional ``split`` column. Stored values are what is perturbed: the radius is relative to the
range of Bits Stored (8/255 of 2^BitsStored - 1; e.g. 8/255 x 4095 = 128 for 12-bit data, 2056
for 16-bit). For CT this range is in stored units, i.e. Hounsfield units times Rescale Slope: a
16-bit CT at the default radius moves values by up to 2056 HU, so use a smaller ``--eps`` there.

Written files keep every data element of the original except Pixel Data and what DICOM asks of
a derived image: a new SOP Instance UID (also in the file meta), Image Type DERIVED, and a
Derivation Description naming the protection. Every file is written in Explicit VR Little Endian
(uncompressed pixel data, readable by every DICOM reader): a compressed or big-endian original
changes its Transfer Syntax UID, nothing else. pydicom does not write group length elements
(gggg,0000), which DICOM has retired outside the file meta.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import validate_file_meta
from pydicom.filewriter import dcmwrite
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from ..errors import InputError
from .bounded import check_declared
from .folder import FolderData
from .labels import check_one_task, class_order, paths_from_csv, read_labels_csv
from .walk import walk_files

DERIVED_TAGS = ("SOPInstanceUID", "ImageType", "DerivationDescription")


def is_dicom_file(path: Path) -> bool:
    if path.suffix.lower() == ".dcm":
        return True
    try:
        with open(path, "rb") as handle:
            return handle.read(132)[128:] == b"DICM"
    except OSError:
        return False


def _read(path: Path) -> pydicom.Dataset:
    try:
        return pydicom.dcmread(path)
    except Exception as exc:  # a damaged file makes pydicom raise nearly anything: one line per file
        raise InputError(f"{path}: cannot read it as DICOM ({exc.__class__.__name__})") from None


def _check_elements(ds, path) -> None:
    """Decode every element now: pydicom reads lazily, and a malformed one would otherwise fail only
    when the release is written, after the whole protection ran."""
    tag = None
    try:
        for element in ds.iterall():
            tag = element.tag
            element.value  # noqa: B018 (the access decodes the raw value)
    except Exception as exc:
        raise InputError(f"{path}: element {tag} is malformed ({exc.__class__.__name__}: "
                         f"{' '.join(str(exc).split())[:120]})") from None


def _pixel_format(ds, path) -> tuple:
    if "PixelData" not in ds:
        raise InputError(f"{path}: has no Pixel Data")
    try:
        if int(getattr(ds, "NumberOfFrames", 1) or 1) != 1 or int(ds.SamplesPerPixel) != 1:
            raise InputError(f"{path}: only single-frame gray images are supported (frames {getattr(ds, 'NumberOfFrames', 1)}, "
                             f"samples per pixel {ds.SamplesPerPixel})")
        check_declared(int(ds.Rows) * int(ds.Columns) * max(1, int(ds.BitsAllocated) // 8), str(path))
        return (int(ds.Rows), int(ds.Columns), int(ds.BitsAllocated), int(ds.BitsStored), int(ds.PixelRepresentation))
    except InputError:
        raise
    except Exception as exc:  # a missing or malformed element (AttributeError, ValueError, struct errors, ...)
        raise InputError(f"{path}: a required image element is missing or malformed ({exc.__class__.__name__}: "
                         f"{' '.join(str(exc).split())[:120]})") from None


class DicomData(FolderData):
    """A labelled DICOM folder; images are stored values shifted to start at 0 (uint16)."""

    def read_file(self, path: Path) -> np.ndarray:
        ds = _read(path)
        try:
            values = ds.pixel_array.astype(np.int64)
        except Exception as exc:  # pydicom raises plain exceptions for missing decoders
            syntax = ds.file_meta.get("TransferSyntaxUID", "unknown transfer syntax")
            reason = " ".join(str(exc).split())
            raise InputError(f"{path}: cannot decode its pixel data ({getattr(syntax, 'name', syntax)}: {reason}); "
                             "install the decoder pydicom names (e.g. pip install pylibjpeg pylibjpeg-libjpeg) "
                             "or store the series uncompressed") from None
        return (values - self.offset).astype(np.uint16)

    def output_name(self, rel: str, jpeg_as_png: bool) -> str:
        return rel

    def is_lossy(self, rel: str, jpeg_as_png: bool) -> bool:
        return False

    def write_file(self, rel: str, array: np.ndarray, dest: Path, manifest: dict) -> dict:
        """Write the derived file; returns the original values of the elements it changed
        (None where absent), which restoration puts back."""
        ds = _read(self.path / rel)
        original = {name: _value(ds, name) for name in DERIVED_TAGS}
        original["TransferSyntaxUID"] = str(ds.file_meta.TransferSyntaxUID)
        self._set_pixels(ds, array)
        uid = generate_uid()
        ds.SOPInstanceUID = uid
        ds.file_meta.MediaStorageSOPInstanceUID = uid
        image_type = list(ds.ImageType) if "ImageType" in ds else ["DERIVED", "SECONDARY"]
        ds.ImageType = ["DERIVED"] + image_type[1:]
        params = manifest.get("params", {})
        ds.DerivationDescription = (f"medshield {manifest.get('medshield', '')} {params.get('method', '')} protection: "
                                    f"bounded perturbation against unauthorized training")[:1024]
        _write(ds, dest)
        return original

    def restore_file(self, release_file: Path, array: np.ndarray, dest: Path, elements: dict | None) -> None:
        """The original from its derived file: pixels ``array`` and the changed elements put back.

        Written uncompressed (Explicit VR Little Endian) whatever the original transfer syntax."""
        ds = _read(release_file)
        self._set_pixels(ds, array)
        for name in DERIVED_TAGS:
            value = (elements or {}).get(name)
            if value is None:
                if name in ds:
                    delattr(ds, name)
            else:
                setattr(ds, name, value)
        if (elements or {}).get("SOPInstanceUID"):
            ds.file_meta.MediaStorageSOPInstanceUID = elements["SOPInstanceUID"]
        _write(ds, dest)

    def _set_pixels(self, ds, array: np.ndarray) -> None:
        dtype = np.int16 if self.signed else np.uint16
        if int(ds.BitsAllocated) == 8:
            dtype = np.int8 if self.signed else np.uint8
        values = (array.astype(np.int64) + self.offset).astype(dtype)  # native byte order
        frames = ds.get("NumberOfFrames")
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian  # before set_pixel_data, which refuses big endian
        ds.set_pixel_data(values, ds.PhotometricInterpretation, int(ds.BitsStored), generate_instance_uid=False)
        if frames is not None:
            ds.NumberOfFrames = frames  # set_pixel_data drops a single frame's count; the original had it


def _value(ds, name: str):
    """An element's value as JSON can hold it (multi-valued as a list), or None when absent."""
    if name not in ds:
        return None
    value = ds.data_element(name).value
    return [str(v) for v in value] if isinstance(value, (list, pydicom.multival.MultiValue)) else str(value)


def _write(ds, dest: Path) -> None:
    # What save_as(enforce_file_format=True) does, but free to re-encode a big-endian original.
    validate_file_meta(ds.file_meta, enforce_standard=True)
    ds.preamble = ds.preamble or b"\0" * 128
    dcmwrite(dest, ds, implicit_vr=False, little_endian=True, force_encoding=True)


def load_dicom_folder(root: str | Path, labels_csv: str | Path | None) -> DicomData:
    root = Path(root).expanduser()
    files = [p for p in walk_files(root) if is_dicom_file(p)]
    if not files:
        raise InputError(f"{root}: no DICOM files found")
    if labels_csv is None:
        raise InputError(f"{root}: DICOM labels come from --labels FILE.csv with columns path (or sop_instance_uid),label[,split]")
    rows = read_labels_csv(Path(labels_csv))
    if rows and "sop_instance_uid" in rows[0] and "path" not in rows[0]:
        by_uid = {str(_read(p).SOPInstanceUID): p.relative_to(root).as_posix() for p in files}
        for line, row in enumerate(rows, start=2):
            uid = row["sop_instance_uid"].strip()
            if uid not in by_uid:
                raise InputError(f"{labels_csv} line {line}: no DICOM file in {root} has SOP Instance UID {uid}")
            row["path"] = by_uid[uid]
    paths, names, splits = paths_from_csv(root, Path(labels_csv), (), "a DICOM file", rows)
    first = None
    for rel in paths:
        ds = _read(root / rel)
        _check_elements(ds, root / rel)
        fmt = _pixel_format(ds, root / rel)
        if first is None:
            first = (rel, fmt)
        elif fmt != first[1]:
            raise InputError(f"{root / rel}: rows, columns, bits or sign {fmt} differ from {first[0]} {first[1]}; "
                             "protect each kind of series separately")
    _, _, _, bits_stored, signed = first[1]
    classes = class_order(names)
    check_one_task(labels_csv, names, splits)
    data = DicomData(name=root.name, path=root, files=paths, label_index=np.array([classes.index(n) for n in names]),
                     split=np.array(splits), class_names=classes)
    data.signed = bool(signed)
    data.offset = -(1 << (bits_stored - 1)) if signed else 0
    data.maximum = (1 << bits_stored) - 1
    if not data.has_split("train"):
        raise InputError(f"{labels_csv}: no image has split 'train'; there is nothing to protect")
    return data
