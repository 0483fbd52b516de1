"""Plain-text and markdown tables for results (human-readable beside the JSON)."""
from __future__ import annotations

import math


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
    return table
