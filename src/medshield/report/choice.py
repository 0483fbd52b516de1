"""Which method to use, in the owner's words: the measured protection-utility frontier.

``frontier_cpu.json`` beside this file is the per-setting summary that ``benchmarks/frontier_cpu.py``
writes (victim accuracy over seeds, SSIM, L0, generation time, at the cpu preset). The report
turns it into one sentence for the recommendation and one for each alternative, so an owner
sees what the chosen method buys and what the others would have cost, with numbers.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..protect import PROTECTIONS

SUMMARY = Path(__file__).with_name("frontier_cpu.json")
REFERENCE_DATASET = "bloodmnist"  # where a dataset of the owner's own was not measured


def setting_of(method: str, params: dict) -> str:
    """The frontier's name for a release's method and parameters ("em eps=8", "salm --sparse k=0.30"):
    the method says it (``Protection.setting``)."""
    return PROTECTIONS.get(method).setting(params)


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
        lines.append(f"Measured {where} at the {summary['preset']} preset ({summary['date']}): {recommended['setting']} "
                     f"protects best among the settings that keep the images at least as similar as the paper's SALM "
                     f"release (mean SSIM >= {summary['ssim_floor']:.1f} %) and were measured over as many seeds. "
                     f"{_describe(recommended, clean)}"
                     + (f" (clean: {clean:.1f} %)." if clean is not None else "."))
        lines.append("This release uses " + ("that setting." if ours == recommended["setting"] else
                                             f"{ours}, not the recommended one{_within_noise(ours, recommended, rows)}."))
    lines += [f"Alternative: {_describe(r, clean)}." for r in rows if not r["recommended"]]
    return lines
