"""``protect`` as plan -> generate -> publish.

:func:`plan` turns what the owner asked for into a :class:`ProtectionRun`: every input read and
checked, the method built from its preset, the output, key and checkpoint paths cleared, before
any compute. :func:`generate` runs the method; :func:`publish` hands the protected images to the
release writer. Method policy (which methods take support classes, need two classes, train a
source model) is asked of the method class, never spelled here by name.
"""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from ._distributed import is_main, world_size
from ._runtime import machine, now_iso, package_versions, pick_device, use_threads
from .data.duplicates import share_noise
from .data.medmnist import load
from .data.opening import load_directory
from .data.scratch import ScratchArray
from .data.support import WithSupport
from .data.tensors import value_range
from .errors import InputError
from .evaluate.utility import utility_sample
from .models import resolve_precision
from .protect import PROTECTIONS, Checkpoint, Protection, create_protection, work_folder
from .release import (Release, check_key_path, check_output_dir, dataset_file, default_key_path, open_dataset, owner_key,
                      write_release)

log = logging.getLogger(__name__)


@dataclass
class ProtectionRun:
    """A protection resolved and checked: what runs, on what, and where its results go."""

    spec: str  # the dataset as the owner named it (kept in the private record only)
    data: object  # the owner's dataset (MedMNISTData or FolderData)
    generation_data: object  # what the method sees: ``data``, or it with borrowed support classes
    protection: Protection
    preset_name: str
    seed: int
    device: str
    precision: str
    threads: int
    progress: bool
    out: Path
    key_path: Path
    replace: bool  # the output (and its key) may be replaced
    owner: object  # the signing key
    checkpoint: Checkpoint
    resume: bool
    selected: np.ndarray  # train rows that keep their perturbation (partial protection)
    request: dict  # the partial-protection and support choices, as asked (the manifest records them)
    labels_csv: str | None = None
    jpeg_as_png: bool = False


def plan(dataset: str, out: str | Path, *, method: str, preset_name: str = "paper", params: dict | None = None,
         root: str | None = None, seed: int = 0, overwrite: bool = False, device: str = "auto", progress: bool = True,
         fraction: float = 1.0, classes: list[int] | None = None, labels: str | None = None, jpeg_as_png: bool = False,
         precision: str = "auto", key_out: str | Path | None = None, threads: int | None = None,
         support: str | list[str] | None = None, support_classes: int = 5, resume: bool = False,
         checkpoint_every: float = 300.0, signing_key: str | Path | None = None, size: int | None = None,
         channels: int | None = None, convert: bool = False) -> ProtectionRun:
    """Everything ``protect`` needs, checked in the order that fails cheapest first (arguments
    ``pipeline.protect`` documents)."""
    if not 0.0 < fraction <= 1.0:
        raise InputError(f"fraction must be in (0, 1], got {fraction}")
    threads = use_threads(threads)
    precision = resolve_precision(precision, pick_device(device))  # a bad request fails before any loading
    support = [support] if isinstance(support, str) else support
    protection = checked_protection(method, preset_name, params, support)
    data = (load_directory(dataset, labels, size=size, channels=channels, convert=convert) if Path(dataset).is_dir()
            else load(dataset, root))
    check_output_dir(out, [data.path], overwrite)  # fail before hours of work, not after
    check_task(data, dataset, protection, support)
    key_path = Path(key_out) if key_out else default_key_path(out)
    # A run killed while publishing leaves its key without its release: resuming replaces that key
    # (the run itself was allowed to write there, or it would not have started).
    replace = overwrite or (resume and not Path(out).exists())
    check_key_path(key_path, Path(out), replace)
    request = {"fraction": fraction, "classes": classes, "support": support, "support_classes": support_classes}
    checkpoint = run_checkpoint(out, data, protection, seed, threads, precision, request, checkpoint_every, resume)
    return ProtectionRun(
        spec=dataset, data=data, generation_data=with_support(data, support, support_classes, classes, seed, root),
        protection=protection, preset_name=preset_name, seed=seed, device=device, precision=precision,
        threads=threads, progress=progress, out=Path(out), key_path=key_path, replace=replace,
        owner=owner_key(signing_key) if is_main() else None, checkpoint=checkpoint, resume=resume,
        selected=select_for_protection(data, fraction, classes, seed), request=request, labels_csv=labels,
        jpeg_as_png=jpeg_as_png)


def checked_protection(method: str, preset_name: str, params: dict | None, support: list[str] | None) -> Protection:
    """The method built from the preset and the owner's parameters, and what it says about them."""
    protection = create_protection(method, preset=preset_name, **(params or {}))
    if protection.eps > protection.visible_eps:
        log.warning(f"a radius of {255 * protection.eps:g}/255 is above {255 * protection.visible_eps:g}/255: the change "
                    "is no longer imperceptible (the paper and every baseline use 8/255)")
    if support is not None and not protection.accepts_support:
        takers = ", ".join(name for name in PROTECTIONS.names() if PROTECTIONS.get(name).accepts_support)
        raise InputError(f"--support is for the error-minimizing methods ({takers}): {method} needs no source task to "
                         "minimize; leave --support out")
    return protection


def check_task(data, spec: str, protection: Protection, support: list[str] | None) -> None:
    """A train split with too few classes for the method: one line saying what helps."""
    count = len(np.unique(data.labels("train")))
    problem = protection.task_problem(count, support is not None)
    if problem:
        held = "one class" if count == 1 else f"{count} classes"
        raise InputError(f"{spec}: its train split holds {held}; {problem}")


