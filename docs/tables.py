"""Regenerate the measured tables in README.md and docs/ from the results files that hold them.

    python docs/tables.py          # rewrite the blocks in place
    python docs/tables.py --check  # exit 1 if a committed block differs from what this writes (CI)

A generated block sits between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``; its numbers
live only in the results file it is made from, so a rerun benchmark changes them in one place.
"""
from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FRONTIER = ROOT / "src" / "medshield" / "report" / "frontier_cpu.json"
GRID = ROOT / "benchmarks" / "results" / "robust_cpu.json"
HEADLINE_DEFENSES = {"jpeg:quality=10": "JPEG q10", "adversarial:eps=8,steps=1,step_size=10": "adv. training 8/255",
                     "median": "median 3x3"}


def _mean_sd(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def _under(cells: list[dict], dataset: str, setting: str, defense: str) -> str:
    """Clean-trained -> protected-trained % under one defense, mean over the grid's seeds."""
    chosen = [c for c in cells if (c["dataset"], c["setting"], c["defense"], c["victim"]) ==
              (dataset, setting, defense, "resnet18-cpu")]
    if not chosen:
        return "-"
    clean = _mean_sd([100 * c["clean_trained_accuracy"] for c in chosen])
    protected = _mean_sd([100 * c["protected_trained_accuracy"] for c in chosen])
    return f"{clean} -> {protected}"


def recommendation_table() -> str:
    frontier = json.loads(FRONTIER.read_text())
    cells = json.loads(GRID.read_text()) if GRID.exists() else []
    head = ["dataset", "recommended", "clean-trained %", "protected-trained %", "SSIM %", "seeds",
            *[f"under {name} (clean -> protected %)" for name in HEADLINE_DEFENSES.values()]]
    rows = []
    for dataset, entry in sorted(frontier["datasets"].items()):
        pick = next(s for s in entry["settings"] if s["recommended"])
        accuracy = f"{pick['accuracy']:.1f}" + (f" ± {pick['sd']:.1f}" if pick.get("sd") else "")
        rows.append([dataset, pick["setting"], f"{entry['clean_accuracy']:.1f}", accuracy, f"{pick['ssim']:.1f}",
                     str(pick["seeds"]), *[_under(cells, dataset, pick["setting"], d) for d in HEADLINE_DEFENSES]])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


BLOCKS = {"recommendation": recommendation_table}
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def regenerate(text: str) -> str:
    for name, make in BLOCKS.items():
        pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
        text = pattern.sub(lambda m: m.group(1) + make() + "\n" + m.group(2), text)
    return text


def main() -> int:
    stale = []
    for path in FILES:
        text = path.read_text()
        fresh = regenerate(text)
        if fresh != text:
            stale.append(path.relative_to(ROOT))
            if "--check" not in sys.argv:
                path.write_text(fresh)
    if stale and "--check" in sys.argv:
        print(f"generated tables out of date in {', '.join(map(str, stale))}: run python docs/tables.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
