"""What the distributed path costs on one machine, and how far its release moves (issue 29, item 3).

    python benchmarks/scale_cpu.py [--dataset bloodmnist] [--work /tmp/medshield-scale-cpu] [--write-only]
                                   [--evaluate-only]

On a 2-core machine, 2 torchrun processes x 1 thread do the work of 1 process x 2 threads: their
ratio is the overhead of the distributed path (gloo collectives, the shared noise files, the
per-step averaging of batch-norm statistics), not a speed-up. The script runs, as subprocesses of
the CLI an owner types, in one run on one machine:

- ``protect`` (SALM K = 0.50, preset cpu, seed 0) in 1 process x 2 threads and 2 processes x 1
  thread, and once more in 1 process with seed 1 (how far another seed moves the bytes);
- the preset's victim on each seed-0 release in 1 process (the two releases' protection), and on
  the 1-process release data-parallel in 2 processes (``evaluate``'s overhead);
- a two-cell ``grid`` in each layout (whole cells per process).

Each step is journaled (results/scale_cpu.jsonl) and skipped when done; the releases live in
``--work``. Results: results/scale_cpu.md and .json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from common import RESULTS, context, cpu_model, data_root, write_json, write_markdown
from medshield import Journal, open_dataset
from medshield.report import fmt_pct, markdown_table

SALM = ["--method", "salm", "--param", "k=0.5", "--preset", "cpu", "--device", "cpu"]
VICTIM = ["--preset", "cpu", "--seed", "0", "--device", "cpu"]
GRID = ["--victims", "resnet18", "--defenses", "none;median", "--iterations", "200"]
FIRST_RUN = "2026-12-05"  # the records of the first run carry no run field
LAYOUTS = {1: "1 process x 2 threads", 2: "2 processes x 1 thread"}


def command(processes: int, verb: list[str]) -> tuple[list[str], dict]:
    """``python -m medshield VERB`` in one process with 2 threads, or under torchrun in 2 with 1 each."""
    if processes == 1:
        return [sys.executable, "-m", "medshield", *verb, "--threads", "2"], dict(os.environ)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes), "-m", "medshield"]
    return [*launcher, *verb, "--threads", "1"], {**os.environ, "OMP_NUM_THREADS": "1"}


def timed(processes: int, verb: list[str]) -> float:
    argv, env = command(processes, verb)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"failed ({done.returncode}): {' '.join(argv)}\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def protect(args, processes: int, seed: int) -> dict:
    out = args.work / f"salm-w{processes}-seed{seed}"
    wall = timed(processes, ["protect", args.dataset, "--root", str(args.root), "--out", str(out), *SALM,
                             "--seed", str(seed), "--quiet", "--overwrite"])
    manifest = json.loads((out / "manifest.json").read_text())
    return {"release": str(out), "wall_seconds": wall, "generation_seconds": manifest["generation_seconds"],
            "train_images": manifest["train_images"]}


def evaluate(args, processes: int, release: str) -> dict:
    report = args.work / f"evaluation-w{processes}-{Path(release).name}.json"
    wall = timed(processes, ["evaluate", release, *VICTIM, "--json", str(report), "--quiet"])
    result = json.loads(report.read_text())
    return {"release": release, "wall_seconds": wall, "train_seconds": result["train_seconds"],
            "test_accuracy": result["test_accuracy"], "peak_test_accuracy": result["peak_test_accuracy"],
            "majority_floor": result["majority_floor"]}


def grid(args, processes: int, release: str) -> dict:
    out = args.work / f"grid-w{processes}"
    wall = timed(processes, ["grid", release, "--out", str(out), *GRID, *VICTIM, "--quiet"])
    cells = json.loads((out / "grid.json").read_text())["cells"]
    return {"release": release, "wall_seconds": wall, "cells": len(cells),
            "accuracies": {c["defense"]: [c["protected_test_accuracy"], c["clean_test_accuracy"]] for c in cells}}


def difference(first: str, second: str) -> dict:
    """How far two releases' train images are apart: share of differing bytes, mean and largest level step."""
    a, b = (open_dataset(path)[0].images("train").astype(np.int32) for path in (first, second))
    gap = np.abs(a - b)
    changed = gap > 0
    return {"bytes_differing": float(changed.mean()), "mean_level_difference": float(gap[changed].mean()),
            "max_level_difference": int(gap.max())}


