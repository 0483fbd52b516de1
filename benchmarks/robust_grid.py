"""The defense grid on the releases we recommend: what each defense gives a trainer back.

    python benchmarks/robust_grid.py run [--seeds 0] [--headline-seeds 1,2] [--workers 8] [--device cuda]
                                         [--deadline-s 480] [--work DIR] [--journal PATH] [--full-width]
                                         [--settings recommended|candidates|all] [--datasets bloodmnist,...]
                                         [--defenses "none;jpeg:quality=10"] [--exclude ...]
    python benchmarks/robust_grid.py detect [--settings ...] [--datasets ...]
    python benchmarks/robust_grid.py write [--journal PATH]

``run`` makes each release (dataset x setting x seed, cpu preset, on ``--device``) and measures
its utility, then trains one victim per (dataset, setting or clean, seed, defense, victim): the
clean-trained victim of a defense is shared by every setting of its dataset and seed, with the
same recipe and seed. Seeds in ``--seeds`` get the whole grid, ``--headline-seeds`` the headline
defenses. ``--workers`` processes claim jobs at once: small 28 px victims leave a GPU idle between
kernel launches, so several processes keep it busy (their train seconds then count a shared
device). Every finished job is one line of the journal (default results/robust_cpu.jsonl), so an
interrupted run resumes. A release journaled but absent here (made on another machine) is made
again only when a victim still to run needs it, and journaled as kind "remake"; ``detect`` measures the detectability of releases journaled without it
(made again here at seed 0); ``write`` renders results/robust_cpu.md and .json from it.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from common import RESULTS, context, data_root
from medshield import Journal, Recipe, create_protection, detectability_gap, load, parse_defense, train_victim, utility_report

JOURNAL = RESULTS / "robust_cpu.jsonl"
# dataset -> setting -> (method, parameters on top of the cpu preset); the frontier's recommended
# settings (benchmarks/results/frontier_cpu.md) and SALM K = 0.50 on BloodMNIST.
SETTINGS = {
    "bloodmnist": {"tap eps=8": ("tap", {}), "salm k=0.50": ("salm", {"k": 0.50})},
    "pneumoniamnist": {"salm k=0.10": ("salm", {"k": 0.10})},
}
# Robust candidates (issue 31, item 3), screened on the headline defenses before a whole grid: the
# defense-aware distribution T (models/augment.py) on the recommended TAP, and on SALM K = 0.50 with
# REM's adversarial source model (rho_a 4/255, 2 ascent steps); and a class-wise convolution, a change
# no L-inf radius bounds (protect/class_conv.py).
CANDIDATES = {
    "bloodmnist": {"tap eps=8 defense-aware": ("tap", {"transform": "defense-aware"}),
                   "salm k=0.50 adv=4 defense-aware": ("salm", {"k": 0.50, "adv_eps": 4 / 255, "adv_steps": 2,
                                                                 "transform": "defense-aware"}),
                   "class-conv strength=0.5": ("class-conv", {"strength": 0.5}),
                   # at 0.7 the mean SSIM is about the utility rule's 94.4 %; 1.0 (below it) says whether
                   # the idea works on this data at all
                   "class-conv strength=0.7": ("class-conv", {"strength": 0.7}),
                   "class-conv strength=1.0": ("class-conv", {"strength": 1.0}),
                   # noise in the 2 x 2 lowest DCT frequencies of each 8x8 block: what JPEG at low quality keeps
                   "salm k=0.50 dct=2": ("salm", {"k": 0.50, "dct_keep": 2}),
                   # a radius above the trainer's adversarial-training radius (8/255), which bounds what
                   # noise inside its ball can do (Tao et al. 2021), at a utility cost the rule still allows
                   "tap eps=12": ("tap", {"eps": 12 / 255, "step_size": 1.2 / 255}),
                   # the same idea with smooth noise: low block frequencies keep SSIM high, so the radius can
                   # reach two to three times the trainer's 8/255 near the utility rule
                   "salm k=0.50 dct=2 eps=16": ("salm", {"k": 0.50, "dct_keep": 2, "eps": 16 / 255,
                                                         "step_size": 3.2 / 255}),
                   "salm k=0.50 dct=2 eps=20": ("salm", {"k": 0.50, "dct_keep": 2, "eps": 20 / 255,
                                                         "step_size": 4 / 255}),
                   "salm k=0.50 dct=2 eps=24": ("salm", {"k": 0.50, "dct_keep": 2, "eps": 24 / 255,
                                                         "step_size": 4.8 / 255})},
    "pneumoniamnist": {"salm k=0.10 dct=2": ("salm", {"k": 0.10, "dct_keep": 2}),
                       "salm k=0.10 dct=2 eps=16": ("salm", {"k": 0.10, "dct_keep": 2, "eps": 16 / 255,
                                                             "step_size": 3.2 / 255})},
}
FGSM_RS = ("adversarial:eps=4,steps=1,step_size=5", "adversarial:eps=8,steps=1,step_size=10")  # Wong et al. 2020
PGD_10 = "adversarial:eps=8,steps=10,step_size=2"
# the trainer's answer to a release made at a radius above 8/255: FGSM-RS at a radius up to the release's
FGSM_RS_LARGE = tuple(f"adversarial:eps={eps},steps=1,step_size={eps * 5 // 4}" for eps in (12, 16, 20))
STRONG = "strong-augment"
STRONG_LITE = "strong-augment:repeats=1"  # UEraser-Lite: one draw per image, the max over draws left out
DEFENSES = ("none", "jpeg:quality=10", "jpeg:quality=30", "jpeg:quality=50", "jpeg:quality=75", "median", "mean",
            "gaussian", "bitdepth:bits=2", "bitdepth:bits=4", "grayscale", "crop:fraction=0.75", "cutout", "mixup",
            "cutmix", *FGSM_RS, *FGSM_RS_LARGE, PGD_10, STRONG, STRONG_LITE)
HEADLINE = ("none", "jpeg:quality=10", FGSM_RS[1], "median", "vae")
# Victims: the cpu preset's ResNet-18 (width 16, 600 iterations); strong augmentation trains 5x as
# long, since at 600 iterations even the clean-trained victim stays near the floor (robustness_cpu.md);
# and a trainer's full-width ResNet-18 with MedMNIST's own recipe (Adam, 100 epochs, no augmentation).
VICTIMS = {"resnet18-cpu": ("cpu", {"arch": "resnet18"}, None),
           "resnet18-cpu-3000it": ("cpu", {"arch": "resnet18", "iterations": 3000}, None),
           "resnet18-w64-medmnist": ("cpu", {"arch": "resnet18"}, "medmnist")}
# Relative cost of a job, so the longest start first (a cpu-recipe victim with no defense = 1).
COST = {**dict.fromkeys((*FGSM_RS, *FGSM_RS_LARGE), 2), PGD_10: 11, STRONG: 25, STRONG_LITE: 5}
VICTIM_COST = {"resnet18-cpu": 1, "resnet18-cpu-3000it": 1, "resnet18-w64-medmnist": 40}


def victim_of(defense: str, full_width: bool) -> str:
    if full_width:
        return "resnet18-w64-medmnist"
    return "resnet18-cpu-3000it" if defense.split(":")[0] == STRONG else "resnet18-cpu"


def plan(args) -> list[dict]:
    """Every job of the run, releases first, then victims by tier (whole grid, headline seeds, full
    width) and, inside a tier, costliest first."""
    jobs, victims = [], []
    for dataset, settings in chosen_settings(args).items():
        rgb = dataset == "bloodmnist"
        for seed in [*args.seeds, *args.headline_seeds]:
            for setting in settings:
                jobs.append({"kind": "release", "dataset": dataset, "setting": setting, "seed": seed})
            defenses = DEFENSES if seed in args.seeds else HEADLINE
            tier = 0 if seed in args.seeds else 1
            for defense in defenses:
                if defense == "grayscale" and not rgb:
                    continue
                for setting in ("clean", *settings):
                    victims.append((tier, {"kind": "victim", "dataset": dataset, "setting": setting, "seed": seed,
                                           "defense": defense, "victim": victim_of(defense, False)}))
            if args.full_width and seed in args.seeds:
                recommended = next(iter(settings))
                for defense in ("none", "jpeg:quality=10"):
                    for setting in ("clean", recommended):
                        victims.append((2, {"kind": "victim", "dataset": dataset, "setting": setting, "seed": seed,
                                            "defense": defense, "victim": victim_of(defense, True)}))
    cost = lambda job: COST.get(job["defense"], 1) * VICTIM_COST[job["victim"]]  # noqa: E731
    victims.sort(key=lambda tj: (tj[0], -cost(tj[1])))
    wanted = lambda defense: defense not in args.exclude and (not args.defenses or defense in args.defenses)  # noqa: E731
    return jobs + [job for _, job in victims if wanted(job["defense"])]


def chosen_settings(args) -> dict[str, dict]:
    """dataset -> the settings this run measures: the recommended ones, the candidates, or both."""
    groups = {"recommended": [SETTINGS], "candidates": [CANDIDATES], "all": [SETTINGS, CANDIDATES]}[args.settings]
    chosen = {}
    for group in groups:
        for dataset, settings in group.items():
            if not args.datasets or dataset in args.datasets:
                chosen.setdefault(dataset, {}).update({k: v for k, v in settings.items() if not args.only or k in args.only})
    return chosen


def job_id(job: dict) -> str:
    parts = [job["kind"], job["dataset"], job["setting"], str(job["seed"]), job.get("defense", ""), job.get("victim", "")]
    return "_".join("".join(c if c.isalnum() or c in ".-=" else "-" for c in p) for p in parts if p)


def release_path(work: Path, job: dict) -> Path:
    return work / f"{job_id({**job, 'kind': 'release', 'defense': '', 'victim': ''})}.npy"


def make_release(job: dict, args, work: Path) -> dict:
    data = load(job["dataset"], root=data_root())
    method, params = {**SETTINGS.get(job["dataset"], {}), **CANDIDATES.get(job["dataset"], {})}[job["setting"]]
    result = create_protection(method, preset="cpu", **params).protect(data, seed=job["seed"], device=args.device, progress=False)
    partial = release_path(work, job).with_suffix(".partial.npy")
    np.save(partial, result.images)
    os.replace(partial, release_path(work, job))
    overall = utility_report(data.images("train"), result.images, names=("ssim", "psnr", "l0"))["overall"]
    return {"method": method, "params": result.params, "precision": result.precision, "generation_s": round(result.seconds, 1),
            "ssim": overall["ssim"]["mean"], "psnr": overall["psnr"]["mean"], "l0": 100 * overall["l0"]["mean"],
            **detection(data, result.images, job["seed"])}


def detection(data, released: np.ndarray, seed: int) -> dict:
    """Item 2's detection test: how much faster a linear model fits the release than its original (points)."""
    found = detectability_gap(released, data.images("train"), data.labels("train"), seed=seed)
    return {"detectability": 100 * found["release"], "detectability_original": 100 * found["original"],
            "detectability_gap": 100 * found["gap"]}


