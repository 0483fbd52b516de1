"""The SALM paper's Table 1 at a preset: every method on every dataset, one victim recipe.

    python benchmarks/table1.py [--datasets breastmnist,retinamnist,pneumoniamnist,bloodmnist]
                                [--methods tap,em,sp,salm,random] [--preset cpu] [--seed 0]

Each cell (dataset x method, plus the clean baseline) is one ``medshield protect`` and one victim
trained with the preset's recipe and seed, through the library API. Finished cells are appended
to results/table1_<preset>.jsonl and skipped when the script is run again (resume); the table is
rewritten after every cell to results/table1_<preset>.md and .json.
"""
from __future__ import annotations

import argparse
import time

import torch

from common import RESULTS, context, data_root, write_json, write_markdown
from medshield import Journal, pipeline
from medshield.report import TABLE1_ACCURACY, markdown_table

DATASETS = ("bloodmnist", "pneumoniamnist", "breastmnist", "retinamnist")
COLUMNS = ("clean", "tap", "em", "sp", "salm", "random")
PAPER = TABLE1_ACCURACY  # Random is not in the paper


def paper_lowest(flag: str) -> str:
    cells = {m: v for m, v in PAPER[flag].items() if m != "clean"}
    return min(cells, key=cells.get)


def run_cell(flag: str, method: str, args, root) -> dict:
    if method == "clean":
        report = pipeline.evaluate(flag, preset_name=args.preset, root=str(root), seed=args.seed, progress=False)
        return {"test_accuracy": report["test_accuracy"], "peak_test_accuracy": report["peak_test_accuracy"],
                "majority_floor": report["majority_floor"], "generation_s": 0.0,
                "victim_s": round(report["train_seconds"], 1), "victim_recipe": report["recipe"], "measured_change": None}
    out = RESULTS / "runs" / f"table1_{args.preset}_{flag}_{method}"
    release = pipeline.protect(flag, out, method=method, preset_name=args.preset, root=str(root), seed=args.seed,
                               overwrite=True, progress=False)
    report = pipeline.evaluate(str(out), preset_name=args.preset, seed=args.seed, progress=False)
    return {"test_accuracy": report["test_accuracy"], "peak_test_accuracy": report["peak_test_accuracy"],
            "majority_floor": report["majority_floor"], "generation_s": release.manifest["generation_seconds"],
            "victim_s": round(report["train_seconds"], 1), "victim_recipe": report["recipe"],
            "measured_change": release.manifest["measured"], "protect_params": release.manifest["params"]}


def runs_list(records: list[dict]) -> str:
    runs: dict[tuple, list[str]] = {}
    for r in records:
        runs.setdefault((r["command"], r["commit"], r["date"]), []).append(f"{r['dataset']}/{r['method']}")
    return "\n".join(f"- `{command}` (commit {commit}, {date}): {', '.join(cells)}" for (command, commit, date), cells in runs.items())


def efficiency(cells: dict) -> str:
    """SALM vs EM at the same budget (same source steps, batch, width): time and protected accuracy."""
    rows = []
    for flag in DATASETS:
        salm, em, clean = cells.get((flag, "salm")), cells.get((flag, "em")), cells.get((flag, "clean"))
        if salm and em:
            rows.append([flag, f"{salm['generation_s']:.0f}", f"{100 * salm['test_accuracy']:.1f}",
                         f"{em['generation_s']:.0f}", f"{100 * em['test_accuracy']:.1f}",
                         f"{100 * clean['test_accuracy']:.1f}" if clean else "-"])
    if not rows:
        return ""
    return ("SALM vs EM at the same budget (both: the preset's source steps, batch and source model; the paper\n"
            "claims SALM is faster and stronger):\n\n"
            + markdown_table(["dataset", "SALM generation s", "SALM acc %", "EM generation s", "EM acc %", "clean acc %"], rows)
            + "\n\n")