def run_checkpoint(out, data, protection: Protection, seed: int, threads: int, precision: str, request: dict,
                   every_s: float, resume: bool) -> Checkpoint:
    """The run's checkpoint in ``out.work``, keyed by everything that decides its bytes."""
    checkpoint = Checkpoint(work_folder(out), {
        "input": data.fingerprint(), "method": protection.name, "params": protection.params(), "seed": seed,
        "threads": threads, "precision": precision, **request, "medshield": __version__,
        "torch": package_versions()["torch"], "working": getattr(data, "notes", {}).get("working"),
        **({"world": world_size()} if world_size() > 1 else {}),  # torchrun's processes: a resume needs as many
    }, every_s=every_s)
    if resume:
        checkpoint.check_resumable()
    elif checkpoint.exists():
        raise InputError(f"{checkpoint.folder} holds the checkpoint of an earlier, unfinished run to {out}: pass --resume "
                         "to continue it, or delete that folder to start over")
    return checkpoint


def with_support(data, support: list[str] | None, count: int, classes: list[int] | None, seed: int, root: str | None):
    """The owner's data, with ``count`` borrowed classes when ``support`` is given (paper Section 7.1)."""
    if support is None:
        return data
    sources = {Path(spec).name: open_dataset(spec, root)[0] for spec in support}  # public names: no paths
    held = np.flatnonzero(np.isin(data.labels("train"), classes)) if classes is not None else None
    return WithSupport(data, sources, count, seed, rows=held)


def select_for_protection(data, fraction: float, classes: list[int] | None, seed: int) -> np.ndarray:
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


def generate(run: ProtectionRun):
    """Run the method; returns its result with the released images as the owner's release holds them:
    support rows dropped, duplicates sharing one noise, unselected images unchanged. Under torchrun only
    rank 0 holds the released images; the other processes return None."""
    result = run.protection.protect(run.generation_data, seed=run.seed, device=run.device, progress=run.progress,
                                    precision=run.precision, checkpoint=run.checkpoint, resume=run.resume)
    if not is_main():
        return None
    data, originals = run.data, run.data.images("train")
    if run.generation_data is not data:
        result.released = owner_rows(result.released, originals, run.generation_data.rows)
    groups = data.train_duplicate_groups()
    if groups:
        share_noise(result.released, originals, groups, value_range(data))
    unselected = np.flatnonzero(~run.selected)
    if len(unselected):
        result.released[unselected] = originals[unselected]
    return result


def owner_rows(released: ScratchArray, originals: np.ndarray, rows: np.ndarray) -> ScratchArray:
    """The owner's release from one generated with support images: its first ``len(rows)`` rows
    go back to the owner's ``rows``; owner images not in the generation stay as they were."""
    owner = ScratchArray(originals.shape, originals.dtype)
    for start in range(0, len(originals), 256):
        owner[start:start + 256] = originals[start:start + 256]
    for start in range(0, len(rows), 256):
        owner[rows[start:start + 256]] = released[start:min(start + 256, len(rows))]
    return owner


def publish(run: ProtectionRun, result) -> Release | None:
    """Write, check, seal, sign and publish the release; the checkpoint goes once it is complete.
    Under torchrun rank 0 alone publishes, after every process finished (the others: None)."""
    if result is None:
        return None
    created = now_iso()
    release = write_release(run.out, run.data, result.released, public_manifest(run, result, created),
                            max_linf=result.max_linf, max_l0=result.max_l0, overwrite=run.replace, key_out=run.key_path,
                            private=private_record(run, created), measure_utility=utility_sample, owner=run.owner,
                            labels_csv=run.labels_csv, jpeg_as_png=run.jpeg_as_png)
    run.checkpoint.remove()  # the release is complete: nothing left to resume
    return release


def public_manifest(run: ProtectionRun, result, created: str) -> dict:
    """What was done and measured, nothing about where the originals are."""
    data, request = run.data, run.request
    return {
        "medshield": __version__,
        "created": created,
        "method": run.protection.name,
        "preset": run.preset_name,
        "seed": run.seed,
        "precision": result.precision,
        "threads": run.threads,
        "params": result.params,
        "sparsity": run.protection.sparsity(),
        "dataset_name": data.name,
        "dataset_file": dataset_file(data),
        "num_classes": data.num_classes,
        "train_images": int(len(result.released)),
        "support": run.generation_data.record if request["support"] is not None else None,
        "partial": {"fraction": request["fraction"], "classes": request["classes"],
                    "protected_images": int(run.selected.sum())},
        "generation_seconds": round(result.seconds, 2),
        "source_log": result.log,
        "versions": package_versions(),
    }


def private_record(run: ProtectionRun, created: str) -> dict:
    """The owner's record, kept in the key file: the input's path and hash, the command, the machine."""
    support = run.request["support"] or []
    return {
        "created": created,
        "command": sys.argv,
        "input": {"dataset": run.spec, "path": str(run.data.path.resolve()), "sha256": run.checkpoint.run["input"],
                  "labels": str(Path(run.labels_csv).resolve()) if run.labels_csv else None,
                  "support": [str(Path(spec).resolve()) if Path(spec).exists() else spec for spec in support]},
        "machine": machine(),
    }
