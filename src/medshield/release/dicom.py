"""The DICOM folder release: derived DICOM files (new SOP Instance UIDs, ``DERIVED`` image type)
in the owner's tree, written and restored as an image folder is (:mod:`.folder`), read back as a
DICOM series with the labels file the release holds."""
from __future__ import annotations

from pathlib import Path

from ..data.dicom import DicomData, load_dicom_folder
from .folder import FolderFormat
from .format import register_format


@register_format
class DicomFormat(FolderFormat):
    name = "dicom"
    manifest_format = "dicom"
    dataset_type = DicomData
    reports_duplicates = False  # a DICOM series has no duplicate scan
    per_file_bounds = False  # one size for the whole series: compared as arrays

    def load(self, folder: Path, labels: Path | None, manifest: dict) -> DicomData:
        return load_dicom_folder(folder, labels)
