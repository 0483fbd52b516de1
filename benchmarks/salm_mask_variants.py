"""Compare SALM mask variants (and plain EM) at equal source steps on BloodMNIST.

Every variant costs the same per source step (the mask is a top-k over the gradient), so equal
steps is equal time; the measured generation seconds are recorded to show it.

    python benchmarks/salm_mask_variants.py run --variants step,fixed --threads 1
    python benchmarks/salm_mask_variants.py summarize

``run`` appends one JSON line per variant to results/salm_mask_variants.jsonl (so two lanes
can run side by side); ``summarize`` writes results/salm_mask_variants.md and .json.
"""
from __future__ import annotations

import argparse

import torch

from common import RESULTS, context, data_root, write_json, write_markdown
from medshield import Journal, Recipe, create_protection, load, pixel_change, train_victim
from medshield.report import markdown_table

VARIANTS = {
    "step": {"mask": "step"},
    "fixed": {"mask": "fixed", "mask_refresh": 1},
    "fixed-refresh3": {"mask": "fixed", "mask_refresh": "3 visits"},
    "fixed-batch": {"mask": "fixed", "mask_scope": "batch"},
    "fixed-class": {"mask": "fixed", "mask_scope": "class"},
    "step-class": {"mask": "step", "mask_scope": "class"},
    "final": {"mask": "final"},
    "em": {"k": 1.0},
    # not mask variants: levers of the generation budget, for choosing the cpu preset
    "fixed-noaug": {"mask": "fixed", "transform": "none"},
    "fixed-width8-2x-steps": {"mask": "fixed", "width": 8, "steps": "2x"},
    "clean": None,
}
JSONL = Journal(RESULTS / "salm_mask_variants.jsonl")


def run(args):
    torch.set_num_threads(args.threads)
    data = load(args.dataset, data_root()).train_subset(args.subset, seed=args.seed)
    n = len(data.images("train"))
    recipe = Recipe(width=args.width, epochs=args.epochs, iterations=None)
    for name in args.variants.split(","):
        params = dict(VARIANTS[name]) if VARIANTS[name] is not None else None
        record = {"variant": name, "dataset": data.name, "train_images": n, "source_steps": args.steps, "threads": args.threads, **context()}
        if params is None:
            train, record["generation_s"] = data, 0.0
        else:
            if params.get("mask_refresh") == "3 visits":
                params["mask_refresh"] = 3 * n // args.batch_size
            if params.get("steps") == "2x":
                params["steps"] = 2 * args.steps
            settings = {"steps": args.steps, "width": args.width, "batch_size": args.batch_size, **params}
            protection = create_protection("salm", **settings)
            result = protection.protect(data, seed=args.seed, progress=False)
            train = data.with_train(result.images)
            record.update(params=result.params, generation_s=round(result.seconds, 1),
                          change=pixel_change(data.images("train"), result.images), source_log=result.log[-1:])
        victim = train_victim(train, data, recipe, seed=args.seed, progress=False)
        record.update({k: victim[k] for k in ("test_accuracy", "peak_test_accuracy", "balanced_accuracy", "majority_floor", "train_seconds")})
        record["victim_recipe"] = victim["recipe"]
        JSONL.append(record)
        print(name, record["test_accuracy"], record["generation_s"], flush=True)


def summarize(_args):
    records = JSONL.records()
    rows = []
    for r in records:
        p = r.get("params", {})
        rows.append([r["variant"], p.get("mask", "-"), p.get("mask_scope", "-"), p.get("k", "-"), p.get("steps", "-"), p.get("width", "-"),
                     p.get("transform", "-"), f"{100 * r['test_accuracy']:.1f}", f"{100 * r['peak_test_accuracy']:.1f}",
                     f"{100 * r['change']['l0_max']:.1f}" if "change" in r else "0", f"{r['generation_s']:.0f}"])
    headers = ["variant", "mask", "scope", "K", "source steps", "source width", "T", "victim test acc %", "peak test acc %",
               "max L0 % of positions", "generation s"]
    table = markdown_table(headers, rows)
    first = records[0] if records else {}
    text = (
        "# SALM mask variants at equal source steps\n\n"
        f"Command: `{first.get('command', '')}` (commit {first.get('commit', '')}), date {first.get('date', '')}\n\n"
        f"Machine: {first.get('machine', {})}\n\n"
        f"Data: {first.get('dataset')} train subset of {first.get('train_images')} images; full test split. "
        f"Source steps: {first.get('source_steps')}. Victim recipe: {first.get('victim_recipe')}\n\n"
        f"{table}\n"
    )
    write_markdown(RESULTS / "salm_mask_variants.md", text)
    write_json(RESULTS / "salm_mask_variants.json", records)
    print(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    p = sub.add_parser("run")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--dataset", default="bloodmnist")
    p.add_argument("--subset", type=int, default=3000)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    sub.add_parser("summarize")
    args = parser.parse_args()
    run(args) if args.verb == "run" else summarize(args)


if __name__ == "__main__":
    main()
