"""How the SALM release holds up against what an unauthorized trainer does (paper Tables 2-4, APBench).

    python benchmarks/robustness_cpu.py [--datasets bloodmnist,pneumoniamnist] [--cells all] [--only ARCH+DEFENSE ...] [--preset cpu]

Evaluates results/runs/salm_<preset>_<flag> (written by salm_cpu.py) with the library's grid
(``medshield.run_grid``): each cell trains one victim on the release and the same
victim, with the same defense, recipe and seed, on the original. Cells run in the order of CELLS
(the must-show tables first), each appended to the committed journal
results/robustness_<preset>_<flag>.jsonl as it finishes, so an interrupted run resumes. The tables are rewritten to results/robustness_<preset>.md and .json after every cell
from the journals of every dataset in DATASETS, so one process per dataset (``--datasets
bloodmnist --threads 1`` beside ``--datasets pneumoniamnist --threads 1``) can run side by side
on two cores; their 'train s' columns then count a shared machine.
"""
from __future__ import annotations

import argparse

import torch
from medmnist import INFO

from common import RESULTS, context, write_json, write_markdown
from medshield import Journal, open_dataset, original_of, run_grid
from medshield.report import BREAK_POINTS, FLOOR_POINTS, cell_verdict, crop_gaps, fmt_pct, markdown_table

DATASETS = ("bloodmnist", "pneumoniamnist")
# Adversarial training in this grid is single-step with a random start (FGSM-RS, Wong et al. 2020,
# step 1.25 eps): 2 victim-costs per run instead of PGD-10's 11, which 2 cores cannot afford per
# cell. PGD-10 (``adversarial:eps=8``, the default) stays available to a grid with a GPU.
FAST_ADVERSARIAL = ("adversarial:eps=4,steps=1,step_size=5", "adversarial:eps=8,steps=1,step_size=10")
# (victim, defense) in run order: the must-show tables first, the costliest victims last.
CELLS = [
    ("resnet18", "none"), ("resnet18", "median"), ("resnet18", "crop:fraction=0.75"), ("resnet18", "mean"),
    ("resnet18", "gaussian"), ("resnet18", "jpeg:quality=10"), ("resnet18", "bitdepth:bits=2"), ("resnet18", "cutout"),
    ("resnet18", "mixup"), ("resnet18", "cutmix"), ("vgg11", "none"), ("small-cnn", "none"),
    *[("resnet18", spec) for spec in FAST_ADVERSARIAL], ("resnet18", "strong-augment"), ("resnet18", "grayscale"),
    ("resnet18", "jpeg:quality=50"), ("resnet18", "jpeg:quality=30"), ("resnet18", "jpeg:quality=75"),
    ("resnet50", "none"), ("densenet121", "none"),
]
# Victims this grid does not afford on 2 CPU cores, and why (torch's FLOP counter, 28 px RGB, width 16,
# forward + backward per image: ResNet-18 172 M, ResNet-50 394 M, DenseNet-121 253 M; a ResNet-18 cell,
# both victims, takes about 10 minutes per dataset on one core, beside a second lane).
LEFT_OUT = {
    ("resnet50", "none"): "2.3x ResNet-18's FLOPs per image, so about 2.3x a ResNet-18 cell's 10 min per dataset on one core",
    ("densenet121", "none"): "1.5x ResNet-18's FLOPs per image, spread over 120 thin layers that run slower per FLOP on a CPU",
}
# Cells that equal another on some data, so they are not trained there (the table says so).
SINGLE_CHANNEL_NO_OP = {("resnet18", "grayscale")}
FILTERS = ("none", "mean", "median", "gaussian")


def row(cell: dict, label: str) -> list:
    drop = 100 * (cell["clean_test_accuracy"] - cell["protected_test_accuracy"])
    return [label, fmt_pct(cell["clean_test_accuracy"]), fmt_pct(cell["protected_test_accuracy"]), f"{drop:.1f}",
            fmt_pct(cell["protected_peak_test_accuracy"]), f"{cell['protected_train_seconds'] + cell['clean_train_seconds']:.0f}"]


HEAD = ["", "clean-trained %", "protected-trained %", "drop (points)", "protected best epoch %", "train s (both)"]


def no_ops(flag: str) -> set[tuple[str, str]]:
    return SINGLE_CHANNEL_NO_OP if INFO[flag]["n_channels"] == 1 else set()


def finding(cell: dict, base: dict | None) -> str | None:
    """What a cell says about the protection, in words, or None when the protection held."""
    clean, protected, floor = cell["clean_test_accuracy"], cell["protected_test_accuracy"], cell["majority_floor"]
    verdict = cell_verdict(cell)
    if verdict == "trains nothing":
        return (f"trains nothing: even the clean-trained victim ends at {fmt_pct(clean)} % "
                f"(majority floor {fmt_pct(floor)} %), so the cell says nothing about the protection")
    if verdict == "holds":
        return None
    cost = f"; the defense itself moves clean-trained accuracy by {100 * (clean - base['clean_test_accuracy']):+.1f} points" if base else ""
    return (f"breaks the protection (protected-trained {fmt_pct(protected)} % vs clean-trained "
            f"{fmt_pct(clean)} % under the same defense{cost})")


