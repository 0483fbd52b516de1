"""Which method to use, in the owner's words: the measured protection-utility frontier.

``frontier_cpu.json`` beside this file is the per-setting summary (victim accuracy over seeds,
SSIM, L0, generation time, at the cpu preset), with the command, commit and date that wrote it.
``python benchmarks/frontier_cpu.py --write-only --publish`` writes it from the frontier's journal,
through ``recommended`` and ``frontier_summary`` here: the rule that picks a setting lives beside
the sentences that explain it. The report turns it into one sentence for the recommendation and
one for each alternative, so an owner sees what the chosen method buys and what the others would
have cost, with numbers.
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path

from ..protect import PROTECTIONS
from .paper import PAPER_METHOD_SSIM
from ..evaluate.grid import BREAK_POINTS
from .robustness import survival_sentence

SUMMARY = Path(__file__).with_name("frontier_cpu.json")
PROVENANCE = ("command", "commit", "date")  # what the summary says about the run that wrote it
REFERENCE_DATASET = "bloodmnist"  # where a dataset of the owner's own was not measured


def setting_of(method: str, params: dict) -> str:
    """The frontier's name for a release's method and parameters ("em eps=8", "salm --sparse k=0.30"):
    the method says it (``Protection.setting``)."""
    return PROTECTIONS.get(method).setting(params)


def _mean(cells: list[dict], key: str) -> float:
    return statistics.mean(c[key] for c in cells)


def recommended(candidates: dict[tuple[str, str], list[dict]], ssim_floor: float = PAPER_METHOD_SSIM,
                worst: dict[tuple[str, str], dict] | None = None) -> dict[str, str]:
    """Per dataset, the setting to recommend among those whose mean SSIM is at least ``ssim_floor``
    (the paper's own release: protection at the utility the paper ships, whichever method gives it).

    Where the defense grid measured some of them (``worst``: (dataset, setting as reported) -> its
    worst case, ``report.robustness.worst_cases``), the one whose drop below the clean-trained victim
    is largest after the trainer's best response: a trainer picks the defense, not the owner. A drop
    within the grid's ``BREAK_POINTS`` is no protection, and two such drops differ by seed noise, so
    where no setting survives the best response, and where the grid measured none, the rule is the
    lowest mean victim accuracy without a defense among those measured over as many seeds as the
    best-measured of them (a one-seed lead is a candidate until its seeds catch up). ``candidates``: (dataset,
    setting) -> its cells, each with ``setting``, ``ssim`` and ``test_accuracy``; the caller leaves
    out controls and probes with another victim."""
    eligible: dict[str, list[tuple[int, float, str, float | None]]] = {}
    for (dataset, setting), cells in candidates.items():
        if _mean(cells, "ssim") >= ssim_floor:
            case = (worst or {}).get((dataset, cells[0]["setting"])) or {}
            eligible.setdefault(dataset, []).append((len(cells), _mean(cells, "test_accuracy"), setting,
                                                     case.get("worst_drop")))
    picks = {}
    for dataset, rows in eligible.items():
        surviving = [row for row in rows if _survives(row[3])]
        if surviving:
            picks[dataset] = max(surviving, key=lambda row: (row[3], -row[1]))[2]
            continue
        most = max(seeds for seeds, _, _, _ in rows)
        picks[dataset] = min((acc, setting) for seeds, acc, setting, _ in rows if seeds == most)[1]
    return picks


def _survives(worst_drop: float | None) -> bool:
    """Whether a setting keeps some protection after the trainer's best response."""
    return worst_drop is not None and worst_drop >= BREAK_POINTS


def frontier_summary(measured: dict[tuple[str, str], list[dict]], *, preset: str, provenance: dict,
                     clean: str = "clean", ssim_floor: float = PAPER_METHOD_SSIM,
                     worst: dict[tuple[str, str], dict] | None = None) -> dict:
    """The summary the report reads (``SUMMARY``): per dataset, the mean accuracy of the victims trained
    on the original (setting ``clean``) and each other setting's numbers over its seeds (with its
    worst case over the defense grid where ``worst`` has it), the recommended one first, then by
    accuracy. ``measured``: (dataset, setting) -> its cells, each with ``setting`` (as reported),
    ``test_accuracy``, ``ssim``, ``l0``, ``generation_s`` and ``date``, controls and probes left out as
    for ``recommended``; ``provenance``: the command, commit and date that write it."""
    missing = [key for key in PROVENANCE if not provenance.get(key)]
    if missing:
        raise ValueError(f"a frontier summary needs its provenance: {', '.join(missing)} missing")
    candidates = {key: cells for key, cells in measured.items() if key[1] != clean}
    picks = recommended(candidates, ssim_floor, worst)
    datasets: dict[str, dict] = {}
    for (dataset, setting), cells in measured.items():
        table = datasets.setdefault(dataset, {"clean_accuracy": None, "settings": []})
        accuracies = [100 * c["test_accuracy"] for c in cells]
        if setting == clean:
            table["clean_accuracy"] = round(statistics.mean(accuracies), 1)
            continue
        row = {"setting": cells[0]["setting"], "accuracy": round(statistics.mean(accuracies), 1),
               "sd": round(statistics.stdev(accuracies), 1) if len(cells) > 1 else None, "seeds": len(cells),
               "ssim": round(_mean(cells, "ssim"), 1), "l0": round(100 * _mean(cells, "l0"), 1),
               "generation_s": round(_mean(cells, "generation_s")), "recommended": picks.get(dataset) == setting}
        case = (worst or {}).get((dataset, row["setting"]))
        if case:
            row["defenses"] = {key: case[key] for key in ("holds", "weakened", "breaks", "drops", "seeds",
                                                          "worst_defense", "worst_drop", "min_seeds")}
        table["settings"].append(row)
    for table in datasets.values():
        table["settings"].sort(key=lambda r: (not r["recommended"], r["accuracy"]))
        graded = [r["defenses"]["worst_drop"] for r in table["settings"] if "defenses" in r]
        table["rule"] = ("worst case over the defense grid" if any(map(_survives, graded)) else
                         "accuracy without a defense" + (": no setting survives the trainer's best defense" if graded else ""))
    dates = sorted(c["date"] for cells in measured.values() for c in cells)
    return {"source": "benchmarks/frontier_cpu.py (benchmarks/results/frontier_cpu.md)", "preset": preset,
            "date": dates[-1][:10] if dates else "", "ssim_floor": ssim_floor, "datasets": datasets,
            "provenance": {key: provenance[key] for key in PROVENANCE}}


def load_summary(path: Path = SUMMARY) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _describe(row: dict, clean: float | None) -> str:
    acc = f"{row['accuracy']:.1f} %" + (f" ± {row['sd']:.1f} ({row['seeds']} seeds)" if row["seeds"] > 1 else " (1 seed)")
    drop = f", {clean - row['accuracy']:.1f} points below clean" if clean is not None else ""
    return (f"{row['setting']}: a victim reaches {acc}{drop}; mean SSIM {row['ssim']:.1f} %, "
            f"{row['l0']:.0f} % of positions changed, {row['generation_s']:.0f} s to generate")


def _within_noise(ours: str, recommended: dict, rows: list[dict]) -> str:
    """Said when this release's setting protects within the seed spread of the recommended one."""
    mine = next((r for r in rows if r["setting"] == ours), None)
    spread = max((r.get("sd") or 0.0) for r in (mine, recommended)) if mine else 0.0
    if mine and mine["seeds"] > 1 and recommended["seeds"] > 1 and abs(mine["accuracy"] - recommended["accuracy"]) <= spread:
        return (f", though within the seed spread of it ({mine['accuracy']:.1f} against {recommended['accuracy']:.1f} %, "
                f"sd up to {spread:.1f}): the seeds do not tell the two apart")
    return ""


def advice(dataset: str, method: str, params: dict, summary: dict | None = None) -> list[str]:
    """Sentences: why the recommended setting, where this release stands, what each alternative costs."""
    summary = load_summary() if summary is None else summary
    if not summary:
        return []
    measured_on = dataset if dataset in summary["datasets"] else REFERENCE_DATASET
    if measured_on not in summary["datasets"]:
        return []
    table = summary["datasets"][measured_on]
    rows, clean = table["settings"], table.get("clean_accuracy")
    where = (f"on {measured_on}" if measured_on == dataset else
             f"on {measured_on} (this dataset was not measured; its numbers will differ)")
    ours = setting_of(method, params)
    recommended = next((r for r in rows if r["recommended"]), None)
    lines = []
    if recommended:
        by_grid = table.get("rule") == "worst case over the defense grid"
        how = (f"keeps the largest drop after a trainer's best defense (of those measured over "
               f"{recommended['defenses'].get('min_seeds', 1)} or more seeds) among the settings the defense grid "
               "measured that keep" if by_grid else "protects best without a defense among the settings that keep")
        lines.append(f"Measured {where} at the {summary['preset']} preset ({summary['date']}): {recommended['setting']} "
                     f"{how} the images at least as similar as the paper's SALM release (mean SSIM >= "
                     f"{summary['ssim_floor']:.1f} %)" + ("" if by_grid else " and were measured over as many seeds") + ". "
                     + ("" if by_grid or "defenses" not in recommended else
                        f"No setting measured keeps more than {BREAK_POINTS:g} points of protection after a trainer's "
                        "best defense. ")
                     + 
                     f"{_describe(recommended, clean)}"
                     + (f" (clean: {clean:.1f} %)." if clean is not None else "."))
        if "defenses" in recommended:
            lines.append(survival_sentence(recommended["setting"], recommended["defenses"]))
        lines.append("This release uses " + ("that setting." if ours == recommended["setting"] else
                                             f"{ours}, not the recommended one{_within_noise(ours, recommended, rows)}."))
    lines += [f"Alternative: {_describe(r, clean)}." for r in rows if not r["recommended"]]
    return lines