def write(records: list[dict], preset: str) -> None:
    write_json(RESULTS / f"table1_{preset}.json", records)
    cells = {(r["dataset"], r["method"]): r for r in records}
    rows, timing, ordering = [], [], []
    for flag in DATASETS:
        if not any(d == flag for d, _ in cells):
            continue
        clean = cells.get((flag, "clean"))
        row, times = [flag], [flag]
        for method in COLUMNS:
            r = cells.get((flag, method))
            paper = PAPER[flag].get(method)
            paper_text = f" [paper {paper:.1f}]" if paper is not None else ""
            if r is None:
                row.append("not run" + paper_text)
                times.append("-")
                continue
            acc = 100 * r["test_accuracy"]
            drop = f" (↓{100 * (clean['test_accuracy'] - r['test_accuracy']):.1f})" if clean and method != "clean" else ""
            row.append(f"{acc:.1f}{drop}{paper_text}")
            times.append(f"{r['generation_s']:.0f}")
        rows.append(row)
        timing.append(times)
        done = {m: cells[(flag, m)]["test_accuracy"] for m in COLUMNS[1:] if (flag, m) in cells and m != "random"}
        expected = paper_lowest(flag)
        if len(done) == 4:
            lowest = min(done, key=done.get)
            verdict = "holds" if lowest == expected else f"does not hold: lowest here is {lowest.upper()}"
            ordering.append(f"- {flag}: paper's lowest is {expected.upper()}; {verdict}.")
        else:
            ordering.append(f"- {flag}: paper's lowest is {expected.upper()}; not all methods run yet.")
    first = records[0] if records else {}
    floors = {r["dataset"]: f"{100 * r['majority_floor']:.1f}" for r in records}
    text = (
        f"# Table 1 at the `{preset}` preset\n\n"
        "Commands, in the order they ran (cells of each: table1_<preset>.json):\n\n" + runs_list(records) + "\n\n"
        f"Machine: {first.get('machine', {})}\n\n"
        "Test accuracy (%) of a victim ResNet-18 trained on each release (the preset's victim recipe, same seed for\n"
        "all cells); ↓ is the drop from Clean; [paper] is the SALM paper's Table 1 (paper preset, GPU).\n\n"
        f"{markdown_table(['dataset', *[c.upper() if c not in ('clean', 'random') else c.capitalize() for c in COLUMNS]], rows)}\n\n"
        f"Majority-class floors (%): {floors}\n\n"
        "Does the paper's ordering (which method protects best) hold here?\n\n" + "\n".join(ordering) + "\n\n"
        "Generation wall time (s) per method:\n\n"
        f"{markdown_table(['dataset', *COLUMNS], timing)}\n\n"
        + efficiency(cells) +
        "Cells marked in table1_<preset>.json with `taken_from` reuse the identical run of benchmarks/salm_cpu.py.\n"
    )
    write_markdown(RESULTS / f"table1_{preset}.md", text, keep=("## Notes",))  # provenance and load notes, by hand


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="breastmnist,retinamnist,pneumoniamnist,bloodmnist")
    parser.add_argument("--methods", default=",".join(COLUMNS))
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--render-only", action="store_true", help="rewrite the table from the journal, run nothing")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root, ctx = data_root(), context()
    jsonl = RESULTS / f"table1_{args.preset}.jsonl"
    records = [r for r in Journal(jsonl).records() if r["seed"] == args.seed]
    if args.render_only:
        write(records, args.preset)
        return
    done = {(r["dataset"], r["method"]) for r in records}
    for flag in args.datasets.split(","):
        for method in args.methods.split(","):
            if (flag, method) in done:
                continue
            start = time.perf_counter()
            cell = run_cell(flag, method, args, root)
            record = {"dataset": flag, "method": method, "preset": args.preset, "seed": args.seed, **cell,
                      "cell_s": round(time.perf_counter() - start, 1), **ctx}
            Journal(jsonl).append(record)
            records.append(record)
            write(records, args.preset)
            print(flag, method, f"{record['test_accuracy']:.3f}", flush=True)


if __name__ == "__main__":
    main()