def detect(args) -> None:
    """Detectability of the seed-0 releases journaled without it (made before it was measured, on
    another machine): each is made again here, same setting and seed, and journaled as kind "detect"."""
    journal = Journal(args.journal)
    records = journal.records()
    measured = {(r["dataset"], r["setting"]) for r in records if "detectability_gap" in r}
    for dataset, settings in chosen_settings(args).items():
        for setting in settings:
            if (dataset, setting) in measured:
                continue
            job = {"kind": "release", "dataset": dataset, "setting": setting, "seed": 0}
            data = load(dataset, root=data_root())
            method, params = {**SETTINGS.get(dataset, {}), **CANDIDATES.get(dataset, {})}[setting]
            result = create_protection(method, preset="cpu", **params).protect(data, seed=0, device=args.device, progress=False)
            journal.append({**job, "kind": "detect", "generation_s": round(result.seconds, 1),
                            **detection(data, result.images, 0), "device": args.device, "workers": 1, **context()})
            print(f"detect: {job_id(job)} done", flush=True)


def train_one(job: dict, args, work: Path) -> dict:
    data = load(job["dataset"], root=data_root())
    train = data
    if job["setting"] != "clean":
        train = data.with_train(np.load(release_path(work, job), allow_pickle=False))
    preset_name, options, recipe_name = VICTIMS[job["victim"]]
    defense = parse_defense(job["defense"]) if job["defense"] != "none" else None
    run = train_victim(train, data, Recipe.named(preset_name, options, recipe_name), seed=job["seed"], device=args.device,
                       progress=False, defense=defense, precision="fp32")
    return {"test_accuracy": run["test_accuracy"], "peak_test_accuracy": run["peak_test_accuracy"],
            "balanced_accuracy": run["balanced_accuracy"], "majority_floor": run["majority_floor"],
            "train_seconds": round(run["train_seconds"], 1), "recipe": run["recipe"], "precision": run["precision"],
            "test_accuracy_by_epoch": [round(h["test_accuracy"], 4) for h in run["history"]]}


