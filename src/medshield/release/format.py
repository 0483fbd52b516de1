"""Release formats: what differs between an ``.npz`` release, an image folder and a DICOM folder.

Every release is written by one skeleton (:mod:`.writer`: stage, write, check the bounds on the
written bytes, seal, sign, rename) and read back by one reader (:mod:`.reading`); a
:class:`ReleaseFormat` supplies the steps that depend on the data. A format is chosen from the
dataset object when writing (:func:`format_for`: the registered format whose ``dataset_type`` is
nearest in the dataset's class hierarchy) and from the manifest when reading (:func:`format_of`),
so no other module names one. A new output format is one module with a ``@register_format``
class, imported by the package's ``__init__``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from .._registry import Registry
from ..errors import InputError

MANIFEST = "manifest.json"


@dataclass
class Release:
    path: Path
    manifest: dict
    data: object  # MedMNISTData or FolderData, as the release's format reads it


@dataclass
class Request:
    """What the owner asked of the written files, beyond the dataset and its protected images."""

    max_linf: int
    max_l0: float
    labels_csv: str | Path | None = None
    jpeg_as_png: bool = False


@dataclass
class Written:
    """What a format wrote into the staging folder, for the skeleton to check, record and seal.

    The manifest becomes ``{**manifest, **header, "measured": {**measured, limits, **measured_notes},
    "utility": ..., **trailer}``; ``payload`` is what :func:`.restoration.write_restoration` seals."""

    measured: dict
    payload: tuple  # (perturbation, record[, originals])
    original: object  # the train images as read, and as written, for ``measure_utility``
    released: object
    lossy: bool = False  # a lossy encoding may exceed the bounds: measured and recorded, not refused
    header: dict = field(default_factory=dict)
    measured_notes: dict = field(default_factory=dict)
    trailer: dict = field(default_factory=dict)


class ReleaseFormat:
    """One output format; subclasses set the attributes and implement the steps."""

    name: str  # the sealed record's "format"
    manifest_format: str | None  # the manifest's "format" (None: the manifest has no such field)
    dataset_type: type  # the dataset objects this format writes
    per_file_bounds = False  # verify measures the bounds file by file, each at its own size
    public_arrays = False  # its arrays are readable by anyone: verify checks none is the originals
    reports_duplicates = False  # verify reports duplicates within the release

    def inputs(self, data, request: Request) -> list[Path]:
        """What the output folder must neither be nor contain."""
        return [data.path]

    def check(self, data, released, request: Request) -> None:
        """Refuse a write that cannot succeed, before the staging folder exists."""

    def write(self, tmp: Path, data, released, manifest: dict, request: Request) -> Written:
        raise NotImplementedError

    def over_l0(self, measured: dict, max_l0: float) -> bool:
        """Whether the written bytes change more positions of an image than ``max_l0`` allows."""
        raise NotImplementedError

    def opened(self, out: Path, data, manifest: dict) -> Release:
        """The release of ``data`` just written and moved to ``out`` (``manifest``: as written)."""
        return self.read(out, manifest)

    def read(self, folder: Path, manifest: dict) -> Release:
        raise NotImplementedError

    def restored(self, release: Release, restoration):
        """The original dataset, for the owner's tools (in memory, or in a scratch folder)."""
        raise NotImplementedError

    def restore_into(self, release: Release, restoration, dest: Path, skip: frozenset, force: bool) -> list[str]:
        """Write the originals into the new folder ``dest``; returns the release files left out."""
        raise NotImplementedError

    def essential_files(self, manifest: dict) -> set:
        """Files besides the sealed data and labels that a restore never leaves out (with ``--force``)."""
        return set()

    def recorded_original(self, release: Release, missing: InputError):
        """The input a release written before keys names in its manifest, if unchanged; else ``missing``."""
        raise NotImplementedError


FORMATS: Registry[ReleaseFormat] = Registry("release format")
F = TypeVar("F", bound=type)


def register_format(cls: F) -> F:
    """Class decorator: register one instance of a :class:`ReleaseFormat` under its ``name``."""
    FORMATS.register(cls.name)(cls())
    return cls


def _formats() -> list[ReleaseFormat]:
    return [FORMATS.get(name) for name in FORMATS.names()]


def format_for(data) -> ReleaseFormat:
    """The format that writes ``data``: the nearest of its classes that a format declares."""
    chain = type(data).__mro__
    found = [(chain.index(f.dataset_type), f) for f in _formats() if f.dataset_type in chain]
    if not found:
        raise ValueError(f"no release format writes a {type(data).__name__}")
    return min(found, key=lambda pair: pair[0])[1]


def format_of(manifest: dict, folder: Path | str = "") -> ReleaseFormat:
    """The format a release's manifest names; one line for a format this version does not know."""
    kind = manifest.get("format")
    for candidate in _formats():
        if candidate.manifest_format == kind:
            return candidate
    raise InputError(f"{folder or 'the release'}: {MANIFEST} names the release format {kind!r}, which this medshield "
                     f"does not know (it reads {', '.join(FORMATS.names())}); is the release from a newer medshield?")