def dataset_section(flag: str, cells: list[dict], wanted: list[tuple[str, str]]) -> tuple[str, list[str]]:
    by = {(c["arch"], c["defense"]): c for c in cells}
    parts, findings = [f"## {flag}\n"], []
    skipped = [f"{a} + {d}" for a, d in wanted if (a, d) in no_ops(flag)]
    if skipped:
        parts.append(f"Not trained: {', '.join(skipped)}: a no-op on this single-channel dataset, so equal to 'none'.\n")
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
        if (arch, spec) != ("resnet18", "none"):
            found = finding(c, base)
            if found:
                findings.append(f"{flag}: {arch} + {spec} {found}")
    missing = [(a, d) for a, d in wanted if (a, d) not in by and (a, d) not in no_ops(flag)]
    left_out = [f"{a} + {d} ({LEFT_OUT[(a, d)]})" for a, d in missing if (a, d) in LEFT_OUT]
    not_run = [f"{a} + {d}" for a, d in missing if (a, d) not in LEFT_OUT]
    if left_out:
        parts.append("Left out on 2 CPU cores, for cost (the same command runs them where there is time or a GPU): "
                     + "; ".join(left_out) + "\n")
    if not_run:
        parts.append("Not run yet: " + ", ".join(not_run) + "\n")
    return "\n".join(parts), findings


def write(results: dict[str, list[dict]], wanted, ctx: dict, preset: str) -> None:
    write_json(RESULTS / f"robustness_{preset}.json", {"context": ctx, "cells": results})
    sections, findings = [], []
    for flag, cells in results.items():
        text, found = dataset_section(flag, cells, wanted)
        sections.append(text)
        findings += found
    headline = ("**Defenses that break the protection** (protected-trained within "
                f"{BREAK_POINTS:g} points of clean-trained), **and cells that measure nothing** (clean-trained within "
                f"{FLOOR_POINTS:g} points of the majority floor):\n\n" + ("\n".join(f"- {f}" for f in findings) if findings else "- none so far") + "\n")
    text = (f"# SALM release vs the unauthorized trainer's toolkit, `{preset}` preset\n\n"
            f"Command: `cd benchmarks && python robustness_cpu.py --datasets <flag> --threads 1`, one lane per dataset "
            f"side by side; last written by `{ctx['command']}` (commit {ctx['commit']}), started {ctx['date']}\n\n"
            f"Machine: {ctx['machine']}\n\n"
            "Every cell: the same victim, recipe (the preset's: width 16, 600 iterations of 128, SGD, flip + crop),\n"
            "seed and defense, trained once on the SALM release and once on the original; test accuracy on the\n"
            "real test split. Defense definitions: README, 'Victims and defenses'. Adversarial training here is\n"
            "single-step with a random start (FGSM-RS, step 1.25 eps; 2 victim-costs instead of PGD-10's 11).\n\n"
            + headline + "\n" + "\n".join(sections))
    write_markdown(RESULTS / f"robustness_{preset}.md", text, keep=("## History",))  # dated notes on rerun cells, by hand


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="bloodmnist,pneumoniamnist")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cells", default="all", help="'all' or how many of CELLS to run (in order)")
    parser.add_argument("--only", nargs="+", default=None, metavar="ARCH+DEFENSE",
                        help="run only the cells whose 'arch+defense' starts with one of these (e.g. resnet18+jpeg "
                             "vgg11+none), so two lanes can split one dataset's cells without overlap")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--render-only", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    wanted = CELLS if args.cells == "all" else CELLS[: int(args.cells)]
    ctx = context()
    flags = args.datasets.split(",")
    unknown = [flag for flag in flags if flag not in DATASETS]
    if unknown:
        parser.error(f"--datasets: {', '.join(unknown)} not among {', '.join(DATASETS)}")
    journals = {flag: Journal(RESULTS / f"robustness_{args.preset}_{flag}.jsonl") for flag in DATASETS}

    def load_all():  # every dataset's journal, so a lane's tables include the other lane's cells
        return {flag: journals[flag].records() for flag in DATASETS if journals[flag].path.exists() or flag in flags}

    write(load_all(), wanted, ctx, args.preset)
    if args.render_only:
        return
    to_run = [(a, d) for a, d in wanted if args.only is None or any(f"{a}+{d}".startswith(o) for o in args.only)]
    for arch, spec in to_run:  # cell by cell across datasets, so both tables grow together
        for flag in flags:
            if (arch, spec) in no_ops(flag):
                continue
            data, release = open_dataset(str(RESULTS / "runs" / f"salm_{args.preset}_{flag}"))
            run_grid(data, original_of(release), journals[flag], victims=[arch], defenses=[spec], preset_name=args.preset,
                     recipe=None, recipe_name=None, seed=args.seed, device="auto", progress=False, precision="fp32",
                     threads=args.threads, keyed_threads=None)
            write(load_all(), wanted, ctx, args.preset)
            print(flag, arch, spec, flush=True)


if __name__ == "__main__":
    main()
