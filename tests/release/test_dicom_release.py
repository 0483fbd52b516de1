"""DICOM in, DICOM out: tags kept except Pixel Data and the derived-image ones, bounds, originals."""
import hashlib
import json

import numpy as np
import pydicom
import pytest
from builders import series

from medshield.cli import main

KEPT_EXCEPT = {"PixelData", "SOPInstanceUID", "ImageType", "DerivationDescription"}


def digest(root):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.iterdir())}


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm"])
def test_dicom_release_keeps_tags_and_bounds(capsys, tmp_path, name):
    root, labels = series(tmp_path, name)
    before = digest(root)
    out = tmp_path / "release"
    code = main(["protect", str(root), "--labels", str(labels), "--out", str(out), "--steps", "2", "--width", "4",
                 "--batch-size", "4", "--pgd-steps", "2", "--sparse", "--quiet"])  # --sparse: the L0 bound is checked too
    assert code == 0, capsys.readouterr().err
    assert digest(root) == before  # originals byte-identical
    assert sorted(p.name for p in out.iterdir()) == sorted([*before, "manifest.json", "manifest.sig", "medshield-labels.csv", "owner.pub",
                                                                "restoration.sealed"])
    manifest = json.loads((out / "manifest.json").read_text())
    bits = pydicom.dcmread(root / "slice_00.dcm").BitsStored
    limit = round(8 / 255 * (2**bits - 1))
    assert manifest["format"] == "dicom" and manifest["measured"]["limit_linf"] == limit
    changed = 0
    for file in sorted(before):
        a, b = pydicom.dcmread(root / file), pydicom.dcmread(out / file)
        kept = [e.tag for e in a if e.keyword not in KEPT_EXCEPT]
        assert len(kept) > 20
        for tag in kept:  # every element, private ones included, by tag
            assert tag in b and a[tag].value == b[tag].value, (file, tag)
        diff = np.abs(b.pixel_array.astype(np.int64) - a.pixel_array.astype(np.int64))
        assert diff.max() <= limit and (diff > 0).mean() <= 0.10
        if diff.any():
            changed += 1
            assert b.SOPInstanceUID != a.SOPInstanceUID and b.file_meta.MediaStorageSOPInstanceUID == b.SOPInstanceUID
            assert b.ImageType[0] == "DERIVED" and "medshield" in b.DerivationDescription
            assert b.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        else:  # test images are copied byte for byte
            assert (root / file).read_bytes() == (out / file).read_bytes()
    assert changed == 6