def claim(job: dict, work: Path) -> bool:
    """True for exactly one worker: the one whose exclusive create of the claim file succeeds."""
    try:
        os.close(os.open(work / "claims" / job_id(job), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


def worker(args) -> None:
    """Claim and run jobs until none is left; a victim waits until its release exists."""
    work, journal = Path(args.work), Journal(args.journal)
    done = {job_id(r) for r in journal.records()}
    victims = [job for job in plan(args) if job["kind"] == "victim" and job_id(job) not in done]
    needed = {release_path(work, job) for job in victims if job["setting"] != "clean"}
    releases = [job for job in plan(args) if job["kind"] == "release" and not release_path(work, job).exists()
                and (job_id(job) not in done or release_path(work, job) in needed)]  # made on another machine
    todo = releases + victims
    while todo:
        ready = [j for j in todo if j["kind"] == "release" or j["setting"] == "clean" or release_path(work, j).exists()]
        if not ready:
            time.sleep(1)
            todo = [j for j in todo if not (work / "claims" / job_id(j)).exists()]
            continue
        job = ready[0]
        todo.remove(job)
        if not claim(job, work):
            continue
        try:
            measured = make_release(job, args, work) if job["kind"] == "release" else train_one(job, args, work)
        except Exception as exc:  # one failed cell must not cost the others their time
            print(f"worker {args.id}: {job_id(job)} FAILED: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            continue
        kind = "remake" if job_id(job) in done else job["kind"]  # the journaled release keeps its row
        journal.append({**job, **measured, "kind": kind, "device": args.device, "workers": args.workers, **context()})
        print(f"worker {args.id}: {job_id(job)} done", flush=True)


def run(args) -> None:
    """Start the workers; stop them all at the deadline (what finished is journaled)."""
    work = Path(args.work)
    (work / "claims").mkdir(parents=True, exist_ok=True)
    for stale in (work / "claims").iterdir():  # claims of a killed run: their jobs were not journaled
        stale.unlink()
    base = [sys.executable, __file__, "worker", "--work", str(work), "--journal", str(args.journal),
            "--device", args.device, "--seeds", ",".join(map(str, args.seeds)),
            "--headline-seeds", ",".join(map(str, args.headline_seeds)), "--workers", str(args.workers)]
    base += ["--settings", args.settings, "--datasets", ",".join(args.datasets), "--only", ";".join(args.only)]
    base += (["--full-width"] if args.full_width else []) + (["--exclude", ";".join(args.exclude)] if args.exclude else [])
    base += ["--defenses", ";".join(args.defenses)]
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 2) // args.workers))}
    procs = [subprocess.Popen(base + ["--id", str(i)], env=env) for i in range(args.workers)]
    end = time.monotonic() + args.deadline_s
    while any(p.poll() is None for p in procs) and time.monotonic() < end:
        time.sleep(2)
    for p in procs:
        if p.poll() is None:
            p.kill()
    print(f"run: {sum(p.returncode == 0 for p in procs)}/{len(procs)} workers finished; journal {args.journal}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stage", choices=("run", "worker", "write", "detect"))
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",") if x], default=[0])
    parser.add_argument("--headline-seeds", type=lambda s: [int(x) for x in s.split(",") if x], default=[])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--deadline-s", type=float, default=float("inf"))
    parser.add_argument("--work", default=str(RESULTS / "runs" / "robust"))
    parser.add_argument("--journal", default=str(JOURNAL))
    parser.add_argument("--full-width", action="store_true", help="also the full-width MedMNIST-recipe victim (seed grid)")
    parser.add_argument("--exclude", type=lambda s: s.split(";"), default=[], help="semicolon-separated defenses to leave out")
    parser.add_argument("--defenses", type=lambda s: [x for x in s.split(";") if x], default=[],
                        help="semicolon-separated defenses to run, of the grid's (default: all of them)")
    parser.add_argument("--settings", choices=("recommended", "candidates", "all"), default="recommended",
                        help="the recommended settings, the robust candidates, or both")
    parser.add_argument("--datasets", type=lambda s: [x for x in s.split(",") if x], default=[],
                        help="comma-separated datasets to run (default: every dataset of the chosen settings)")
    parser.add_argument("--only", type=lambda s: [x for x in s.split(";") if x], default=[],
                        help="semicolon-separated settings to run, of those chosen (default: all of them)")
    parser.add_argument("--id", type=int, default=0)
    args = parser.parse_args()
    if args.stage == "write":
        from robust_tables import write_tables
        write_tables(Journal(args.journal).records())
    else:
        {"run": run, "worker": worker, "detect": detect}[args.stage](args)


if __name__ == "__main__":
    main()
