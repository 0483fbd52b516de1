"""Opening a dataset the owner gives: a folder of DICOM files or of images, decided by what it holds.

A release (a folder with a manifest) is opened by :mod:`medshield.release`, which reads the
dataset inside it with these readers.
"""
from __future__ import annotations

from .dicom import is_dicom_file, load_dicom_folder
from .folder import FolderData, load_folder
from .walk import walk_files


def load_directory(path: str, labels: str | None, **working) -> FolderData:
    """A folder of DICOM files or of images (decided by what it holds); ``working``: the image
    folder's ``size``, ``channels`` and ``convert`` (:func:`~.folder.load_folder`)."""
    if any(is_dicom_file(p) for p in walk_files(path)):
        return load_dicom_folder(path, labels)
    return load_folder(path, labels, **working)
