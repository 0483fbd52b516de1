"""The ``evaluate`` job: train the victim an unauthorized user would, on a release or any dataset.

A victim is trained on the train split and scored on the real test split; with ``compare`` the
same recipe and seed also train on the originals (restored with the key, or given), and for a
release that protected some classes only, accuracy is split into protected and other classes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .._distributed import current_world, guarded
from .._runtime import machine, now_iso, package_versions, pick_device, use_threads
from ..data.folder import FolderData
from ..errors import InputError
from ..models import resolve_precision
from ..release import open_dataset, original_of
from .defenses import parse_defense
from .train import Recipe, check_batch, train_victim


def _check_task(spec: str, data, release, compare: bool) -> None:
    """Refuse, before any training, what gives the victim nothing to learn or to be scored on."""
    if len(np.unique(data.labels("train"))) < 2:
        raise InputError(f"{spec}: its train split holds one class; a victim needs two or more to learn anything")
    if isinstance(data, FolderData) and not data.has_split("test"):
        raise InputError(f"{spec} has no test images; give --labels FILE.csv with a split column (train/val/test)")
    if compare and release is None:
        raise InputError("--compare needs a release folder written by 'medshield protect'")


def evaluate(
    spec: str,
    *,
    preset_name: str = "paper",
    recipe: dict | None = None,
    recipe_name: str | None = None,
    root: str | None = None,
    seed: int = 0,
    compare: bool = False,
    device: str = "auto",
    progress: bool = True,
    defense: str | None = None,
    labels: str | None = None,
    precision: str = "auto",
    key: str | Path | None = None,
    original: str | None = None,
    threads: int | None = None,
) -> dict | None:
    """Train a victim on a dataset's train split and score it on the test split.

    With ``compare`` and a release, also trains the same recipe and seed on the original data.
    ``defense`` (e.g. ``"jpeg:quality=10"``) is what the adversary does to the training data or
    the training; with ``compare`` the clean run uses the same defense.

    Under torchrun the processes train each victim data-parallel; rank 0 returns the report, the
    others None.
    """
    threads = use_threads(threads)
    chosen = parse_defense(defense) if defense else None
    victim = Recipe.named(preset_name, recipe, recipe_name)
    world = current_world()
    check_batch(victim, world)
    precision = resolve_precision(precision, pick_device(device), "victim")
    data, release = open_dataset(spec, root, labels)
    _check_task(spec, data, release, compare)
    runs = {("protected" if release else "clean"): data}
    if compare:
        runs["clean"] = original_of(release, key, original, labels)
    results = {}
    with guarded(world):
        for label, train_data in runs.items():
            result = train_victim(train_data, data, victim, seed=seed, device=device, progress=progress, defense=chosen,
                                  precision=precision, world=world)
            results[label] = None if result is None else {"training_data": label, **result}
    if world is not None and not world.main:
        return None  # rank 0 reports
    return _report(results, spec=spec, data=data, release=release, preset_name=preset_name, recipe_name=recipe_name,
                   threads=threads)


def _report(results: dict, *, spec: str, data, release, preset_name: str, recipe_name: str | None, threads: int) -> dict:
    """The evaluation's record: the victim trained on ``spec``, what made the release, and the
    clean-trained victim beside it when there is one."""
    main = results["protected" if release else "clean"]
    report = {
        "dataset": data.name,
        "source": str(spec),
        "preset": preset_name,
        "recipe_name": recipe_name or f"preset {preset_name}",
        "created": now_iso(),
        "threads": threads,
        "versions": package_versions(),
        "machine": machine(),
        **main,
    }
    if release is not None:
        report["release_manifest"] = {k: release.manifest.get(k) for k in ("method", "preset", "seed", "precision", "params", "measured", "partial")}
        classes = (release.manifest.get("partial") or {}).get("classes")
        if classes:
            report["by_protection"] = split_by_classes(results, classes)
    if "clean" in results and release is not None:
        report["clean"] = results["clean"]
        report["accuracy_drop"] = results["clean"]["test_accuracy"] - main["test_accuracy"]
    return report


def split_by_classes(results: dict, classes: list[int]) -> dict:
    """Test accuracy on the protected classes and on the others, for each training run."""
    split = {}
    for label, result in results.items():
        accuracy, count = result["per_class_accuracy"], result["per_class_count"]
        groups = {"protected_classes_accuracy": [c for c in count if c in classes],
                  "other_classes_accuracy": [c for c in count if c not in classes]}
        split[label] = {
            name: (sum(accuracy[c] * count[c] for c in members) / sum(count[c] for c in members)) if members else None
            for name, members in groups.items()
        }
    return split