def steps(args) -> list[tuple[dict, callable]]:
    """Every measurement, in order, as (journal key, what computes it)."""
    w1, w2, other = (str(args.work / f"salm-w{w}-seed{s}") for w, s in ((1, 0), (2, 0), (1, 1)))
    return [
        ({"step": "protect", "processes": 1, "seed": 0}, lambda: protect(args, 1, 0)),
        ({"step": "protect", "processes": 2, "seed": 0}, lambda: protect(args, 2, 0)),
        ({"step": "protect", "processes": 1, "seed": 1}, lambda: protect(args, 1, 1)),
        ({"step": "difference", "pair": "2 processes vs 1"}, lambda: difference(w1, w2)),
        ({"step": "difference", "pair": "seed 1 vs seed 0 (1 process)"}, lambda: difference(w1, other)),
        ({"step": "evaluate", "processes": 1, "release_processes": 1}, lambda: evaluate(args, 1, w1)),
        ({"step": "evaluate", "processes": 1, "release_processes": 2}, lambda: evaluate(args, 1, w2)),
        ({"step": "evaluate", "processes": 2, "release_processes": 1}, lambda: evaluate(args, 2, w1)),
        ({"step": "grid", "processes": 1}, lambda: grid(args, 1, w1)),
        ({"step": "grid", "processes": 2}, lambda: grid(args, 2, w1)),
    ]


def find(records: list[dict], **fields) -> dict | None:
    return next((r for r in records if all(r.get(k) == v for k, v in fields.items())), None)


def ratio_rows(records: list[dict]) -> list[list]:
    """Seconds in each layout and the throughput of 2 x 1 against 1 x 2 (target: 0.9 or more), each pair
    from the latest run that measured both layouts (records without a run: the first run)."""
    rows = []
    for step, label, field in (("protect", "protect: generation", "generation_seconds"),
                               ("protect", "protect: whole command", "wall_seconds"),
                               ("evaluate", "evaluate: victim training", "train_seconds"),
                               ("evaluate", "evaluate: whole command", "wall_seconds"),
                               ("grid", "grid (2 cells): whole command", "wall_seconds")):
        pairs = {}
        for r in records:
            if r["step"] == step and r.get("seed", 0) == 0 and r.get("release_processes", 1) == 1:
                pairs.setdefault(r.get("run", FIRST_RUN), {})[r["processes"]] = r
        runs = [run for run, pair in pairs.items() if len(pair) == 2]
        if runs:
            one, two = pairs[runs[-1]][1], pairs[runs[-1]][2]
            rows.append([label, f"{one[field]:.0f}", f"{two[field]:.0f}", f"{one[field] / two[field]:.2f}x",
                         f"{runs[-1][:10]}, commit {two['commit']}"])
    return rows


