"""How the SALM release holds up against what an unauthorized trainer does (paper Tables 2-4, APBench).

    python benchmarks/robustness_cpu.py [--datasets bloodmnist,pneumoniamnist] [--cells all] [--preset cpu]

Evaluates results/runs/salm_<preset>_<flag> (written by salm_cpu.py) with ``medshield.pipeline.grid``:
each cell trains one victim on the release and the same victim, with the same defense, recipe and
seed, on the original. Cells run in the order of CELLS (cheapest, most telling first), each
appended to results/runs/robustness_<preset>_<flag>/grid.jsonl as it finishes, so an interrupted
run resumes. The tables (architectures, low-pass filters, crop Gap, defenses) are rewritten to
results/robustness_<preset>.md and .json after every cell; cells not run yet are listed as such.
"""
from __future__ import annotations

import argparse
import json

import torch

from _common import RESULTS, context
from medshield import pipeline
from medshield.report import markdown_table
from medshield.report.tables import crop_gaps, fmt_pct

# (victim, defense) in run order; adversarial training costs ~11 victims each, so it is last.
CELLS = [
    ("resnet18", "none"), ("resnet18", "median"), ("resnet18", "crop:fraction=0.75"), ("resnet18", "jpeg:quality=10"),
    ("resnet18", "bitdepth:bits=2"), ("resnet18", "mean"), ("resnet18", "gaussian"), ("resnet18", "cutout"),
    ("resnet18", "mixup"), ("resnet18", "cutmix"), ("resnet18", "strong-augment"), ("vgg11", "none"),
    ("small-cnn", "none"), ("resnet18", "jpeg:quality=30"), ("resnet18", "jpeg:quality=50"),
    ("resnet18", "jpeg:quality=75"), ("resnet18", "grayscale"), ("resnet50", "none"), ("densenet121", "none"),
    ("resnet18", "adversarial:eps=4"), ("resnet18", "adversarial:eps=8"),
]
FILTERS = ("none", "mean", "median", "gaussian")
# A defense "breaks" the protection when the protected-trained victim comes within this many
# points of the clean-trained one under the same defense.
BREAK_POINTS = 5.0


def row(cell: dict, label: str) -> list:
    drop = 100 * (cell["clean_test_accuracy"] - cell["protected_test_accuracy"])
    return [label, fmt_pct(cell["clean_test_accuracy"]), fmt_pct(cell["protected_test_accuracy"]), f"{drop:.1f}",
            fmt_pct(cell["protected_peak_test_accuracy"]), f"{cell['protected_train_seconds'] + cell['clean_train_seconds']:.0f}"]


HEAD = ["", "clean-trained %", "protected-trained %", "drop (points)", "protected best epoch %", "train s (both)"]


