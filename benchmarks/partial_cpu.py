"""Partial protection (paper Table 6 / Appendix D.1): only a fraction of the train images protected.

    python benchmarks/partial_cpu.py [--dataset bloodmnist] [--fractions 0,0.2,0.4,0.6,0.8,1.0] [--preset cpu]

``medshield protect --fraction F`` generates the noise on the whole train split and keeps it on a
seeded F of the images (``medshield.select_for_protection``). With the same seed that noise is the
noise of the full release results/runs/salm_<preset>_<flag> (salm_cpu.py), so this script builds
each mix from that release and the original (identical bytes to what ``protect --fraction F``
writes) instead of regenerating the noise five times, and trains the preset's victim on it.
Results go to results/partial_<preset>.md and .json, one record per fraction, resumable.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from common import RESULTS, context, write_json, write_markdown
from medshield import Journal, Recipe, open_dataset, original_of, select_for_protection, train_victim
from medshield.report import fmt_pct, markdown_table


def write(records: list[dict], preset: str, flag: str) -> None:
    write_json(RESULTS / f"partial_{preset}.json", records)
    records = sorted(records, key=lambda r: r["fraction"])
    clean = next((r for r in records if r["fraction"] == 0.0), None)
    rows = [[f"{100 * r['fraction']:.0f} %", r["protected_images"], fmt_pct(r["test_accuracy"]),
             f"{100 * (clean['test_accuracy'] - r['test_accuracy']):.1f}" if clean else "-",
             fmt_pct(r["peak_test_accuracy"]), f"{r['train_seconds']:.0f}"] for r in records]
    first = records[0] if records else {}
    text = (f"# Partial protection, {flag}, SALM, `{preset}` preset\n\n"
            f"Command: `{first.get('command', '')}` (commit {first.get('commit', '')}); first record {first.get('date', '')}\n\n"
            f"Machine: {first.get('machine', {})}\n\n"
            "A seeded fraction of the train images carries the SALM noise, the rest are the originals; the\n"
            "preset's victim ResNet-18 trains on the mix and is tested on the real test split. 0 % is the clean\n"
            "baseline, 100 % the full release.\n\n"
            + markdown_table(["protected", "images", "test acc %", "drop (points)", "best epoch %", "victim s"], rows) + "\n")
    write_markdown(RESULTS / f"partial_{preset}.md", text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="bloodmnist")
    parser.add_argument("--fractions", default="0,0.2,0.4,0.6,0.8,1.0")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ctx = context()
    release_dir = RESULTS / "runs" / f"salm_{args.preset}_{args.dataset}"
    release, manifest = open_dataset(str(release_dir))
    if manifest is None:
        raise SystemExit(f"{release_dir} is not a release; run benchmarks/salm_cpu.py first")
    original = original_of(manifest)
    seed = manifest.manifest["seed"]
    recipe = Recipe.named(args.preset, None)
    journal = RESULTS / f"partial_{args.preset}.jsonl"
    records = [r for r in Journal(journal).records() if r["dataset"] == args.dataset]
    done = {r["fraction"] for r in records}
    for fraction in (float(f) for f in args.fractions.split(",")):
        if fraction in done:
            continue
        selected = select_for_protection(original, fraction, None, seed)
        mask = selected.reshape((-1,) + (1,) * (original.images("train").ndim - 1))
        mix = original.with_train(np.where(mask, release.images("train"), original.images("train")))
        result = train_victim(mix, original, recipe, seed=seed, progress=False)
        record = {"dataset": args.dataset, "fraction": fraction, "protected_images": int(selected.sum()),
                  "preset": args.preset, "seed": seed, "release": release_dir.name,
                  **{k: result[k] for k in ("test_accuracy", "balanced_accuracy", "auc", "peak_test_accuracy", "majority_floor",
                                            "train_seconds", "recipe", "history")}, **ctx}
        Journal(journal).append(record)
        records.append(record)
        write(records, args.preset, args.dataset)
        print(args.dataset, fraction, f"{record['test_accuracy']:.3f}", flush=True)
    write(records, args.preset, args.dataset)


if __name__ == "__main__":
    main()
