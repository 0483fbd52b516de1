"""Plain-text and markdown tables for results (human-readable beside the JSON)."""
from __future__ import annotations

import math
from pathlib import Path

from .._runtime import write_json
from ..evaluate.grid import cell_verdict, crop_gaps


def fmt_pct(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * value:.1f}"


def markdown_table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def evaluation_table(report: dict) -> str:
    """One row per victim training set: accuracy, balanced accuracy, AUC, floor, peak (in %)."""
    runs = [report] + ([report["clean"]] if "clean" in report else [])
    rows = [
        [
            run["training_data"],
            fmt_pct(run["test_accuracy"]),
            fmt_pct(run["balanced_accuracy"]),
            fmt_pct(run["auc"]),
            fmt_pct(run["majority_floor"]),
            fmt_pct(run["peak_test_accuracy"]),
            f"{run['train_seconds']:.0f}",
        ]
        for run in runs
    ]
    headers = ["trained on", "test acc %", "balanced acc %", "AUC %", "majority floor %", "peak test acc %", "train s"]
    table = markdown_table(headers, rows)
    if "accuracy_drop" in report:
        table += f"\n\nprotection drop: {100 * report['accuracy_drop']:.1f} points of test accuracy"
    for label, split in (report.get("by_protection") or {}).items():
        table += (f"\ntrained on {label}: {fmt_pct(split['protected_classes_accuracy'])} % on the protected classes, "
                  f"{fmt_pct(split['other_classes_accuracy'])} % on the others")
    return table


UTILITY_ROWS = [
    ("ssim", "SSIM %"), ("psnr", "PSNR dB"), ("ahash", "aHash %"), ("phash", "pHash %"), ("dhash", "dHash %"),
    ("nmi", "NMI %"), ("segmentation_agreement", "segmentation agreement %"),
    ("delta_e", "colour difference (CIEDE2000)"), ("linf", "L-inf (pixel values)"), ("l0", "L0 (% of positions)"),
]


def utility_rows(report: dict) -> list[tuple[str, str]]:
    """The measures a utility report holds (the model agreement only when a model was given)."""
    extra = [("model_segmentation_agreement", "model segmentation agreement %")]
    return UTILITY_ROWS + [row for row in extra if row[0] in report["overall"]]


def utility_table(report: dict) -> str:
    """One row per similarity measure: mean and worst 5 % over the released train images."""
    rows = []
    for key, label in utility_rows(report):
        summary = report["overall"][key]
        scale = 100.0 if key == "l0" else 1.0
        rows.append([label, f"{scale * summary['mean']:.2f}", f"{scale * summary['worst_5pct']:.2f}"])
    return markdown_table(["measure", "mean", "worst 5 %"], rows)


def grid_table(cells: list[dict]) -> str:
    """One row per victim + defense: clean-trained, protected-trained accuracy, drop (and peaks)."""
    rows = [
        [c["arch"], c["defense"], fmt_pct(c["clean_test_accuracy"]), fmt_pct(c["protected_test_accuracy"]),
         f"{100 * (c['clean_test_accuracy'] - c['protected_test_accuracy']):.1f}", fmt_pct(c["protected_peak_test_accuracy"]),
         fmt_pct(c["majority_floor"]), cell_verdict(c)]
        for c in cells
    ]
    headers = ["victim", "defense", "clean-trained acc %", "protected-trained acc %", "drop (points)",
               "protected peak acc %", "majority floor %", "protection"]
    table = markdown_table(headers, rows)
    gaps = crop_gaps(cells)
    if gaps:
        table += "\n\n" + "\n".join(f"crop Gap ({arch}, {spec}): {100 * gap:+.1f} points" for arch, spec, gap in gaps)
        table += ("\n(paper Table 4: Gap = (protected - cropped protected) - (clean - cropped clean); "
                  "positive means cropping removed more of the protection than of the task)")
    return table


def write_grid(out: Path, title: str, context: dict, cells: list[dict]) -> None:
    """``out/grid.json`` (the cells with what produced them) and ``out/grid.md`` (the table)."""
    write_json(Path(out) / "grid.json", {**context, "cells": cells})
    (Path(out) / "grid.md").write_text(f"# {title}\n\n{grid_table(cells)}\n")


TABLE5 = [("ssim", "SSIM"), ("ahash", "aHash"), ("phash", "pHash"), ("dhash", "dHash"), ("nmi", "NMI"),
          ("psnr", "PSNR dB"), ("segmentation_agreement", "seg. agreement"), ("l0", "L0 %")]


def utility_comparison_table(reports: list[dict]) -> str:
    """The paper's Table 5 layout: one row per release (method), mean similarity in %."""
    rows = []
    for r in reports:
        cells = [f"{(100 if key == 'l0' else 1) * r['overall'][key]['mean']:.1f}" for key, _ in TABLE5]
        rows.append([r["method"], r["dataset"], *cells])
    return markdown_table(["method", "dataset", *[label for _, label in TABLE5]], rows)