def dataset_section(flag: str, cells: list[dict], wanted: list[tuple[str, str]]) -> tuple[str, list[str]]:
    by = {(c["arch"], c["defense"]): c for c in cells}
    parts, findings = [f"## {flag}\n"], []
    base = by.get(("resnet18", "none"))
    if base:
        parts.append(f"Majority floor {fmt_pct(base['majority_floor'])} %. Without a defense the release costs a "
                     f"ResNet-18 {100 * (base['clean_test_accuracy'] - base['protected_test_accuracy']):.1f} points.\n")
    arch_rows = [row(by[(a, "none")], a) for a, d in wanted if d == "none" and (a, d) in by]
    parts.append("### Architectures (paper Table 2 layout)\n\n" + markdown_table(["victim", *HEAD[1:]], arch_rows) + "\n")
    filter_rows = [row(by[("resnet18", f)], f) for f in FILTERS if ("resnet18", f) in by]
    parts.append("### Low-pass filters, 3x3 (paper Table 3 layout), ResNet-18\n\n" + markdown_table(["filter", *HEAD[1:]], filter_rows) + "\n")
    crop_cells = [c for c in cells if c["arch"] == "resnet18" and (c["defense"].startswith("crop") or c["defense"] == "none")]
    gaps = crop_gaps(crop_cells)
    crop_rows = []
    for arch, spec, gap in gaps:
        c = by[(arch, spec)]
        crop_rows.append([arch, spec, fmt_pct(base["clean_test_accuracy"]), fmt_pct(c["clean_test_accuracy"]),
                          fmt_pct(base["protected_test_accuracy"]), fmt_pct(c["protected_test_accuracy"]), f"{100 * gap:+.1f}"])
    parts.append("### Cropping (paper Table 4 layout)\n\nGap = (D_u - Cropped(D_u)) - (D_c - Cropped(D_c)); "
                 "positive: cropping removed more protection than task.\n\n"
                 + markdown_table(["victim", "crop", "D_c", "Cropped(D_c)", "D_u", "Cropped(D_u)", "Gap"], crop_rows) + "\n")
    defense_rows = [row(by[(a, d)], d) for a, d in wanted
                    if a == "resnet18" and d not in FILTERS and not d.startswith("crop") and (a, d) in by]
    parts.append("### Defenses (APBench), ResNet-18\n\n" + markdown_table(["defense", *HEAD[1:]], defense_rows) + "\n")
    for (arch, spec), c in by.items():
        gap = 100 * (c["clean_test_accuracy"] - c["protected_test_accuracy"])
        if (arch, spec) != ("resnet18", "none") and gap < BREAK_POINTS:
            findings.append(f"{flag}: {arch} + {spec} breaks the protection (protected-trained {fmt_pct(c['protected_test_accuracy'])} % "
                            f"vs clean-trained {fmt_pct(c['clean_test_accuracy'])} % under the same defense)")
    missing = [f"{a} + {d}" for a, d in wanted if (a, d) not in by]
    if missing:
        parts.append("Not run yet: " + ", ".join(missing) + "\n")
    return "\n".join(parts), findings


def write(results: dict[str, list[dict]], wanted, ctx: dict, preset: str, note: str) -> None:
    (RESULTS / f"robustness_{preset}.json").write_text(json.dumps({"context": ctx, "cells": results}, indent=2) + "\n")
    sections, findings = [], []
    for flag, cells in results.items():
        text, found = dataset_section(flag, cells, wanted)
        sections.append(text)
        findings += found
    headline = ("**Defenses that break the protection** (protected-trained within "
                f"{BREAK_POINTS:g} points of clean-trained):\n\n" + ("\n".join(f"- {f}" for f in findings) if findings else "- none so far") + "\n")
    text = (f"# SALM release vs the unauthorized trainer's toolkit, `{preset}` preset\n\n"
            f"Command: `{ctx['command']}` (commit {ctx['commit']}); started {ctx['date']}\n\nMachine: {ctx['machine']}\n\n"
            "Every cell: the same victim, recipe (the preset's: width 16, 600 iterations of 128, SGD, flip + crop),\n"
            "seed and defense, trained once on the SALM release and once on the original; test accuracy on the\n"
            "real test split. Defense definitions: README, 'Victims and defenses'.\n\n"
            + headline + "\n" + "\n".join(sections) + (f"\nNote: {note}\n" if note else ""))
    (RESULTS / f"robustness_{preset}.md").write_text(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="bloodmnist,pneumoniamnist")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cells", default="all", help="'all' or how many of CELLS to run (in order)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--note", default="")
    parser.add_argument("--render-only", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    wanted = CELLS if args.cells == "all" else CELLS[: int(args.cells)]
    ctx = context()
    flags = args.datasets.split(",")
    journals = {flag: RESULTS / "runs" / f"robustness_{args.preset}_{flag}" for flag in flags}

    def load(flag):
        path = journals[flag] / "grid.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []

    results = {flag: load(flag) for flag in flags}
    write(results, wanted, ctx, args.preset, args.note)
    if args.render_only:
        return
    for arch, spec in wanted:  # cell by cell across datasets, so both tables grow together
        for flag in flags:
            release = RESULTS / "runs" / f"salm_{args.preset}_{flag}"
            pipeline.grid(str(release), journals[flag], victims=[arch], defenses=[spec], preset_name=args.preset,
                          seed=args.seed, progress=False)
            results[flag] = load(flag)
            write(results, wanted, ctx, args.preset, args.note)
            print(flag, arch, spec, flush=True)


if __name__ == "__main__":
    main()
