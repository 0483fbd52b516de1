"""Throughput of the networks in fp32 and bf16, and protect's wall time against its pass-count floor.

    python benchmarks/speed_cpu.py [--threads 2] [--widths 16,64] [--dataset bloodmnist]
                                   [--methods salm] [--repeats 1] [--skip-generation]

1. Images/s of the two passes protection is made of, per width and precision, ResNet-18 at
   batch 128 on the dataset's image shape: the *input-gradient pass* (eval-mode forward through
   the transformation T, loss, gradient with respect to the input: one PGD step) and the
   *training step* (train-mode forward, backward, SGD step: one source step).
2. Per method, the cpu preset's generation on the whole train split, fp32 then bf16: wall time
   (``ProtectionResult.seconds``, the generation without reading or writing the release) beside
   the floor, the passes it must make at the measured rates:
   (source steps x PGD steps x batch + PGD steps x N) input-gradient images + source steps x batch
   training images. wall / floor is what the loop spends outside the network. ``--repeats N``
   measures N fp32/bf16 pairs in turn; every pair ever measured stays in the table (one wall time
   moves by a few % with the machine), with the mean speed-up over them.

Results: results/speed_cpu.json and .md, rewritten after every measurement.

Imports ``medshield.models`` and ``medshield.models.augment`` beyond the public ``medshield``: part 1
times the two internal passes themselves (a bare ResNet-18 and the flip + crop of T), which no
public call runs alone.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import torch

from common import RESULTS, context, data_root, network_passes, write_json, write_markdown
from medshield import Journal, create_protection, load
from medshield.models import create_model
from medshield.models.augment import flip_crop
from medshield.report import markdown_table

BATCH = 128
# Training steps before timing: a fresh network's eval-mode BatchNorm (running mean 0, variance 1)
# saturates the softmax, and the tiny gradients that follow are fp32 denormals, which x86 CPUs
# handle slowly; a source model in a real run is trained, so the floor is timed on a trained one.
CALIBRATION_STEPS = 20

# Generation runs (minutes each), kept so a throughput-only rerun (--skip-generation) can recompute their floors.
GENERATION = Journal(RESULTS / "speed_cpu_generation.jsonl")


def rate(function, seconds: float = 4.0, windows: int = 3, warmup: float = 2.0) -> float:
    """Images/s of ``function`` (one batch per call): the best of ``windows`` timings of ``seconds``
    each, after ``warmup`` seconds of calls, so that start-up and a moment of load on the machine
    do not lower the floor."""
    start = time.perf_counter()
    while time.perf_counter() - start < warmup:
        function()
    best = 0.0
    for _ in range(windows):
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            function()
            calls += 1
        best = max(best, calls * BATCH / (time.perf_counter() - start))
    return best


def throughput(shape: tuple[int, ...], num_classes: int, width: int, precision: str) -> dict:
    """Images/s of the input-gradient pass and of a training step."""
    generator = torch.Generator().manual_seed(0)
    device = torch.device("cpu")
    model = create_model("resnet18", num_classes=num_classes, in_channels=shape[0], width=width, image_size=shape[-1],
                         device=device, precision=precision)
    x = torch.rand((BATCH, *shape), generator=generator)
    y = torch.randint(0, num_classes, (BATCH,), generator=generator)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    input_gradient, training_step = network_passes(model, x, y, lambda batch: flip_crop(batch, generator), optimizer)

    for _ in range(CALIBRATION_STEPS):
        training_step()
    return {"width": width, "precision": precision, "input_gradient_per_s": round(rate(input_gradient), 1),
            "training_step_per_s": round(rate(training_step), 1)}


def floor_seconds(params: dict, n: int, rates: dict) -> float:
    """The network time a bi-level run cannot go below at the measured rates."""
    pgd_images = params["steps"] * params["pgd_steps"] * params["batch_size"]
    if params.get("final_pass", True):
        pgd_images += params["pgd_steps"] * n
    train_images = params["steps"] * params["batch_size"]
    return pgd_images / rates["input_gradient_per_s"] + train_images / rates["training_step_per_s"]


def pair_speedups(generation: list[dict]) -> dict[str, list[float]]:
    """Per method, the fp32 / bf16 wall-time ratio of each measured pair (a bf16 run and the fp32 run before it)."""
    speedups, fp32 = {}, {}
    for g in generation:
        if g["precision"] == "fp32":
            fp32[g["method"]] = g["wall_s"]
        elif g["method"] in fp32:
            speedups.setdefault(g["method"], []).append(fp32.pop(g["method"]) / g["wall_s"])
    return speedups


def write(payload: dict) -> None:
    write_json(RESULTS / "speed_cpu.json", payload)
    ctx = payload["context"]
    lines = [
        "# Throughput and generation time, fp32 vs bf16 (`cpu` preset)\n",
        f"Command: `{ctx['command']}` (commit {ctx['commit']})\n",
        f"Date: {ctx['date']}\n",
        f"Machine: {ctx['machine']['processor']}, {ctx['machine']['cpu_count']} cores, "
        f"{payload['threads']} torch threads; bf16 supported: {payload['bf16_supported']}\n",
        f"## Network throughput, ResNet-18, batch {BATCH}, {payload['dataset']} images {payload['shape']}\n",
    ]
    rows = []
    for r in payload["throughput"]:
        fp32 = next(s for s in payload["throughput"] if s["width"] == r["width"] and s["precision"] == "fp32")
        rows.append([r["width"], r["precision"], r["input_gradient_per_s"], r["training_step_per_s"],
                     f"{r['input_gradient_per_s'] / fp32['input_gradient_per_s']:.2f}x",
                     f"{r['training_step_per_s'] / fp32['training_step_per_s']:.2f}x"])
    lines.append(markdown_table(["width", "precision", "input-gradient pass, images/s", "training step, images/s",
                                 "pass speed-up", "step speed-up"], rows) + "\n")
    if payload["generation"]:
        lines.append(f"## Generation on the whole {payload['dataset']} train split, preset `cpu`, seed 0\n")
        rows = [[g["method"], g["precision"], g["images"], f"{g['wall_s']:.0f}", f"{g['floor_s']:.0f}",
                 f"{g['wall_s'] / g['floor_s']:.2f}", g.get("speedup", ""),
                 f"{g['wall_measured']['date'][:16]} ({g['wall_measured']['commit']})"] for g in payload["generation"]]
        lines.append(markdown_table(["method", "precision", "train images", "wall s", "floor s", "wall / floor",
                                     "bf16 speed-up", "wall measured (commit)"], rows) + "\n")
        for method, speedups in pair_speedups(payload["generation"]).items():
            lines.append(f"{method}: bf16 speed-up over the {len(speedups)} measured fp32/bf16 pair(s): "
                         f"{statistics.mean(speedups):.2f}x (each: {', '.join(f'{v:.2f}x' for v in speedups)}).\n")
        lines.append("The floor counts the network passes of the run (source steps x PGD steps x batch + the final "
                     "pass's PGD steps x N input-gradient images, source steps x batch training images) at the rates "
                     "measured with it (the table above for the latest run), for the source model's width. Wall "
                     "time is the generation alone (no reading or writing of the release).\n")
    write_markdown(RESULTS / "speed_cpu.md", "\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--widths", default="16,64")
    parser.add_argument("--dataset", default="bloodmnist")
    parser.add_argument("--methods", default="salm", help="comma-separated methods of the bi-level family")
    parser.add_argument("--repeats", type=int, default=1, help="fp32/bf16 generation pairs to measure, in turn")
    parser.add_argument("--skip-generation", action="store_true",
                        help="measure throughput only; the journaled generation runs (the latest per method and "
                             "precision) are kept, their floors recomputed at the new rates")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load(args.dataset, str(data_root()))
    stored = data.images("train")
    shape = (1 if stored.ndim == 3 else stored.shape[-1], *stored.shape[1:3])
    payload = {"context": context(), "threads": args.threads, "dataset": args.dataset, "shape": list(shape),
               "bf16_supported": torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported(),
               "throughput": [], "generation": []}
    for width in map(int, args.widths.split(",")):
        for precision in ("fp32", "bf16"):
            payload["throughput"].append(throughput(shape, data.num_classes, width, precision))
            print(json.dumps(payload["throughput"][-1]), flush=True)
            write(payload)
    if args.skip_generation:
        latest = {(r["method"], r["precision"]): r for r in GENERATION.records()}
        for record in latest.values():
            rates = next(r for r in payload["throughput"]
                         if r["width"] == record["params"]["width"] and r["precision"] == record["precision"])
            payload["generation"].append({**record, "floor_s": round(floor_seconds(record["params"], record["images"], rates), 1)})
        write(payload)
        return
    payload["generation"] = GENERATION.records()  # earlier pairs stay beside the new ones
    for method in [m for m in args.methods.split(",") for _ in range(args.repeats)]:
        params = create_protection(method, preset="cpu").params()
        rates = {r["precision"]: r for r in payload["throughput"] if r["width"] == params["width"]}
        if len(rates) < 2:
            rates = {p: throughput(shape, data.num_classes, params["width"], p) for p in ("fp32", "bf16")}
        walls = {}
        for precision in ("fp32", "bf16"):
            protection = create_protection(method, preset="cpu")
            result = protection.protect(data, seed=0, progress=False, precision=precision)
            walls[precision] = result.seconds
            record = {"method": method, "precision": precision, "images": len(stored), "wall_s": round(result.seconds, 1),
                      "wall_measured": payload["context"],
                      "floor_s": round(floor_seconds(params, len(stored), rates[precision]), 1),
                      "batches": math.ceil(len(stored) / params["batch_size"]), "params": result.params}
            if precision == "bf16":
                record["speedup"] = f"{walls['fp32'] / walls['bf16']:.2f}x"
            payload["generation"].append(record)
            GENERATION.append(record)
            print(json.dumps({k: v for k, v in record.items() if k != "params"}), flush=True)
            write(payload)


if __name__ == "__main__":
    main()
