"""Does bf16 change the protection? EM and SALM generated in fp32 and in bf16, 3 seeds each.

    python benchmarks/precision_cpu.py [--methods em,salm] [--seeds 0,1,2] [--subset 2000]
                                       [--threads 1] [--only METHOD:PRECISION ...]

The cpu preset on a seeded BloodMNIST train slice (``--subset`` images; val and test whole).
Each cell generates the noise at one precision and seed; the victim (the preset's ResNet-18
recipe, same seed) always trains in fp32, so only the generation's precision differs. One clean
victim per seed is the baseline. Cells are journaled to results/precision_cpu.jsonl as they finish
and skipped when there, so a killed run resumes and two lanes (``--only em:fp32 em:bf16`` and
``--only salm:fp32 salm:bf16 clean``) can share the work. Tables: results/precision_cpu.md/.json.
"""
from __future__ import annotations

import argparse
import json
import statistics

import torch

from common import RESULTS, context, data_root, write_json, write_markdown
from medshield import Journal, Recipe, create_protection, load, pixel_change, train_victim
from medshield.report import markdown_table

JOURNAL = Journal(RESULTS / "precision_cpu.jsonl")


def cell_key(method: str, precision: str, seed: int, args) -> dict:
    return {"method": method, "precision": precision, "seed": seed, "subset": args.subset, "threads": args.threads,
            "dataset": args.dataset}


def run_cell(method, precision, seed, data, args) -> dict:
    recipe = Recipe.named("cpu", None)
    record = {**cell_key(method, precision, seed, args), **context()}
    if method == "clean":
        trained = train_victim(data, data, recipe, seed=seed, progress=False, precision="fp32")
    else:
        result = create_protection(method, preset="cpu").protect(data, seed=seed, progress=False, precision=precision)
        change = pixel_change(data.images("train"), result.images)
        trained = train_victim(data.with_train(result.images), data, recipe, seed=seed, progress=False, precision="fp32")
        record.update(generation_s=round(result.seconds, 1), linf=change["linf"], l0_mean=change["l0_mean"], params=result.params)
    record.update(test_accuracy=trained["test_accuracy"], peak_test_accuracy=trained["peak_test_accuracy"],
                  majority_floor=trained["majority_floor"], victim_recipe=trained["recipe"], victim_precision="fp32")
    return record


def summary(records: list[dict]) -> list[list]:
    rows = []
    for method in dict.fromkeys(r["method"] for r in records):
        for precision in ("fp32", "bf16"):
            cells = sorted((r for r in records if r["method"] == method and (r["precision"] == precision or method == "clean")),
                           key=lambda r: r["seed"])
            if not cells:
                continue
            acc = [100 * r["test_accuracy"] for r in cells]
            sd = f"{statistics.stdev(acc):.1f}" if len(acc) > 1 else "-"
            gen = [r["generation_s"] for r in cells if "generation_s" in r]
            rows.append([method, "-" if method == "clean" else precision, ", ".join(str(r["seed"]) for r in cells),
                         " / ".join(f"{a:.1f}" for a in acc), f"{statistics.mean(acc):.1f}", sd,
                         f"{min(acc):.1f}-{max(acc):.1f}", f"{statistics.mean(gen):.0f}" if gen else "-"])
            if method == "clean":
                break
    return rows


def write(records: list[dict], args) -> None:
    write_json(RESULTS / "precision_cpu.json", records)
    first = records[0] if records else {}
    text = (f"# bf16 vs fp32 generation: victim accuracy on a {args.subset}-image {args.dataset} slice, `cpu` preset\n\n"
            f"Command: `{first.get('command', '')}` (commit {first.get('commit', '')}); first record {first.get('date', '')}\n\n"
            f"Machine: {first.get('machine', {})}; {args.threads} torch thread(s) per lane\n\n"
            "The noise is generated in fp32 or in bf16 (networks under autocast; noise, projection, mask and\n"
            "quantization fp32); the victim always trains in fp32 with the preset's recipe and the cell's seed\n"
            "and is tested on the whole real test split. Generation s is the generation alone, with two lanes\n"
            "sharing the 2 cores (not a speed measurement: see speed_cpu.md).\n\n"
            + markdown_table(["method", "precision", "seeds", "test acc % per seed", "mean %", "sd", "range %", "generation s"],
                             summary(records)) + "\n")
    write_markdown(RESULTS / "precision_cpu.md", text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="bloodmnist")
    parser.add_argument("--methods", default="em,salm")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--subset", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", nargs="*", help="cells to run in this lane: METHOD:PRECISION or clean")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load(args.dataset, str(data_root())).train_subset(args.subset)
    seeds = [int(s) for s in args.seeds.split(",")]
    cells = [("clean", "fp32")] + [(m, p) for m in args.methods.split(",") for p in ("fp32", "bf16")]
    if args.only:
        cells = [(m, p) for m, p in cells if (f"{m}:{p}" if m != "clean" else "clean") in args.only]
    for seed in seeds:
        for method, precision in cells:
            if JOURNAL.has(cell_key(method, precision, seed, args)):
                continue
            record = run_cell(method, precision, seed, data, args)
            JOURNAL.append(record)
            write(JOURNAL.records(), args)
            print(json.dumps({k: record.get(k) for k in ("method", "precision", "seed", "test_accuracy", "generation_s")}), flush=True)


if __name__ == "__main__":
    main()
