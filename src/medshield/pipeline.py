"""The jobs a data owner runs, as library functions (the CLI is a thin layer over these): protect,
evaluate (in ``evaluate/workflow.py``), grid and restore."""
from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

import numpy as np

from . import __version__
from ._runtime import machine, now_iso, package_versions, pick_device, sha256_file, use_threads
from .data.duplicates import share_noise, train_groups
from .data.folder import FolderData
from .data.folder_release import restore_folder, write_folder_release
from .data.medmnist import MedMNISTData, load
from .data.opening import load_directory, open_dataset, original_of, read_release
from .data.release import Release, check_output_dir, is_release, move_into_place, restored_npz, staging_folder, write_release
from .data.restoration import Restoration
from .data.sealing import check_key_path, default_key_path
from .data.signing import check_before_restore, owner_key, pinned_fingerprint
from .data.scratch import ScratchArray
from .data.support import WithSupport
from .data.tensors import value_range
from .errors import InputError
from .evaluate.grid import check_defenses, run_grid
from .evaluate.journal import Journal
from .evaluate.workflow import evaluate
from .evaluate.utility import utility_sample
from .models import resolve_precision
from .presets import preset
from .protect import create_protection
from .protect._checkpoint import Checkpoint, work_folder
from .protect.params import method_parameters
from .report import write_grid

__all__ = ["evaluate", "grid", "protect", "restore"]


