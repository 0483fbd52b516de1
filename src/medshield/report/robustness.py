"""What a release survives: the defense grid's verdicts and each setting's worst case.

A grid cell pairs the victim trained on a release with the clean-trained victim of the same
dataset, seed, defense and recipe. The protection *holds* when the protected-trained victim ends at
least ``HOLD_POINTS`` below the clean-trained one or, on a dataset whose clean accuracy is less than
``NARROW_GAP`` points above its majority floor (PneumoniaMNIST), at or below the floor +
``FLOOR_MARGIN``; it *breaks* when it ends within the grid's ``BREAK_POINTS`` of clean; in between
it is *weakened*. A cell whose clean-trained victim ends within ``FLOOR_POINTS`` of the floor
*trains nothing* and says nothing about the protection. A setting's worst case is the defense
that gives a trainer the most back (the smallest seed-mean drop), over the cells that train and,
where asked, over the defenses measured with enough seeds. Settings rank by their verdicts, worst
first, then by it (``standing``).
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
    worst defense with its seed-mean drop in points, among the defenses measured over at least
    ``min_seeds`` seeds (a claim about protection rests on several, not on one draw; None when no
    defense has as many). ``cells`` are the grid's records (``robust_cpu.json``); ``victim`` keeps
    one victim's cells (None: all)."""
    groups = defaultdict(list)
    for c in cells:
        if victim is None or c["victim"] == victim:
            groups[(c["dataset"], c["setting"], c["defense"])].append(c)
    out = {}
    for (dataset, setting, defense), group in sorted(groups.items()):
        mean = lambda key: statistics.mean(c[key] for c in group)  # noqa: E731
        said = verdict(mean("clean_trained_accuracy"), mean("protected_trained_accuracy"), mean("majority_floor"))
        entry = out.setdefault((dataset, setting), {"holds": [], "weakened": [], "breaks": [], "trains nothing": [],
                                                    "drops": {}, "seeds": {}})
        entry[said].append(defense)
        entry["seeds"][defense] = len({c["seed"] for c in group})
        if said != "trains nothing":
            entry["drops"][defense] = round(100 * (mean("clean_trained_accuracy") - mean("protected_trained_accuracy")), 1)
    for entry in out.values():
        counted = {d: drop for d, drop in entry["drops"].items() if entry["seeds"][d] >= min_seeds}
        worst = min(counted.items(), key=lambda kv: kv[1], default=None)
        entry["worst_defense"], entry["worst_drop"] = worst if worst else (None, None)
        entry["min_seeds"] = min_seeds
    return out


def _counted(case: dict) -> dict[str, float]:
    return {d: drop for d, drop in case.get("drops", {}).items() if case["seeds"][d] >= case.get("min_seeds", 1)}


def shared_defenses(cases: list[dict]) -> set[str]:
    """The defenses every one of ``cases`` measured over its seeds: settings compare on the same ones."""
    return set.intersection(*(set(_counted(case)) for case in cases)) if cases else set()


def standing(case: dict, defenses: set[str]) -> tuple[list[int], float]:
    """What ranks a setting against a trainer who picks the defense (the larger wins): its verdicts over
    ``defenses``, worst first (undone 0, weakened 1, holds 2), then its worst seed-mean drop over them.
    A verdict changes only with a drop of 5 or 20 points: under it, seed noise does not reorder settings
    that a defense undoes, or weakens, alike."""
    level = {defense: rank for rank, said in enumerate(("breaks", "weakened", "holds")) for defense in case.get(said, [])}
    drops = _counted(case)
    chosen = defenses or set(drops)
    return (sorted(level[d] for d in chosen if d in level),
            min((drops[d] for d in chosen if d in drops), default=case["worst_drop"]))


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
