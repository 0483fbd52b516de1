"""Every file under a folder, symlinks included, and never a step outside it.

``Path.rglob`` neither follows a symlinked folder nor reports it, so its images were skipped
without a word and its name left an empty folder in a release. Here a symlink (to a folder or a
file) is followed when its target stays inside the root, and refused in one line when it leaves
the root, loops back to a folder that contains it, or points nowhere.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError


def walk_files(root: str | Path) -> list[Path]:
    """The files under ``root`` (paths through ``root`` as given, in name order), links checked."""
    root = Path(root)
    real_root = Path(os.path.realpath(root))
    found = []
    for folder, dirs, files in os.walk(root, followlinks=True, onerror=_unreadable):
        here = Path(folder)
        logical = here.relative_to(root)
        ancestors = {Path(os.path.realpath(root / p)) for p in (logical, *logical.parents)}  # the folders above it, as real paths
        for name in dirs + files:
            path = here / name
            if path.is_symlink():
                _check_link(path, root, real_root, ancestors)
        found += [here / name for name in files]
    return sorted(found)


def _check_link(link: Path, root: Path, real_root: Path, ancestors: set[Path]) -> None:
    try:
        target = link.resolve(strict=True)
    except RuntimeError:
        raise InputError(f"{link}: a symlink loop; remove the link") from None
    except OSError:
        raise InputError(f"{link}: a symlink to {os.readlink(link)}, which does not exist; remove the link or "
                         "restore its target") from None
    if not target.is_relative_to(real_root):
        raise InputError(f"{link}: a symlink to {target}, outside {root}; copy what it points to into the folder "
                         "or remove the link")
    if target in ancestors:
        raise InputError(f"{link}: a symlink loop (it points back to {target}, a folder that contains it); "
                         "remove the link")


def _unreadable(error: OSError) -> None:
    raise InputError(f"{error.filename}: cannot read the folder ({error.strerror})")