def protect(
    dataset: str,
    out: str | Path,
    *,
    method: str = "salm",
    preset_name: str = "paper",
    params: dict | None = None,
    root: str | None = None,
    seed: int = 0,
    overwrite: bool = False,
    device: str = "auto",
    progress: bool = True,
    fraction: float = 1.0,
    classes: list[int] | None = None,
    labels: str | None = None,
    jpeg_as_png: bool = False,
    precision: str = "auto",
    key_out: str | Path | None = None,
    threads: int | None = None,
    support: str | list[str] | None = None,
    support_classes: int = 5,
    resume: bool = False,
    checkpoint_every: float = 300.0,
    signing_key: str | Path | None = None,
    size: int | None = None,
    channels: int | None = None,
    convert: bool = False,
) -> Release:
    """Protect ``dataset``'s train split and write a release folder to ``out``.

    Partial protection (paper Table 6, Appendix D.1): the perturbation is computed on the whole
    train split, then kept only on a seeded random ``fraction`` of the images and/or only on
    images of the given ``classes``; the others are released unchanged. ``precision`` is that of
    the source networks ("auto": the measured choice for the device, see ``models.precision``);
    the manifest records what ran, with the CPU ``threads`` (None: torch's default).

    ``support`` (MedMNIST flags, ``.npz`` files or image folders; one or a list) lends ``support_classes`` classes, drawn
    with the seed, to the generation of error-minimizing noise (paper Section 7.1): for an owner
    holding one class. They are never written; the manifest records what was drawn. With
    ``classes`` too, the generation sees only those classes' images (an institution that holds
    them, Appendix D.2) and the other classes are released unchanged.

    An image folder is read as ``data.folder.load_folder`` says (``size``, ``channels``, ``convert``);
    duplicates within its train split get the same noise.

    ``out`` gets only what is safe to publish; the key that restores the originals and the
    owner's private record (input path and hash, machine, command) go to ``key_out`` (default
    ``out.key`` beside it). The release is signed with ``signing_key`` (the owner's reusable key
    file, created when missing) or, without it, a fresh key kept in the key file.

    SALM, EM and TAP save their state every ``checkpoint_every`` seconds and at stage boundaries into
    ``out.work`` beside the output (removed once the release is written); ``resume`` continues a
    killed run from it, to the same bytes. A checkpoint of other inputs or settings is refused.
    """
    if not 0.0 < fraction <= 1.0:
        raise InputError(f"fraction must be in (0, 1], got {fraction}")
    threads = use_threads(threads)
    precision = resolve_precision(precision, pick_device(device))  # a bad request fails before any loading
    accepted = method_parameters(method)
    settings = {k: v for k, v in preset(preset_name, "protect", method).items() if k in accepted}
    for name, value in (params or {}).items():
        if name not in accepted:
            raise InputError(f"method {method!r} has no parameter {name!r}; it takes: {', '.join(accepted)}")
        settings[name] = value
    protection = create_protection(method, **settings)
    if protection.eps > VISIBLE_EPS:
        log.warning(f"a radius of {255 * protection.eps:g}/255 is above {255 * VISIBLE_EPS:g}/255: the change is no "
                        "longer imperceptible (the paper and every baseline use 8/255)")
    support = [support] if isinstance(support, str) else support
    if support is not None and method not in SUPPORTED_METHODS:
        raise InputError(f"--support is for the error-minimizing methods ({', '.join(SUPPORTED_METHODS)}): {method} "
                         "needs no source task to minimize; leave --support out")
    data = (load_directory(dataset, labels, size=size, channels=channels, convert=convert) if Path(dataset).is_dir()
            else load(dataset, root))
    check_output_dir(out, [data.path], overwrite)  # fail before hours of work, not after
    check_classes(data, dataset, method, support)
    key_path = Path(key_out) if key_out else default_key_path(out)
    # A run killed while publishing leaves its key without its release: resuming replaces that key
    # (the run itself was allowed to write there, or it would not have started).
    replace = overwrite or (resume and not Path(out).exists())
    check_key_path(key_path, Path(out), replace)
    owner = owner_key(signing_key)
    selected = select_for_protection(data, fraction, classes, seed)
    fingerprint = data.fingerprint() if isinstance(data, FolderData) else sha256_file(data.path)
    checkpoint = Checkpoint(work_folder(out), {
        "input": fingerprint, "method": method, "params": protection.params(), "seed": seed, "threads": threads,
        "precision": precision, "fraction": fraction, "classes": classes, "support": support, "support_classes": support_classes,
        "medshield": __version__, "torch": package_versions()["torch"], "working": getattr(data, "notes", {}).get("working"),
    }, every_s=checkpoint_every)
    if resume:
        checkpoint.check_resumable()
    elif checkpoint.exists():
        raise InputError(f"{checkpoint.folder} holds the checkpoint of an earlier, unfinished run to {out}: pass --resume "
                         "to continue it, or delete that folder to start over")
    generation_data = data
    if support is not None:
        sources = {Path(spec).name: open_dataset(spec, root)[0] for spec in support}  # public names: no paths
        held = np.flatnonzero(np.isin(data.labels("train"), classes)) if classes is not None else None
        generation_data = WithSupport(data, sources, support_classes, seed, rows=held)
    result = protection.protect(generation_data, seed=seed, device=device, progress=progress, precision=precision,
                                checkpoint=checkpoint, resume=resume)
    released = owner_rows(result.released, data.images("train"), generation_data.rows) if support is not None else result.released
    if isinstance(data, FolderData):
        share_noise(released, data.images("train"), train_groups(data.pairs, data.indices("train")), value_range(data))
    if not selected.all():
        unselected = np.flatnonzero(~selected)
        released[unselected] = data.images("train")[unselected]
    created = now_iso()
    manifest = {  # public: what was done and measured, nothing about where the originals are
        "medshield": __version__,
        "created": created,
        "method": method,
        "preset": preset_name,
        "seed": seed,
        "precision": result.precision,
        "threads": threads,
        "params": result.params,
        "sparsity": protection.sparsity(),
        "dataset_name": data.name,
        "dataset_file": f"{data.name}.npz",
        "num_classes": data.num_classes,
        "train_images": int(len(released)),
        "support": generation_data.record if support is not None else None,
        "partial": {"fraction": fraction, "classes": classes, "protected_images": int(selected.sum())},
        "generation_seconds": round(result.seconds, 2),
        "source_log": result.log,
        "versions": package_versions(),
    }
    private = {  # the owner's record, kept in the key file
        "created": created,
        "command": sys.argv,
        "input": {"dataset": dataset, "path": str(data.path.resolve()),
                  "sha256": fingerprint,
                  "labels": str(Path(labels).resolve()) if labels else None,
                  "support": [str(Path(spec).resolve()) if Path(spec).exists() else spec for spec in support or []]},
        "machine": machine(),
    }
    if isinstance(data, FolderData):
        release = write_folder_release(out, data, released, manifest, max_linf=result.max_linf, max_l0=result.max_l0,
                                       overwrite=replace, labels_csv=labels, jpeg_as_png=jpeg_as_png, key_out=key_path,
                                       private=private, measure_utility=utility_sample, owner=owner)
    else:
        release = write_release(out, data, released.mapped(), manifest, max_linf=result.max_linf, max_l0=result.max_l0,
                                overwrite=replace, key_out=key_path, private=private, measure_utility=utility_sample,
                                owner=owner)
    checkpoint.remove()  # the release is complete: nothing left to resume
    return release


log = logging.getLogger(__name__)
VISIBLE_EPS = 16 / 255  # above this radius a perturbation is no longer imperceptible
SUPPORTED_METHODS = ("salm", "em")  # the error-minimizing family: support classes give them a task


