"""Victims x defenses on one release: what an unauthorized user's choices make of the protection.

Each cell trains one victim architecture under one defense on the release and, with the same
recipe and seed, on the originals, and records both. Cells go to a :class:`Journal` as they
finish; a cell already journaled under the same key is not trained again, so a grid of many
hours resumes where it stopped. Rendering the cells is ``report``'s job.
"""
from __future__ import annotations

import sys

from .._distributed import World
from .._runtime import now_iso
from .defenses import parse_defense
from .journal import Journal
from .train import Recipe, train_victim

METRICS = ("test_accuracy", "peak_test_accuracy", "balanced_accuracy", "auc", "train_seconds")


def check_defenses(defenses: list[str]) -> None:
    """Fail on a bad defense name before hours of training."""
    for spec in defenses:
        if spec != "none":
            parse_defense(spec)


def cell_key(arch: str, defense: str, *, preset_name: str, seed: int, recipe: dict | None, recipe_name: str | None,
             precision: str, threads: int | None) -> dict:
    """What makes two cells the same computation (a cell's results move with each of these)."""
    key = {"arch": arch, "defense": defense, "preset": preset_name, "seed": seed, "options": recipe or {}}
    if precision != "fp32":  # fp32 cells keep the keys they had before precision was a setting
        key["precision"] = precision
    if threads is not None:
        key["threads"] = threads
    return {**key, "recipe": recipe_name} if recipe_name else key


def run_grid(protected, clean, journal: Journal, *, victims: list[str], defenses: list[str], preset_name: str,
             recipe: dict | None, recipe_name: str | None, seed: int, device: str, progress: bool, precision: str,
             threads: int, keyed_threads: int | None, world: World | None = None) -> list[dict]:
    """The cells of ``victims`` x ``defenses`` on ``protected`` (a release's data) beside ``clean``
    (its originals), from ``journal`` where there, trained and journaled where not.

    Under torchrun (``world``) whole cells go to the processes in turn, each trained in one process
    exactly as one process trains it (a 28 px victim scales better so than split over processes);
    rank 0 journals every round's cells in the order one process would."""
    check_defenses(defenses)

    def key(arch, spec):
        return cell_key(arch, spec, preset_name=preset_name, seed=seed, recipe=recipe, recipe_name=recipe_name,
                        precision=precision, threads=keyed_threads)

    def train_cell(arch, spec):
        victim = Recipe.named(preset_name, {**(recipe or {}), "arch": arch}, recipe_name)
        chosen = parse_defense(spec) if spec != "none" else None
        runs = {label: train_victim(train, protected, victim, seed=seed, device=device, progress=progress and main,
                                    defense=chosen, precision=precision)
                for label, train in (("protected", protected), ("clean", clean))}
        return {"key": key(arch, spec), "arch": arch, "defense": spec, "recipe": runs["clean"]["recipe"],
                "defense_detail": runs["clean"]["defense"], "precision": precision, "threads": threads,
                "created": now_iso(),
                **{f"{label}_{metric}": runs[label][metric] for label in runs for metric in METRICS},
                "majority_floor": runs["clean"]["majority_floor"]}

    main, size, rank = (True, 1, 0) if world is None else (world.main, world.size, world.rank)
    done = [c["key"] for c in journal.records()]
    todo = [(a, d) for a in victims for d in defenses if key(a, d) not in done]
    for first in range(0, len(todo), size):
        mine = todo[first + rank] if first + rank < len(todo) else None
        if progress and mine is not None:
            print(f"grid cell {first + rank + 1}/{len(todo)}{'' if world is None else f' (process {rank})'}: "
                  f"{mine[0]} + {mine[1]}", file=sys.stderr, flush=True)
        cell = train_cell(*mine) if mine is not None else None
        for finished in ([cell] if world is None else world.gather(cell)):
            if main and finished is not None:
                journal.append(finished)
    if world is not None:
        world.barrier()  # rank 0 has journaled the last round
    wanted = [key(a, d) for a in victims for d in defenses]
    return [c for c in journal.records() if c["key"] in wanted]


# A cell "breaks" the protection when the protected-trained victim comes within BREAK_POINTS of
# the clean-trained one; it "trains nothing" when the clean-trained victim ends within
# FLOOR_POINTS of the majority floor (then the protected number says nothing about the protection).
BREAK_POINTS = 5.0
FLOOR_POINTS = 2.0


def cell_verdict(cell: dict) -> str:
    """'holds', 'breaks' or 'trains nothing' for one victim + defense cell (see the thresholds)."""
    clean, protected = cell["clean_test_accuracy"], cell["protected_test_accuracy"]
    if 100 * (clean - cell["majority_floor"]) < FLOOR_POINTS:
        return "trains nothing"
    return "breaks" if 100 * (clean - protected) < BREAK_POINTS else "holds"


def crop_gaps(cells: list[dict]) -> list[tuple[str, str, float]]:
    """The paper's Gap for every crop cell that has a 'none' cell of the same victim."""
    plain = {c["arch"]: c for c in cells if c["defense"] == "none"}
    gaps = []
    for c in cells:
        if c["defense"].startswith("crop") and c["arch"] in plain:
            base = plain[c["arch"]]
            gap = (base["protected_test_accuracy"] - c["protected_test_accuracy"]) - (
                base["clean_test_accuracy"] - c["clean_test_accuracy"])
            gaps.append((c["arch"], c["defense"], gap))
    return gaps