def write(records: list[dict]) -> None:
    """The md and json: the ratios from every run's records, the other tables from each step's latest."""
    write_json(RESULTS / "scale_cpu.json", records)
    ratios = ratio_rows(records)
    latest = {}
    for record in records:  # a step redone (its release was gone, or --evaluate-only) counts once, as last measured
        latest[json.dumps({k: record.get(k) for k in ("step", "processes", "seed", "pair", "release_processes")})] = record
    records = list(latest.values())
    first = records[0] if records else {}
    diffs = [[r["pair"], f"{100 * r['bytes_differing']:.1f}", f"{r['mean_level_difference']:.2f}", r["max_level_difference"]]
             for r in records if r["step"] == "difference"]
    victims = [[f"{r['release_processes']} process(es)", LAYOUTS[r["processes"]], fmt_pct(r["test_accuracy"]),
                fmt_pct(r["peak_test_accuracy"]), fmt_pct(r["majority_floor"])]
               for r in records if r["step"] == "evaluate"]
    grids = [[LAYOUTS[r["processes"]], "; ".join(f"{d}: {fmt_pct(p)} / {fmt_pct(c)}" for d, (p, c) in r["accuracies"].items())]
             for r in records if r["step"] == "grid"]
    text = (
        "# One machine, two layouts: the distributed path's overhead and its release (issue 29, item 3)\n\n"
        f"Generated by `python benchmarks/scale_cpu.py` (first record: `{first.get('command', '')}`, commit "
        f"{first.get('commit', '')}, {first.get('date', '')}; CPU {first.get('cpu_model', '')}, "
        f"{first.get('machine', {}).get('cpu_count', '')} cores). BloodMNIST, SALM K = 0.50 (Algorithm 1's dense "
        "release), preset cpu, seed 0; victims: the preset's ResNet-18 (width 16, 600 iterations), seed 0. One run, "
        "one seed per cell.\n\n"
        "## Throughput: 2 processes x 1 thread against 1 process x 2 threads\n\n"
        "Same machine, same work; the ratio is 1 x 2's seconds over 2 x 1's (above 1: the distributed path is "
        "faster). Target: 0.9x or more, i.e. the distributed path costs at most 10 %.\n\n"
        + markdown_table(["what", "1 x 2 threads s", "2 x 1 thread s", "throughput ratio", "run"], ratios)
        + "\n\n## The same release, whatever the number of processes?\n\n"
        "Train images of the 2-process release against the 1-process one (same seed), beside two seeds of "
        "the 1-process run: the share of bytes that differ, and by how many levels (of 255).\n\n"
        + markdown_table(["pair", "bytes differing %", "mean level difference (where differing)", "max level difference"], diffs)
        + "\n\n## Victims on each release\n\n"
        + markdown_table(["release made by", "victim trained in", "test acc %", "best epoch %", "majority floor %"], victims)
        + "\n\n## Grid (2 cells, 200-iteration victims): protected / clean-trained test accuracy\n\n"
        "Each cell is trained whole in one process; with 1 thread (2 x 1) its sums run in another order than with 2.\n\n"
        + markdown_table(["layout", "cells"], grids) + "\n")
    write_markdown(RESULTS / "scale_cpu.md", text, keep=("## Notes",))




def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="bloodmnist")
    parser.add_argument("--work", type=Path, default=Path("/tmp/medshield-scale-cpu"))
    parser.add_argument("--write-only", action="store_true", help="rewrite the md/json from the journal")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="measure evaluate's overhead again: the 1-process release (made again if gone), then its "
                             "victim in each layout")
    args = parser.parse_args()
    args.root = data_root()
    args.work.mkdir(parents=True, exist_ok=True)
    journal = Journal(RESULTS / "scale_cpu.jsonl")
    run = context()["date"]
    for key, compute in ([] if args.write_only else chosen_steps(args)):
        done = [r for r in journal.records() if all(r.get(k) == v for k, v in key.items())]
        redo = args.evaluate_only and key["step"] == "evaluate"
        if done and not redo and ("release" not in done[-1] or Path(done[-1]["release"]).exists()):
            continue
        print(f"scale_cpu: {key}", file=sys.stderr, flush=True)
        journal.append({**key, **compute(), **context(), "cpu_model": cpu_model(), "run": run})
    write(journal.records())


def chosen_steps(args) -> list[tuple[dict, callable]]:
    if not args.evaluate_only:
        return steps(args)
    return [(key, compute) for key, compute in steps(args)
            if key.get("release_processes") == 1 or key == {"step": "protect", "processes": 1, "seed": 0}]


if __name__ == "__main__":
    main()
