"""The release format is the dataset's (asked of the registry) when writing and the manifest's when reading."""
import json

import numpy as np
import pytest
from builders import make_folder, series

from medshield.cli import main
from medshield.data import load
from medshield.data.dicom import load_dicom_folder
from medshield.data.folder import RESERVED, FolderData, load_folder
from medshield.errors import InputError
from medshield.release import FORMATS, ReleaseFormat, read_release
from medshield.release.format import format_for, format_of
from medshield.release.tree import RELEASE_FILES


def test_each_dataset_gets_the_format_of_its_nearest_class(tmp_path, tiny_npz):
    images = np.zeros((4, 8, 8), np.uint8)
    folder, _ = make_folder(tmp_path, images, np.array([0, 1, 0, 1]), ".png")
    dicom, labels = series(tmp_path, "CT_small.dcm", n=4)
    kinds = [format_for(data).name for data in (load(str(tiny_npz)), load_folder(folder), load_dicom_folder(dicom, labels))]
    assert kinds == ["npz", "folder", "dicom"]  # a DICOM dataset is a FolderData too: the nearer class wins


def test_a_new_format_is_one_registered_class(monkeypatch, tmp_path):
    class ScanData(FolderData):
        pass

    class ScanFormat(ReleaseFormat):
        name = manifest_format = "scan"
        dataset_type = ScanData

    monkeypatch.setitem(FORMATS._entries, "scan", ScanFormat())
    scans = ScanData.__new__(ScanData)
    assert isinstance(format_for(scans), ScanFormat) and isinstance(format_of({"format": "scan"}), ScanFormat)


def test_an_unknown_format_in_a_manifest_is_refused_in_one_line(capsys, tmp_path, tiny_npz):
    out = tmp_path / "release"
    assert main(["protect", str(tiny_npz), "--out", str(out), "--method", "random", "--quiet"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "format": "tiff"}))
    with pytest.raises(InputError, match="names the release format 'tiff'"):
        read_release(out)
    capsys.readouterr()
    assert main(["utility", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "release format 'tiff'" in err, err


def test_the_reader_skips_every_file_a_release_adds_at_its_root():
    assert set(RESERVED) == set(RELEASE_FILES)
