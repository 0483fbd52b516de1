"""Support classes at the `cpu` preset (paper Section 7.1, Appendix D.2): two institution scenarios.

    python benchmarks/support_cpu.py [--dataset bloodmnist] [--support pneumoniamnist,retinamnist,breastmnist]
                                     [--method salm] [--params '{"k": 0.5}'] [--scenarios clean,a,b]
                                     [--owner-classes 0,3] [--seeds 0] [--threads 2] [--victim JSON]

(a) every class of the dataset is protected on its own, as by a different institution holding
only that class, with ``--support-classes`` (5) classes drawn from the support sources; the
protected classes are merged into the full train split and one victim trains on it.
(b) one class (each of ``--owner-classes``) is protected with support, the others stay clean;
the victim's test accuracy is reported on that class and on the others.
Beside them: a clean victim per seed, and the frontier's whole-dataset cells of the same setting
(benchmarks/frontier_cpu.py). The default setting is SALM (Algorithm 1) at K = 0.50, the frontier's
best error-minimizing setting on BloodMNIST (TAP, the recommended one, has no source task to
support); ``--method``/``--params`` pick another, ``--victim`` overrides the victim's recipe
(every record keeps both). Records are journaled to
results/support_cpu.jsonl (resumable) and summarized in results/support_cpu.md/.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch

from common import RESULTS, context, data_root, write_json, write_markdown
from medshield import Journal, Recipe, load, pipeline, split_by_classes, train_victim
from medshield.report import SUPPORT, setting_of

JOURNAL = Journal(RESULTS / "support_cpu.jsonl")
# Appendix D.2 (DermaMNIST, ResNet-18): melanoma protected with 5 support classes, and all classes merged.
PAPER = SUPPORT


def protect_held(dataset: str, held: list[int], seed: int, args, work: Path) -> np.ndarray:
    """The train images after one institution holding ``held`` protected them with support classes."""
    out = work / f"classes-{'-'.join(map(str, held))}-seed{seed}"
    release = pipeline.protect(dataset, out, method=args.method, preset_name="cpu", params=args.params, root=str(data_root()),
                               seed=seed, overwrite=True, progress=False, classes=held, support=args.support,
                               support_classes=args.support_classes, key_out=work / f"{out.name}.key")
    return np.array(release.data.images("train")), release.manifest["support"]


def victim(train_images, data, seed, args) -> dict:
    recipe = Recipe.named("cpu", args.victim)
    return train_victim(data.with_train(train_images), data, recipe, seed=seed, progress=False, precision="fp32")


def run(scenario: str, owner: list[int] | None, seed: int, data, args, work: Path) -> dict:
    labels = data.labels("train")
    record = {"scenario": scenario, "dataset": data.name, "support": args.support, "method": args.method, "seed": seed,
              "threads": args.threads, "params": args.params, "victim_overrides": args.victim, **context()}
    if scenario == "clean":
        result = victim(data.images("train"), data, seed, args)
        return {**record, "owner_classes": [], "test_accuracy": result["test_accuracy"],
                "per_class_accuracy": result["per_class_accuracy"]}
    merged, drawn = data.images("train").copy(), []
    for held in ([[c] for c in range(data.num_classes)] if scenario == "a" else [owner]):
        images, support = protect_held(args.dataset, held, seed, args, work)
        rows = np.isin(labels, held)
        merged[rows] = images[rows]
        drawn.append(support)
    result = victim(merged, data, seed, args)
    split = split_by_classes({"run": result}, owner or [])["run"] if scenario == "b" else {}
    return {**record, "owner_classes": owner or list(range(data.num_classes)), "support_drawn": drawn,
            "test_accuracy": result["test_accuracy"], "owner_class_accuracy": split.get("protected_classes_accuracy"),
            "other_classes_accuracy": split.get("other_classes_accuracy"), "majority_floor": result["majority_floor"]}


def whole_dataset(dataset: str, method: str, params: dict | None) -> list[dict]:
    """The frontier's cells (benchmarks/frontier_cpu.py) of the same method and settings on the whole
    dataset, with no support classes: what scenario (a) is compared with."""
    path = RESULTS / "frontier_cpu.json"
    if not path.exists():
        return []
    setting = setting_of(method, params or {})
    return [r for r in json.loads(path.read_text()) if r["dataset"] == dataset and r["setting"] == setting and not r["sweep"]]


def write(records: list[dict]) -> None:
    clean = {r["seed"]: r for r in records if r["scenario"] == "clean"}
    for r in records:
        r["clean_accuracy"] = clean[r["seed"]]["test_accuracy"] if r["seed"] in clean else None
        if r["scenario"] == "b":  # the same seed's clean victim on the owner's class: what protection took away
            per_class = clean.get(r["seed"], {}).get("per_class_accuracy", {})
            r["clean_owner_class_accuracy"] = per_class.get(str(r["owner_classes"][0]))  # JSON keys are strings
    write_json(RESULTS / "support_cpu.json", records)
    rows = {}
    for r in records:
        setting = "-" if r["scenario"] == "clean" else setting_of(r["method"], r["params"] or {})
        rows.setdefault((r["scenario"], setting, tuple(r["owner_classes"])), []).append(r)
    lines = ["# Support classes at the `cpu` preset (paper Section 7.1, Appendix D.2)", "",
             "Commands: " + "; ".join(sorted({f"`{r['command']}` ({r['commit']}, {r['date'][:10]})" for r in records})), "",
             f"Paper (DermaMNIST): {PAPER['b']}; {PAPER['a']}.", "",
             "| scenario | setting | owner classes | seeds | test acc % | owner class acc % (clean) | other classes acc % | clean acc % |",
             "|---|---|---|---|---|---|---|---|"]

    def cell(values):
        values = [100 * v for v in values if v is not None]
        if not values:
            return "-"
        return f"{statistics.mean(values):.1f}" + (f" ± {statistics.stdev(values):.1f}" if len(values) > 1 else "")

    for (scenario, setting, owner), cells in rows.items():
        lines.append(f"| {scenario} | {setting} | {','.join(map(str, owner)) or '-'} | {','.join(str(c['seed']) for c in cells)} | "
                     f"{cell([c['test_accuracy'] for c in cells])} | {cell([c.get('owner_class_accuracy') for c in cells])}"
                     + (f" ({cell([c.get('clean_owner_class_accuracy') for c in cells])})" if scenario == "b" else "") + " | "
                     f"{cell([c.get('other_classes_accuracy') for c in cells])} | {cell([c['clean_accuracy'] for c in cells])} |")
    for dataset, method, params in sorted({(r["dataset"], r["method"], json.dumps(r["params"])) for r in records if r["scenario"] != "clean"}):
        whole = whole_dataset(dataset, method, json.loads(params))
        if whole:
            lines.append(f"| whole dataset, no support (frontier_cpu) | {whole[0]['setting']} | all | "
                         f"{','.join(str(r['seed']) for r in whole)} | {cell([r['test_accuracy'] for r in whole])} | - | - | "
                         f"{cell([r['clean_accuracy'] for r in whole])} |")
    write_markdown(RESULTS / "support_cpu.md", "\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="bloodmnist")
    parser.add_argument("--support", default="pneumoniamnist,retinamnist,breastmnist", type=lambda t: t.split(","))
    parser.add_argument("--support-classes", type=int, default=5)
    parser.add_argument("--method", default="salm")
    parser.add_argument("--scenarios", default="clean,a,b")
    parser.add_argument("--owner-classes", default="0,3", help="scenario b: each of these classes on its own")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--params", type=json.loads, default={"k": 0.5})
    parser.add_argument("--victim", type=json.loads, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load(args.dataset, str(data_root()))
    with tempfile.TemporaryDirectory(prefix="medshield-support-") as work:
        for seed in map(int, args.seeds.split(",")):
            for scenario in args.scenarios.split(","):
                owners = [[int(c)] for c in args.owner_classes.split(",")] if scenario == "b" else [None]
                for owner in owners:
                    wanted = {"scenario": scenario, "seed": seed, "victim_overrides": args.victim, "threads": args.threads}
                    if scenario != "clean":  # a clean victim serves every setting
                        wanted.update(owner_classes=owner or list(range(data.num_classes)), method=args.method,
                                      support=args.support, params=args.params)
                    if JOURNAL.has(wanted):
                        continue
                    record = run(scenario, owner, seed, data, args, Path(work))
                    JOURNAL.append(record)
                    write(JOURNAL.records())
                    print(json.dumps({k: record.get(k) for k in ("scenario", "owner_classes", "seed", "test_accuracy",
                                                                 "owner_class_accuracy")}), flush=True)


if __name__ == "__main__":
    main()
