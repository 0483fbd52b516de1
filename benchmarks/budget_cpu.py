"""What an hour buys, on CPU (issue 29 item 5): victim accuracy against generation wall time, BloodMNIST.

    python benchmarks/budget_cpu.py [--budgets 100,300,1000,3000] [--methods salm,em,tap] [--seeds 0]
                                    [--threads 2] [--write-only]

A cell is one method at one budget of source steps and one seed (0 unless ``--seeds``; the victim
takes the same seed): ``medshield protect`` through
``medshield.pipeline.protect`` (preset ``cpu``, device cpu, ``--threads``, generation precision
"auto"), its manifest's ``generation_seconds`` (the generation alone, no reading or writing), then
the cpu preset's victim ResNet-18 (fp32) trained on the release and tested on the real test
split. Methods: SALM K=0.50 and EM eps 8/255 at ``steps`` = the budget (everything else the cpu
preset), and TAP at a matched budget (``tap_params``: its source epochs and PGD steps scaled so that
it makes as many network passes as SALM at that budget; the table gives the wall-time ratio the
match achieved). Plus the clean-data victim once per seed, and the majority-class floor. The table
and the curve are seed 0's; cells at further seeds (``--seeds 1,2 --methods salm --budgets 1000``
checks one cell) get a mean ± sd section of their own.

Cells run in ascending budget order (clean, then every method at the smallest budget, ...), so a
time limit cuts only the largest budget; each is journaled to results/budget_cpu.jsonl as it
finishes and skipped when there (resume). A release already written for a cell (a run killed
during its victim) is reused with its manifest's time; a half-generated one is started over (a
resumed generation would time only its second half). results/budget_cpu.md/.json/.png are
rewritten after every cell, keeping the md's hand-written "## Notes" section; ``--write-only``
rewrites them from the journal alone. Releases go to results/runs/budget_<method>_<budget> (not
committed; seeds other than 0 get a ``_s<seed>`` suffix).

``--smoke N`` (hidden: a test of the script, not a measurement) protects a seeded N-image train
subset and trains each victim for 20 iterations; use it with ``--results-dir`` outside
benchmarks/results (its cells are keyed apart from the real ones anyway).
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch

from common import RESULTS, context, cpu_model, data_root, write_json, write_markdown
from medshield import Journal, Recipe, create_protection, load, open_dataset, original_of, pipeline, train_victim
from medshield.report import fmt_pct, markdown_table

DATASET, SEED, PRESET = "bloodmnist", 0, "cpu"  # SEED: the seed of the table and the curve
# method -> (label, parameters on top of the cpu preset); TAP's come from ``tap_params`` per budget.
METHODS = {"salm": ("SALM K=0.50", {"k": 0.5}), "em": ("EM eps=8/255", {"eps": 8 / 255}), "tap": ("TAP eps=8/255", {})}
# A training step (forward, backward, SGD) costs about this many input-gradient passes (one PGD
# step) of the same batch: results/speed_cpu.md, ResNet-18 width 16, bf16 1971/1116 img/s = 1.77,
# fp32 1141/738 = 1.55.
TRAIN_PASSES = 1.7
SMOKE_VICTIM_ITERATIONS = 20


def tap_params(budget: int, n_train: int) -> dict:
    """TAP's source epochs and PGD steps for a budget of ``budget`` SALM source steps: as many network
    passes as SALM makes (per source step its PGD steps on a batch and one training step, then a
    final pass of PGD steps over every image), the cpu preset's ratio of source epochs to PGD steps
    (8 : 20, one restart) kept. TAP's time is its clean source training (source epochs x batches
    training steps) plus its crafting (batches x PGD steps passes), so both scale together."""
    salm, tap = create_protection("salm", preset=PRESET, **METHODS["salm"][1]), create_protection("tap", preset=PRESET)
    batches = math.ceil(n_train / salm.batch_size)
    salm_passes = budget * (salm.pgd_steps + TRAIN_PASSES) + batches * salm.pgd_steps
    ratio = tap.source_epochs / tap.pgd_steps
    pgd_steps = max(1, round(salm_passes / (math.ceil(n_train / tap.batch_size) * tap.restarts * (1 + ratio * TRAIN_PASSES))))
    return {"pgd_steps": pgd_steps, "source_epochs": max(1, round(ratio * pgd_steps))}




def cell_key(method: str, budget: int | None, seed: int, args) -> dict:
    return {"dataset": DATASET, "method": method, "budget": budget, "seed": seed, "preset": PRESET,
            "threads": args.threads, "smoke": args.smoke}


def steps_taken(log: list[dict]) -> tuple[int | None, bool]:
    """Source steps the generation ran, and whether a stop rule ended it early, from the manifest's
    source log (a line every 50 steps, the last step's, and one marked "stopped" where a rule ended it)."""
    steps = [entry["step"] for entry in log if "step" in entry]
    return (max(steps) + 1 if steps else None), any(entry.get("stopped") for entry in log)


def release_for(method: str, params: dict, seed: int, spec: str, out: Path, args) -> tuple:
    """The cell's release: reused when complete with these parameters (a run killed during its
    victim), else generated from scratch (a half-generated run's checkpoint is dropped: its
    resumed time would miss the first half)."""
    if out.is_dir():  # the writer renames a release into place whole: a folder there is a complete one
        released, manifest = open_dataset(str(out))
        if (manifest is not None and manifest.manifest["seed"] == seed
                and all(manifest.manifest["params"].get(k) == v for k, v in params.items())):
            return released, manifest
    shutil.rmtree(out.parent / f"{out.name}.work", ignore_errors=True)
    pipeline.protect(spec, out, method=method, preset_name=PRESET, params=params, root=str(data_root()), seed=seed,
                     overwrite=True, device="cpu", progress=False, threads=args.threads)
    return open_dataset(str(out))


def victim(train, test, seed: int, args) -> dict:
    recipe = Recipe.named(PRESET, {"iterations": SMOKE_VICTIM_ITERATIONS} if args.smoke else None)
    return train_victim(train, test, recipe, seed=seed, device="cpu", progress=False, precision="fp32")


def run_cell(method: str, budget: int | None, seed: int, data, spec: str, args) -> dict:
    record = {**cell_key(method, budget, seed, args), "cpu_model": cpu_model(), **context()}
    if method == "clean":
        trained = victim(data, data, seed, args)
        record.update(label="clean data", generation_s=None, source_steps=None, stopped_early=False)
    else:
        label, params = METHODS[method]
        params = {**params, **(tap_params(budget, len(data.images("train"))) if method == "tap" else {"steps": budget})}
        suffix = (f"_s{seed}" if seed != SEED else "") + ("_smoke" if args.smoke else "")
        out = args.results_dir / "runs" / f"budget_{method}_{budget}{suffix}"
        released, manifest = release_for(method, params, seed, spec, out, args)
        taken, stopped = steps_taken(manifest.manifest["source_log"])
        trained = victim(released, original_of(manifest), seed, args)
        record.update(label=label, params=manifest.manifest["params"], precision=manifest.manifest["precision"],
                      generation_s=manifest.manifest["generation_seconds"], source_steps=taken, stopped_early=stopped,
                      stop_accuracy=manifest.manifest["params"].get("stop_accuracy"), release=out.name)
    record.update(test_accuracy=trained["test_accuracy"], peak_test_accuracy=trained["peak_test_accuracy"],
                  majority_floor=trained["majority_floor"], victim_s=round(trained["train_seconds"], 1),
                  victim_recipe=trained["recipe"], victim_precision="fp32", history=trained["history"])
    return record


def plot(records: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(7, 5))
    for method, (label, _) in METHODS.items():
        cells = sorted((r for r in records if r["method"] == method), key=lambda r: r["budget"])
        if not cells:
            continue
        ax.plot([r["generation_s"] for r in cells], [100 * r["test_accuracy"] for r in cells], "o-", label=label)
        for r in cells:
            ax.annotate(str(r["budget"]), (r["generation_s"], 100 * r["test_accuracy"]), fontsize=7,
                        textcoords="offset points", xytext=(4, 4))
    clean = next((r for r in records if r["method"] == "clean"), None)
    if clean:
        ax.axhline(100 * clean["test_accuracy"], color="green", ls="--", lw=1, label="clean data")
    if records:
        ax.axhline(100 * records[0]["majority_floor"], color="grey", ls=":", lw=1, label="majority-class floor")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())  # 100, 1000 s rather than 10^2, 10^3
    ax.set_xlabel("generation wall time (s, log scale); points labelled by budget in source steps")
    ax.set_ylabel("victim test accuracy (%)  (lower protects better)")
    ax.set_title(f"{DATASET}: what generation time buys, cpu preset, seed {SEED} (one seed)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def matched(records: list[dict], budget: int) -> str:
    """TAP's generation time over the mean of SALM's and EM's at ``budget``: how well the match held."""
    times = {r["method"]: r["generation_s"] for r in records if r["budget"] == budget}
    others = [times[m] for m in ("salm", "em") if m in times]
    return f"{times['tap'] / statistics.mean(others):.2f}" if "tap" in times and others else "-"


FRONTIER_SLUGS = {"salm": "salm-k0.50", "em": "em-eps8", "tap": "tap", "clean": "clean"}


def seed_spread() -> dict[str, tuple[float, int]]:
    """Per method, the standard deviation of victim accuracy (points) over the seeds the frontier measured
    at 300 steps (results/frontier_cpu.json) and their count: what one seed's differences must exceed
    before they say anything."""
    path = RESULTS / "frontier_cpu.json"
    cells = [r for r in json.loads(path.read_text()) if r["dataset"] == DATASET and not r["sweep"]] if path.exists() else []
    spread = {}
    for method, slug in FRONTIER_SLUGS.items():
        accuracies = [100 * r["test_accuracy"] for r in cells if r["slug"] == slug]
        if len(accuracies) > 1:
            spread[method] = (statistics.stdev(accuracies), len(accuracies))
    return spread


def verdict(cells: list[dict], spread: tuple[float, int] | None) -> str:
    """Budget- or method-limited, by the last two budgets' change against the method's seed spread."""
    gain = 100 * (cells[-2]["test_accuracy"] - cells[-1]["test_accuracy"])
    if spread is None:
        return "no seed spread measured to read that change against"
    if gain > spread[0]:
        return f"more than its seed spread ({spread[0]:.1f}): still budget-limited at the largest budget"
    return (f"within its seed spread ({spread[0]:.1f}): no evidence that more budget helps; method-limited, or "
            "a difference one seed cannot show")


def by_cell(every_seed: list[dict]) -> dict[tuple, list[dict]]:
    """(method, budget) -> its records, one per seed measured, in seed order."""
    out: dict[tuple, list[dict]] = {}
    for r in sorted(every_seed, key=lambda r: r["seed"]):
        out.setdefault((r["method"], r["budget"]), []).append(r)
    return out


def seed_means(every_seed: list[dict]) -> list[dict]:
    """One record per (method, budget): the first seed's, with accuracy and generation time averaged
    over every seed measured and their count as ``seeds``."""
    out = []
    for cells in by_cell(every_seed).values():
        out.append({**cells[0], "seeds": len(cells), "test_accuracy": statistics.mean(r["test_accuracy"] for r in cells),
                    "generation_s": statistics.mean(r["generation_s"] for r in cells) if cells[0]["generation_s"] else None})
    return out


def reading(records: list[dict]) -> str:
    """The short reading, from the numbers: how each method moves with budget, and the time SALM
    needs to reach EM's lowest accuracy. ``records``: one per cell, averaged over its seeds."""
    lines, spread = [], seed_spread()
    seeds = lambda r: f", mean of {r['seeds']} seeds" if r["seeds"] > 1 else ""  # noqa: E731
    for method, (label, _) in METHODS.items():
        cells = sorted((r for r in records if r["method"] == method), key=lambda r: r["budget"])
        if len(cells) > 1:
            first, last = cells[0], cells[-1]
            lines.append(f"- {label}: {fmt_pct(first['test_accuracy'])} % at {first['budget']} steps "
                         f"({first['generation_s']:.0f} s{seeds(first)}) -> {fmt_pct(last['test_accuracy'])} % at "
                         f"{last['budget']} ({last['generation_s']:.0f} s{seeds(last)}); between its last two budgets "
                         f"{100 * (cells[-2]['test_accuracy'] - last['test_accuracy']):+.1f} points of protection, "
                         f"{verdict(cells, spread.get(method))}.")
    salm = sorted((r for r in records if r["method"] == "salm"), key=lambda r: r["generation_s"])
    em = [r for r in records if r["method"] == "em"]
    if salm and em:
        best = min(em, key=lambda r: r["test_accuracy"])
        reached = next((r for r in salm if r["test_accuracy"] <= best["test_accuracy"]), None)
        lines.append(f"- EM's lowest accuracy, {fmt_pct(best['test_accuracy'])} %, took {best['generation_s']:.0f} s "
                     f"({best['budget']} steps); SALM K=0.50 "
                     + (f"was at or below it at {reached['budget']} steps, {reached['generation_s']:.0f} s"
                        if reached else "was above it at every budget measured")
                     + " (one seed each: the paper's claim holds here only where the gap in time is large and the "
                     "accuracies' gap exceeds both spreads).")
    return "\n".join(lines)


def spread_line() -> str:
    spread = seed_spread()
    return "; ".join(f"{METHODS[m][0] if m in METHODS else m} {sd:.1f} points over {n} seeds"
                     for m, (sd, n) in spread.items()) or "none measured"


def seeded(records: list[dict]) -> str:
    """The cells measured at more than one seed: each seed's accuracy, mean ± sd, beside the clean
    victim's at the same seeds."""
    rows, cells_of = [], by_cell(records)
    for (method, budget), cells in cells_of.items():
        if method == "clean" or len(cells) < 2:
            continue
        clean = [r for r in cells_of.get(("clean", None), []) if r["seed"] in {c["seed"] for c in cells}]
        accuracies = [100 * r["test_accuracy"] for r in cells]
        clean_accuracies = [100 * r["test_accuracy"] for r in clean]
        rows.append([budget, cells[0]["label"], ", ".join(str(r["seed"]) for r in cells),
                     ", ".join(f"{a:.1f}" for a in accuracies), f"{statistics.mean(accuracies):.1f} ± {statistics.stdev(accuracies):.1f}",
                     f"{statistics.mean(r['generation_s'] for r in cells):.0f}",
                     f"{statistics.mean(clean_accuracies):.1f} ± {statistics.stdev(clean_accuracies):.1f} ({len(clean)})"
                     if len(clean) > 1 else "-"])
    if not rows:
        return ""
    return ("\n## Cells at several seeds\n\nThe same cell at each seed (the victim takes the release's seed); "
            "clean: the clean-data victim at those seeds (how many measured).\n\n"
            + markdown_table(["budget (steps)", "method", "seeds", "test acc % per seed", "mean ± sd %",
                              "mean generation s", "clean mean ± sd %"], rows) + "\n")


def write(every_seed: list[dict], results: Path) -> None:
    order = lambda r: (r["budget"] or 0, list(METHODS).index(r["method"]) if r["method"] in METHODS else -1, r["seed"])  # noqa: E731
    every_seed = sorted(every_seed, key=order)
    write_json(results / "budget_cpu.json", every_seed)
    records = [r for r in every_seed if r["seed"] == SEED]
    clean = next((r for r in records if r["method"] == "clean"), None)
    rows = [[r["budget"] or "-", r["label"], r["source_steps"] if r["source_steps"] is not None else "-",
             "yes" if r["stopped_early"] else "no",
             ", ".join(f"{k} {r['params'][k]}" for k in ("source_epochs", "pgd_steps")) if r["method"] == "tap" else "",
             f"{r['generation_s']:.0f}" if r["generation_s"] is not None else "-",
             matched(records, r["budget"]) if r["method"] == "tap" else "", fmt_pct(r["test_accuracy"]),
             f"{100 * (clean['test_accuracy'] - r['test_accuracy']):.1f}" if clean and r is not clean else "-",
             fmt_pct(r["peak_test_accuracy"]), f"{r['victim_s']:.0f}"] for r in records]
    first = records[0] if records else {}
    commands = dict.fromkeys(f"`{r['command']}` (commit {r['commit']})" for r in every_seed)
    text = (f"# What an hour buys, on CPU: {DATASET}, `{PRESET}` preset, seed {SEED}\n\n"
            "Generated by `benchmarks/budget_cpu.py` (issue 29 item 5). Command(s):\n\n"
            + "".join(f"- {c}\n" for c in commands)
            + f"\nFirst cell {first.get('date', '')}, last {records[-1]['date'] if records else ''}. "
            f"CPU: {first.get('cpu_model', '')}, {first.get('threads', '')} torch thread(s); machine: {first.get('machine', {})}\n\n"
            f"**One seed ({SEED}) per cell in the table and the curve** (cells measured at several seeds: their own "
            "section below). The seed-to-seed spread of victim accuracy at this preset "
            f"(300 steps, results/frontier_cpu.json): {spread_line()}. Differences smaller than that are not "
            "evidence of anything, and no cell here supports a protection claim on its own.\n\n"
            "Each cell: `medshield protect` (pipeline API, preset cpu, device cpu, generation precision in the JSON) "
            "with SALM K=0.50 or EM eps 8/255 at `steps` = the budget; generation s is the manifest's "
            "`generation_seconds` (wall time of the generation alone, so other work on the same cores inflates it). "
            "Then the cpu preset's victim ResNet-18 (fp32, seed 0) on the release, tested on the real test split. "
            "Steps taken: from the manifest's source log (for TAP, its clean source model's steps); SALM and EM run with no stop rule here (`stop_accuracy` "
            "None at the cpu preset), so they stop early only if that changes. TAP is matched, not stepped: at each "
            f"budget its source epochs and PGD steps (one restart) are scaled together, in the preset's 8 : 20 ratio, "
            "until it makes as many network passes as SALM (a training step counted as "
            f"{TRAIN_PASSES} input-gradient passes, from results/speed_cpu.md); 'TAP / mean(SALM, EM) s' is how "
            "close that landed in wall time.\n\n"
            + markdown_table(["budget (steps)", "method", "steps taken", "stopped early", "TAP settings", "generation s",
                              "TAP / mean(SALM, EM) s", "test acc %", "drop (points)", "best epoch %", "victim s"], rows)
            + f"\n\nMajority-class floor: {fmt_pct(first['majority_floor']) if records else '-'} %. "
            "Figure: budget_cpu.png (accuracy against generation time, log x).\n\n"
            "## Reading (seed 0, or the mean where a cell has several seeds)\n\n"
            + reading(seed_means(every_seed)) + "\n\n"
            "Budget-limited: a method's accuracy still falls by more than its seed spread between its last two "
            "budgets (more time would buy more protection); method-limited: it has flattened, above the floor. "
            "The paper's claim is that SALM reaches EM's protection for less generation time.\n"
            + seeded(every_seed))
    write_markdown(results / "budget_cpu.md", text, keep=("## Notes",))
    plot(records, results / "budget_cpu.png")


def smoke_spec(n: int, workdir: Path) -> tuple:
    """A seeded ``n``-image train subset of BloodMNIST written as a .npz the pipeline reads (``--smoke``)."""
    data = load(DATASET, str(data_root())).train_subset(n)
    path = workdir / f"{DATASET}-smoke{n}.npz"
    np.savez(path, **{f"{split}_{kind}": getattr(data, kind)(split) for split in ("train", "val", "test")
                      for kind in ("images", "labels")})
    return load(str(path)), str(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="100,300,1000,3000", help="source steps of SALM and EM, comma-separated")
    parser.add_argument("--methods", default=",".join(METHODS), help="of " + ", ".join(METHODS) + ", comma-separated")
    parser.add_argument("--seeds", default=str(SEED), help="seeds of releases and victims, comma-separated")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument("--write-only", action="store_true", help="rewrite the md, json and png from the journal")
    parser.add_argument("--smoke", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    journal = Journal(args.results_dir / "budget_cpu.jsonl")
    if args.write_only:
        return write(journal.matching({"smoke": args.smoke}), args.results_dir)
    budgets = sorted(int(b) for b in args.budgets.split(","))
    methods = [m for m in METHODS if m in args.methods.split(",")]
    if len(methods) != len(args.methods.split(",")):
        parser.error(f"--methods takes some of {', '.join(METHODS)}, comma-separated; got {args.methods!r}")
    seeds = [int(seed) for seed in args.seeds.split(",")]
    with tempfile.TemporaryDirectory() as workdir:
        data, spec = smoke_spec(args.smoke, Path(workdir)) if args.smoke else (load(DATASET, str(data_root())), DATASET)
        cells = [("clean", None)] + [(m, b) for b in budgets for m in methods]
        for seed, (method, budget) in [(seed, cell) for seed in seeds for cell in cells]:
            if journal.has(cell_key(method, budget, seed, args)):
                continue
            record = run_cell(method, budget, seed, data, spec, args)
            journal.append(record)
            write(journal.matching({"smoke": args.smoke}), args.results_dir)
            print(json.dumps({k: record[k] for k in ("method", "budget", "seed", "source_steps", "generation_s", "test_accuracy")}),
                  flush=True)


if __name__ == "__main__":
    main()
