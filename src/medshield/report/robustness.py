"""What a release survives: the defense grid's verdicts and each setting's worst case.

A grid cell pairs the victim trained on a release with the clean-trained victim of the same
dataset, seed, defense and recipe. The protection *holds* when the protected-trained victim ends at
least ``HOLD_POINTS`` below the clean-trained one or, on a dataset whose clean accuracy is less than
``NARROW_GAP`` points above its majority floor (PneumoniaMNIST), at or below the floor +
``FLOOR_MARGIN``; it *breaks* when it ends within the grid's ``BREAK_POINTS`` of clean; in between
it is *weakened*. A cell whose clean-trained victim ends within ``FLOOR_POINTS`` of the floor
*trains nothing* and says nothing about the protection. A setting's worst case is the trainer's
best response: the defense (no defense included) after which the protected-trained victim scores
highest, seed mean, over the cells that train and, where asked, the defenses measured with enough
seeds; its drop is measured from the clean-trained victim with no defense, which is what the
trainer wanted. A defense that costs the clean-trained victim as much as the protection (VAE
purification on BloodMNIST) undoes the protection in its own cell, yet gives the trainer nothing:
it is a verdict, not the worst case.
"""
from __future__ import annotations

import statistics
from collections import defaultdict

from ..evaluate.grid import BREAK_POINTS, FLOOR_POINTS

HOLD_POINTS, NARROW_GAP, FLOOR_MARGIN = 20.0, 25.0, 5.0

RULE = (f"Verdict: *holds* when the protected-trained victim ends at least {HOLD_POINTS:g} points below the "
        f"clean-trained one under the same defense, recipe and seed (on a dataset whose clean accuracy is less than "
        f"{NARROW_GAP:g} points above its majority floor: at or below the floor + {FLOOR_MARGIN:g}); *breaks* within "
        f"{BREAK_POINTS:g} points of clean; *weakened* in between; *trains nothing* when the clean-trained victim ends "
        f"within {FLOOR_POINTS:g} points of the floor. The second verdict applies the rule to both victims' best epoch "
        f"(early stopping on the test split, the trainer's best case).")


def verdict(clean: float, protected: float, floor: float) -> str:
    """One cell's verdict from accuracies in [0, 1]."""
    clean, protected, floor = 100 * clean, 100 * protected, 100 * floor
    if clean - floor < FLOOR_POINTS:
        return "trains nothing"
    if protected <= (floor + FLOOR_MARGIN if clean - floor < NARROW_GAP else clean - HOLD_POINTS):
        return "holds"
    return "breaks" if clean - protected < BREAK_POINTS else "weakened"


def worst_cases(cells: list[dict], victim: str | None = None, min_seeds: int = 1) -> dict[tuple[str, str], dict]:
    """(dataset, setting) -> its defenses by verdict of the seed means, the drop per defense, and the
    worst case (the trainer's best response) with its drop in points below the clean-trained victim
    with no defense, among the defenses measured over at least ``min_seeds`` seeds (a claim about
    protection rests on several, not on one draw; None when no defense has as many, or no
    defense-free cell was measured). ``cells`` are the grid's records (``robust_cpu.json``);
    ``victim`` keeps one victim's cells (None: all)."""
    groups = defaultdict(list)
    for c in cells:
        if victim is None or c["victim"] == victim:
            groups[(c["dataset"], c["setting"], c["defense"])].append(c)
    out = {}
    for (dataset, setting, defense), group in sorted(groups.items()):
        mean = lambda key: statistics.mean(c[key] for c in group)  # noqa: E731
        said = verdict(mean("clean_trained_accuracy"), mean("protected_trained_accuracy"), mean("majority_floor"))
        entry = out.setdefault((dataset, setting), {"holds": [], "weakened": [], "breaks": [], "trains nothing": [],
                                                    "drops": {}, "seeds": {}, "reached": {}})
        entry[said].append(defense)
        entry["seeds"][defense] = len({c["seed"] for c in group})
        if defense == "none":
            entry["wanted"] = mean("clean_trained_accuracy")
        if said != "trains nothing":
            entry["drops"][defense] = round(100 * (mean("clean_trained_accuracy") - mean("protected_trained_accuracy")), 1)
            entry["reached"][defense] = mean("protected_trained_accuracy")
    for entry in out.values():
        reached = {d: acc for d, acc in entry.pop("reached").items() if entry["seeds"][d] >= min_seeds}
        best = max(reached.items(), key=lambda kv: kv[1], default=None)
        wanted = entry.pop("wanted", None)
        if best and wanted is not None:
            entry["worst_defense"], entry["worst_drop"] = best[0], round(100 * (wanted - best[1]), 1)
        else:
            entry["worst_defense"], entry["worst_drop"] = None, None
        entry["min_seeds"] = min_seeds
    return out


def survival_sentence(setting: str, case: dict) -> str:
    """In plain words: which defenses the release survives, which weaken it, which undo it."""
    seeds = case.get("seeds", {})
    said = lambda names: ", ".join(f"{n} ({case['drops'][n]:+.1f}{', 1 seed' if seeds.get(n) == 1 else ''})"  # noqa: E731
                                   for n in names)
    parts = [f"Against a trainer's defenses (drop below clean-trained, points), {setting} holds under "
             f"{said(case['holds']) or 'none of them'}"]
    if case["weakened"]:
        parts.append(f"is weakened by {said(case['weakened'])}")
    if case["breaks"]:
        parts.append(f"is undone by {said(case['breaks'])}")
    return "; ".join(parts) + "."
