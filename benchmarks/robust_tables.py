"""Tables of the defense grid (robust_grid.py's journal): results/robust_cpu.md and .json.

A cell pairs the victim trained on a release with the clean-trained victim of the same dataset,
seed, defense and recipe; its verdict is ``medshield.report.robustness``'s (issue 31's target).
"""
from __future__ import annotations

import re
import statistics
from collections import defaultdict

from common import RESULTS, write_json, write_markdown
from medshield.report import RULE, markdown_table, verdict, worst_cases


def cells(records: list[dict]) -> list[dict]:
    """One record per (dataset, setting, defense, victim, seed) with its clean-trained twin."""
    victims = [r for r in records if r["kind"] == "victim"]
    releases = {(r["dataset"], r["setting"], r["seed"]): r for r in records if r["kind"] == "release"}
    clean = {(r["dataset"], r["seed"], r["defense"], r["victim"]): r for r in victims if r["setting"] == "clean"}
    out = []
    for r in victims:
        twin = clean.get((r["dataset"], r["seed"], r["defense"], r["victim"]))
        if r["setting"] == "clean" or twin is None:
            continue
        release = releases.get((r["dataset"], r["setting"], r["seed"]), {})
        out.append({"dataset": r["dataset"], "setting": r["setting"], "defense": r["defense"], "victim": r["victim"],
                    "seed": r["seed"], "clean_trained_accuracy": twin["test_accuracy"],
                    "clean_peak_accuracy": twin["peak_test_accuracy"], "protected_trained_accuracy": r["test_accuracy"],
                    "protected_peak_accuracy": r["peak_test_accuracy"], "majority_floor": r["majority_floor"],
                    "ssim": release.get("ssim"), "psnr": release.get("psnr"), "l0": release.get("l0"),
                    "verdict": verdict(twin["test_accuracy"], r["test_accuracy"], r["majority_floor"]),
                    "early_stopping_verdict": verdict(twin["peak_test_accuracy"], r["peak_test_accuracy"], r["majority_floor"]),
                    "device": r.get("device"), "workers": r.get("workers"), "commit": r.get("commit")})
    return out


def pct(values: list[float]) -> str:
    values = [100 * v for v in values]
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def group_verdict(group: list[dict], key: str) -> str:
    """The verdict of the seeds' mean accuracies (one seed: that seed's)."""
    mean = lambda name: statistics.mean(c[name] for c in group)  # noqa: E731
    clean, protected = ("clean_peak_accuracy", "protected_peak_accuracy") if key == "peak" else (
        "clean_trained_accuracy", "protected_trained_accuracy")
    return verdict(mean(clean), mean(protected), mean("majority_floor"))


def dataset_table(rows: list[dict], dataset: str) -> str:
    groups = defaultdict(list)
    for c in rows:
        groups[(c["setting"], c["victim"], c["defense"])].append(c)
    head = ["setting", "victim", "defense", "seeds", "clean-trained %", "protected-trained %", "drop",
            "protected best epoch %", "clean best epoch %", "verdict (last / best epoch)"]
    table = []
    for (setting, victim, defense), group in groups.items():
        drop = statistics.mean(100 * (c["clean_trained_accuracy"] - c["protected_trained_accuracy"]) for c in group)
        table.append([setting, victim, defense, ",".join(str(c["seed"]) for c in sorted(group, key=lambda c: c["seed"])),
                      pct([c["clean_trained_accuracy"] for c in group]), pct([c["protected_trained_accuracy"] for c in group]),
                      f"{drop:.1f}", pct([c["protected_peak_accuracy"] for c in group]),
                      pct([c["clean_peak_accuracy"] for c in group]),
                      f"{group_verdict(group, 'last')} / {group_verdict(group, 'peak')}"])
    floor = 100 * rows[0]["majority_floor"]
    return f"### {dataset} (majority floor {floor:.1f} %)\n\n" + markdown_table(head, table)


def summary_table(rows: list[dict], releases: list[dict]) -> str:
    """Per release: its utility, its verdicts and its worst case (the trainer's best response)."""
    head = ["dataset", "setting", "SSIM %", "PSNR dB", "L0 %", "detectability gap (points)", "cells", "holds", "weakened", "breaks",
            "trainer's best defense (drop below clean-trained with no defense, seed means, points)"]
    table = []
    for (dataset, setting), group in sorted(_by(rows, ("dataset", "setting")).items()):
        trained = [c for c in group if c["verdict"] != "trains nothing" and c["victim"] == "resnet18-cpu"]
        worst = worst_cases(group, victim="resnet18-cpu").get((dataset, setting), {})
        rel = [r for r in releases if r["dataset"] == dataset and r["setting"] == setting]
        util = lambda k: f"{statistics.mean(r[k] for r in rel if k in r):.1f}" if any(k in r for r in rel) else "-"  # noqa: E731
        count = lambda v: sum(c["verdict"] == v for c in trained)  # noqa: E731
        table.append([dataset, setting, util("ssim"), util("psnr"), util("l0"), util("detectability_gap"), len(trained), count("holds"),
                      count("weakened"), count("breaks"),
                      f"{worst['worst_defense']} ({worst['worst_drop']:.1f})" if worst.get("worst_defense") else "-"])
    return markdown_table(head, table)


def _by(rows: list[dict], keys: tuple[str, ...]) -> dict:
    out = defaultdict(list)
    for r in rows:
        out[tuple(r[k] for k in keys)].append(r)
    return out


def write_tables(records: list[dict]) -> None:
    rows = cells(records)
    releases = [r for r in records if r["kind"] in ("release", "detect")]
    devices = sorted({f"{r.get('device')} ({(r.get('machine') or {}).get('cuda') or (r.get('machine') or {}).get('processor')}), "
                      f"{r.get('workers')} workers" for r in records})
    commands = sorted({re.sub(r" --id \d+", "", r["command"]) for r in records if "command" in r})  # one per run
    parts = ["# The defense grid on the recommended releases (cpu preset)", "",
             "Generated by `benchmarks/robust_grid.py write` from `robust_cpu.jsonl`. " + RULE, "",
             "Ran on: " + "; ".join(devices) + ".", "Commands: " + "; ".join(f"`{c}`" for c in commands) + ".", "",
             "## Per release", "", summary_table(rows, releases), ""]
    for (dataset,), group in sorted(_by(rows, ("dataset",)).items()):
        parts += [dataset_table(group, dataset), ""]
    # cells of the plan that have no result, and why: written by hand in the results file, kept
    write_markdown(RESULTS / "robust_cpu.md", "\n".join(parts), keep=("## Not measured",))
    write_json(RESULTS / "robust_cpu.json", rows)