def check_classes(data, spec: str, method: str, support: str | None) -> None:
    """A train split with one class gives error-minimizing noise nothing to minimize: say what helps."""
    present = np.unique(data.labels("train"))
    if len(present) > 1 or support is not None:
        return
    if method in SUPPORTED_METHODS:
        raise InputError(f"{spec}: its train split holds one class; {method} needs a task with two or more classes. Add "
                         "--support SOURCE (a MedMNIST flag such as pathmnist, a MedMNIST-layout .npz or an image folder) "
                         "to borrow classes for the generation (paper Section 7.1)")
    if method == "tap":
        raise InputError(f"{spec}: its train split holds one class; tap pushes each image towards another class and "
                         "needs two or more")


def owner_rows(released: ScratchArray, originals: np.ndarray, rows: np.ndarray) -> ScratchArray:
    """The owner's release from one generated with support images: its first ``len(rows)`` rows
    go back to the owner's ``rows``; owner images not in the generation stay as they were."""
    owner = ScratchArray(originals.shape, originals.dtype)
    for start in range(0, len(originals), 256):
        owner[start:start + 256] = originals[start:start + 256]
    for start in range(0, len(rows), 256):
        owner[rows[start:start + 256]] = released[start:min(start + 256, len(rows))]
    return owner


def select_for_protection(data: MedMNISTData, fraction: float, classes: list[int] | None, seed: int) -> np.ndarray:
    """Boolean mask of the train images that keep their perturbation."""
    labels = data.labels("train")
    selected = np.ones(len(labels), dtype=bool)
    if classes is not None:
        unknown = sorted(set(classes) - set(range(data.num_classes)))
        if unknown:
            raise InputError(f"--classes {unknown} not in this dataset's labels 0..{data.num_classes - 1}")
        selected &= np.isin(labels, classes)
    if fraction < 1.0:
        candidates = np.flatnonzero(selected)
        keep = np.random.default_rng(seed).permutation(candidates)[: round(fraction * len(candidates))]
        selected = np.zeros_like(selected)
        selected[keep] = True
    return selected


def restore(release_dir: str, out: str | Path, *, key: str | Path | None = None, overwrite: bool = False,
            force: bool = False, public_key: str | Path | None = None, fingerprint: str | None = None) -> tuple[Path, list[str]]:
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
            left_out = []
            if restoration.record["format"] == "npz":
                restored = restored_npz(release, restoration)
                np.savez_compressed(tmp / f"{restored.name}.npz", **restored.arrays)
            else:
                left_out = restore_folder(release, restoration, tmp, skip, force)
            move_into_place(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target, left_out


def grid(
    release_dir: str,
    out: str | Path,
    *,
    victims: list[str],
    defenses: list[str],
    preset_name: str = "paper",
    recipe: dict | None = None,
    recipe_name: str | None = None,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    precision: str = "auto",
    key: str | Path | None = None,
    original: str | None = None,
    threads: int | None = None,
) -> list[dict]:
    """Every victim x defense on a release, each beside the same training on the original.

    Cells are appended to ``out/grid.jsonl`` as they finish; a cell already there (same victim,
    defense, preset, seed, precision and recipe options) is not recomputed, so an interrupted
    grid resumes. With ``threads`` given, the cells are keyed by it too (results move with it).
    ``out/grid.json`` and ``out/grid.md`` hold the cells asked for.
    """
    chosen_threads = threads
    threads = use_threads(threads)
    precision = resolve_precision(precision, pick_device(device), "victim")
    data, release = open_dataset(release_dir)
    if release is None:
        raise InputError(f"{release_dir} is not a release folder; grid evaluates a release written by 'medshield protect'")
    check_defenses(defenses)
    clean = original_of(release, key, original)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cells = run_grid(data, clean, Journal(out / "grid.jsonl"), victims=victims, defenses=defenses, preset_name=preset_name,
                     recipe=recipe, recipe_name=recipe_name, seed=seed, device=device, progress=progress,
                     precision=precision, threads=threads, keyed_threads=chosen_threads)
    context = {"release": str(release_dir), "manifest": {k: release.manifest[k] for k in ("method", "params", "seed")},
               "preset": preset_name, "recipe_name": recipe_name, "precision": precision, "threads": threads,
               "machine": machine(), "versions": package_versions()}
    title = (f"{data.name}: {release.manifest['method']} release, victims x defenses (preset {preset_name}, "
             f"recipe {recipe_name or 'of the preset'}, seed {seed}, {precision})")
    write_grid(out, title, context, cells)
    return cells
