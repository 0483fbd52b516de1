"""Give an authorized partner the originals back: the release as its owner signed it, and its key."""
from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import InputError
from .format import format_of
from .reading import is_release, read_release
from .restoration import RESTORATION, Restoration
from .signing import PROBLEMS, file_problems, pinned_fingerprint, read_manifest, signature_problem
from .writer import check_output_dir, move_into_place, staging_folder


def restore_release(release_dir: str, out: str | Path, *, key: str | Path | None = None, overwrite: bool = False,
                    force: bool = False, public_key: str | Path | None = None,
                    fingerprint: str | None = None) -> tuple[Path, list[str]]:
    """Write the originals of a release to the new folder ``out`` with the release's key; returns
    ``out`` and the release files left out (only with ``force``).

    ``.npz``: the dataset file with byte-identical arrays; folders: the original tree, names,
    formats and bit depths, pixel-identical (JPEG originals byte-identical), DICOM with its
    original pixel data and UIDs. First the release must be as its owner signed it (pinned with
    ``public_key`` or ``fingerprint``), and every restored image must match its original's hash
    sealed with it: otherwise nothing is written, or with ``force`` what matches is.
    """
    if not is_release(release_dir):
        raise InputError(f"{release_dir} is not a release folder written by 'medshield protect'")
    skip = check_before_restore(Path(release_dir), pinned_fingerprint(public_key, fingerprint), force)
    release = read_release(release_dir)
    target = check_output_dir(out, [release.path], overwrite)
    with Restoration(release.path, release.manifest, key) as restoration:
        tmp = staging_folder(target)
        try:
            left_out = format_of(release.manifest).restore_into(release, restoration, tmp, skip, force)
            move_into_place(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target, left_out


def check_before_restore(folder: Path, pinned: str | None, force: bool) -> frozenset[str]:
    """Refuse to restore from a release that is not as its owner signed it, naming the first file
    that differs. With ``force`` the images and copies that differ are returned, to be left out;
    the files every other one depends on (the sealed data, the ``.npz``, the labels) never are."""
    body, manifest = read_manifest(folder)
    problem, _ = signature_problem(folder, body, manifest, pinned)
    if problem:
        raise InputError(f"{folder}: {problem}; nothing was written")
    problems = file_problems(folder, manifest)
    essential = {RESTORATION, manifest.get("labels_file")} | format_of(manifest, folder).essential_files(manifest)
    blocking = [(rel, what) for rel, what in problems if not force or rel in essential]
    if blocking:
        rel, what = blocking[0]
        count = f" ({len(problems)} files differ)" if len(problems) > 1 else ""
        hint = "" if force or rel in essential else "; --force restores the files that match and lists the others"
        raise InputError(f"{folder / rel}: {PROBLEMS[what]}{count}; nothing was written{hint}")
    return frozenset(rel for rel, _ in problems)
