"""DICOM folders in: what is refused, in one line."""
import pydicom
import pytest
from builders import series
from pydicom.data import get_testdata_file

from medshield.cli import main


def test_dicom_errors_are_one_line(capsys, tmp_path):
    root, labels = series(tmp_path, "CT_small.dcm", n=4)
    code = main(["protect", str(root), "--out", str(tmp_path / "x")])
    assert code == 2 and "--labels FILE.csv" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("sop_instance_uid,label\n1.2.3,even\n")
    code = main(["protect", str(root), "--labels", str(bad), "--out", str(tmp_path / "x")])
    assert code == 2 and "no DICOM file" in capsys.readouterr().err
    mr = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    mr.save_as(root / "other_size.dcm")
    with open(labels, "a") as handle:
        handle.write(f"{mr.SOPInstanceUID},odd,train\n")
    code = main(["protect", str(root), "--labels", str(labels), "--out", str(tmp_path / "x"), "--steps", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "other_size.dcm" in err and "differ" in err
    assert not (tmp_path / "x").exists()


def test_undecodable_pixel_data_is_one_line(capsys, tmp_path):
    """JPEG-LS needs a plugin this environment lacks: one line naming the file and the fix, no output."""
    root = tmp_path / "jls"
    root.mkdir()
    sample = get_testdata_file("MR_small_jpeg_ls_lossless.dcm")
    try:
        pydicom.dcmread(sample).pixel_array
        pytest.skip("a JPEG-LS decoder is installed here")
    except Exception:
        pass
    labels = tmp_path / "labels.csv"
    lines = ["path,label,split"]
    for i in range(4):
        (root / f"s{i}.dcm").write_bytes(open(sample, "rb").read())
        lines.append(f"s{i}.dcm,{'ab'[i % 2]},train")
    labels.write_text("\n".join(lines) + "\n")
    code = main(["protect", str(root), "--labels", str(labels), "--out", str(tmp_path / "x"), "--steps", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "s0.dcm" in err and "JPEG-LS" in err and "pip install" in err
    assert not (tmp_path / "x").exists()
