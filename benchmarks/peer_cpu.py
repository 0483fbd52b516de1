"""REM beside its reference code: seconds per source step on the same slice, and how far from the CPU's limit.

    python benchmarks/peer_cpu.py [--threads 2] [--dataset bloodmnist] [--n 2048] [--warmup 1] [--measured 3]
                                  [--width 64] [--batch-size 128] [--pgd-steps 10] [--samples 1] [--adv-steps 2]
                                  [--peer-git DIR] [--peer-root /tmp] [--keep-denormals] [--resume]

The reference is github.com/fshp971/robust-unlearnable-examples (Fu et al., ICLR 2022), fetched once
as a git snapshot (``--peer-git``, the session tool's ``fetch github:fshp971/robust-unlearnable-examples``),
extracted with ``git archive | tar -x`` under ``--peer-root`` and run in place by ``peer/rem_reference.py``
(nothing of it is copied here). On the first ``--n`` train images of ``--dataset``, both sides run the
same REM knobs (the table in the results) for ``--warmup`` + ``--measured`` source steps:

1. Ours: ``create_protection("rem", ...)`` and ``protect`` on the slice (fp32, no final pass).
2. Theirs: their ``generate_robust_em.main`` on the same arrays, stopped after the last timed step
   (before its final pass over every image).

Seconds per source step, each side: from the end of step ``--warmup`` to the end of the last step,
over ``--measured`` steps; torch's global optimizer-step hook stamps the end of every step (each side
makes one SGD step per source step), so both are timed by the same clock and nothing inside either loop.

3. The limit: the CPU's fp32 peak, the fastest of a 4096 x 4096 product (``torch.mm``, and as a 1x1
   convolution) and the 3x3 convolutions of the ResNet-18's stages, each best of 5 (on this CPU, MKL's
   ``torch.mm`` runs below oneDNN's convolutions), and the effective FLOP/s
   of our input-gradient pass (eval-mode forward of the source model through flip + crop, loss,
   gradient to the input: one pass of PGD, of which an REM step makes
   pgd_steps x samples x (adv_steps + 1) + adv_steps) and of a training step, FLOPs counted with
   ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matmuls). A source step's *floor* is
   its passes at those rates; each side's step / floor is what its loop spends beyond the network.

Denormals are flushed (``torch.set_flush_denormal``) on both sides unless ``--keep-denormals``: a fresh
network's first steps run ~2x slower on fp32 denormals (speed_cpu.py), the timed window is the start of
a run, and a run's 5000 steps are almost all past it. Each measured part is journaled
(results/peer_cpu.jsonl); ``--resume`` completes the latest run of the same settings.

Results: results/peer_cpu.md and .json. Defaults take ~7 minutes on 2 idle cores (width 64, the only
width their ResNet-18 has: ~40 s per source step ours).

Imports ``medshield.models`` (create_model) and ``medshield.models.augment`` (flip_crop) beyond the public
``medshield``, as speed_cpu.py does: the FLOP count and time of one input-gradient pass need the bare
source network, which no public call runs alone.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.optimizer import register_optimizer_step_post_hook
from torch.utils.flop_counter import FlopCounterMode

from common import RESULTS, context, cpu_model, data_root, network_passes, write_json, write_markdown
from medshield import Journal, create_protection, load
from medshield.models import create_model
from medshield.models.augment import flip_crop
from medshield.report import markdown_table
from peer import rem_reference

REPOSITORY = "github.com/fshp971/robust-unlearnable-examples"
DEFAULT_GIT = "/work/.mirror/fshp971+robust-unlearnable-examples/repo"  # where the session's fetch tool puts it
PEAK_SIZE, PEAK_REPEATS = 4096, 5
PASS_REPEATS = 5  # input-gradient passes timed (best of), after one warm-up; training steps: 3
JOURNAL = Journal(RESULTS / "peer_cpu.jsonl")


class Enough(Exception):
    """Raised from the step hook once the timed steps are done (ends their loop before its final pass)."""


class StepClock:
    """``perf_counter`` at the end of every optimizer step in this process; ``stop_after`` steps raise ``Enough``."""

    def __init__(self, stop_after: int | None = None):
        self.stamps, self.stop_after = [], stop_after

    def __enter__(self):
        self.handle = register_optimizer_step_post_hook(self._hook)
        return self

    def __exit__(self, *exc):
        self.handle.remove()
        return exc[0] is Enough

    def _hook(self, optimizer, args, kwargs):
        self.stamps.append(time.perf_counter())
        if self.stop_after is not None and len(self.stamps) == self.stop_after:
            raise Enough

    def timed(self, warmup: int, measured: int) -> dict:
        if len(self.stamps) != warmup + measured:
            raise RuntimeError(f"{len(self.stamps)} optimizer steps, expected {warmup + measured}")
        steps = [b - a for a, b in zip(self.stamps[warmup - 1:], self.stamps[warmup:])]
        return {"s_per_step": round((self.stamps[-1] - self.stamps[warmup - 1]) / measured, 3),
                "steps_s": [round(s, 3) for s in steps]}




def knobs(args) -> dict:
    """The REM settings both sides run (fractions of the range; the reference takes radii and steps in 1/255)."""
    adv_eps = 4 / 255
    return {"eps": 8 / 255, "step_size": 1.6 / 255, "pgd_steps": args.pgd_steps, "samples": args.samples,
            "adv_eps": adv_eps, "adv_steps": args.adv_steps, "adv_step_size": min(adv_eps, 2 * adv_eps / args.adv_steps),
            "batch_size": args.batch_size, "width": args.width, "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4}


def passes_per_step(k: dict) -> int:
    """Input-gradient passes of one REM source step: PGD on the noise (each draw: the adversarial example's
    ascent steps, then the pass through it) and the adversarial example the training step trains on."""
    return k["pgd_steps"] * k["samples"] * (k["adv_steps"] + 1) + k["adv_steps"]


def best_time(function, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def peak(k: dict, size: int) -> dict:
    """fp32 FLOP/s of the fastest kernels this CPU runs at these threads, each best of ``PEAK_REPEATS``: a
    4096 x 4096 matrix product as ``torch.mm`` (MKL's sgemm here) and as a 1x1 convolution (oneDNN, which runs
    our convolutions), and the forward 3x3 convolution of each ResNet-18 stage at the benchmark's batch and
    width (FLOPs as ``FlopCounterMode`` counts them). The peak is the fastest of them."""
    generator = torch.Generator().manual_seed(0)
    n, channels_last = PEAK_SIZE, torch.channels_last
    a, b = (torch.randn(n, n, generator=generator) for _ in range(2))
    image = a.t().reshape(1, n, 64, n // 64).contiguous(memory_format=channels_last)  # n pixels x n channels
    kernel = b.t().reshape(n, n, 1, 1).contiguous(memory_format=channels_last)
    kernels = {f"`torch.mm` {n} x {n}": (2 * n**3, lambda: torch.mm(a, b)),
               "the same product as a 1x1 `conv2d` (oneDNN)": (2 * n**3, lambda: F.conv2d(image, kernel))}
    for stage in range(4):
        c, px = k["width"] * 2**stage, -(-size // 2**stage)  # stride-2 stages: 28, 14, 7, 4 px
        x = torch.randn(k["batch_size"], c, px, px, generator=generator).contiguous(memory_format=channels_last)
        w = torch.randn(c, c, 3, 3, generator=generator).contiguous(memory_format=channels_last)
        kernels[f"3x3 `conv2d` {c} channels, {px} px, batch {k['batch_size']} (stage {stage + 1})"] = (
            counted(lambda x=x, w=w: F.conv2d(x, w, padding=1)), lambda x=x, w=w: F.conv2d(x, w, padding=1))
    measured = []
    for name, (flop, function) in kernels.items():
        seconds = best_time(function, PEAK_REPEATS)
        measured.append({"kernel": name, "flop": flop, "s": round(seconds, 5), "flops": flop / seconds})
    top = max(measured, key=lambda m: m["flops"])
    return {"repeats": PEAK_REPEATS, "kernels": measured, "flops": top["flops"], "by": top["kernel"],
            "mm_flops": measured[0]["flops"]}


def counted(function) -> int:
    with FlopCounterMode(display=False) as counter:
        function()
    return counter.get_total_flops()


def effective(images: np.ndarray, labels: np.ndarray, num_classes: int, k: dict, checkout: Path) -> dict:
    """FLOPs and best time of our input-gradient pass and training step at the benchmark's batch and width,
    on a batch of the slice; and the two networks' sizes (theirs must be the same network)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.from_numpy(images[: k["batch_size"]]).float().div(255)
    x = (x[:, None] if x.ndim == 3 else x.permute(0, 3, 1, 2)).contiguous()
    y = torch.from_numpy(labels[: k["batch_size"]]).long()
    model = create_model("resnet18", num_classes=num_classes, in_channels=x.shape[1], width=k["width"],
                         image_size=x.shape[-1], device=torch.device("cpu"), precision="fp32")
    optimizer = torch.optim.SGD(model.parameters(), lr=k["lr"], momentum=k["momentum"], weight_decay=k["weight_decay"])
    input_gradient, training_step = network_passes(model, x, y, lambda batch: flip_crop(batch, generator), optimizer)

    record = {"batch": len(x), "width": k["width"], "training_step_flop": counted(training_step),
              "input_gradient_flop": counted(input_gradient)}
    record["training_step_s"] = round(best_time(training_step, 3), 4)
    record["input_gradient_s"] = round(best_time(input_gradient, PASS_REPEATS), 4)
    record["input_gradient_flops"] = record["input_gradient_flop"] / record["input_gradient_s"]
    record["training_step_flops"] = record["training_step_flop"] / record["training_step_s"]
    theirs = rem_reference.network(checkout, x.shape[1], num_classes)
    record["forward_flop_per_image"] = {"ours": counted(lambda: model.eval()(x[:2])) // 2,
                                        "theirs": counted(lambda: theirs.eval()(x[:2] - 0.5)) // 2}
    record["parameters"] = {"ours": sum(p.numel() for p in model.parameters()),
                            "theirs": sum(p.numel() for p in theirs.parameters())}
    return record


def ours(source: Path, k: dict, warmup: int, measured: int) -> dict:
    protection = create_protection("rem", **k, steps=warmup + measured, final_pass=False, random_start=True,
                                   arch="resnet18", transform="flip-crop")
    data = load(str(source))
    with StepClock() as clock:
        result = protection.protect(data, seed=0, device="cpu", progress=False, precision="fp32")
    return {**clock.timed(warmup, measured), "params": result.params}


def theirs(checkout: Path, images: np.ndarray, labels: np.ndarray, k: dict, warmup: int, measured: int) -> dict:
    with StepClock(stop_after=warmup + measured) as clock:  # their loop ends in Enough, before its final pass
        rem_reference.run(checkout, images, labels, k, steps=warmup + measured, seed=0)
    return {**clock.timed(warmup, measured), "argv": rem_reference.flags(k, warmup + measured, "TEMPORARY_FOLDER")}


def settings_rows(k: dict, payload: dict) -> list[list]:
    e = payload.get("effective") or {}
    params = e.get("parameters", {})
    flop = e.get("forward_flop_per_image", {})
    deg = lambda v: f"{255 * v:g}/255"  # noqa: E731
    count = lambda side: f"{params[side]:,}" if side in params else "?"  # noqa: E731
    w, m = payload["warmup"], payload["measured"]
    return [
        ["data", f"first {payload['n']} {payload['dataset']} train images {payload['shape']}, uint8", "the same arrays", "yes"],
        ["source steps", f"{w} warm-up + {m} timed (`steps={w + m}`, `final_pass=False`)",
         f"`--train-steps {w + m}`, stopped after step {w + m} (before `regenerate_def_noise`)", "yes"],
        ["network", f"ResNet-18, CIFAR stem, `width={k['width']}`; {count('ours')} parameters, "
         f"{flop.get('ours', 0) / 1e6:.1f} MFLOP/image forward",
         f"`--arch resnet18` (base width 64, fixed); {count('theirs')} parameters, "
         f"{flop.get('theirs', 0) / 1e6:.1f} MFLOP/image forward", "yes" if k["width"] == 64 else "no: theirs is 64"],
        ["batch size", f"`batch_size={k['batch_size']}`", f"`--batch-size {k['batch_size']}`", "yes"],
        ["rho_u (noise radius)", f"`eps={deg(k['eps'])}`", f"`--pgd-radius {255 * k['eps']:g}`", "yes"],
        ["PGD steps on the noise, step", f"`pgd_steps={k['pgd_steps']}`, `step_size={deg(k['step_size'])}`, random start",
         f"`--pgd-steps {k['pgd_steps']} --pgd-step-size {255 * k['step_size']:g} --pgd-random-start`", "yes"],
        ["rho_a (adversarial radius)", f"`adv_eps={deg(k['adv_eps'])}`", f"`--atk-pgd-radius {255 * k['adv_eps']:g}`", "yes"],
        ["adversarial steps, step", f"`adv_steps={k['adv_steps']}`, `adv_step_size={deg(k['adv_step_size'])}`, random start",
         f"`--atk-pgd-steps {k['adv_steps']} --atk-pgd-step-size {255 * k['adv_step_size']:g} --atk-pgd-random-start`", "yes"],
        ["expectation over transformations J", f"`samples={k['samples']}`", f"`--samp-num {k['samples']}`", "yes"],
        ["transformation T", "flip + crop (4 px zero padding at 28 px), one batched gather",
         "their `RandomHorizontalFlip`, `RandomCrop` (padding 4), `Normalize`, image by image", "yes (same distribution)"],
        ["source optimizer", f"SGD lr {k['lr']}, momentum {k['momentum']}, weight decay {k['weight_decay']}",
         f"`--optim sgd --lr {k['lr']} --momentum {k['momentum']} --weight-decay {k['weight_decay']}`", "yes"],
        ["learning-rate schedule", "x0.1 at 40 % and 80 % of the steps", "`--lr-decay-freq 2000` (x0.1 every 2000 steps)",
         "no: costs nothing either way"],
        ["precision, device", "fp32 (`precision=\"fp32\"`), CPU", "fp32, `--cpu`", "yes"],
        ["threads", f"{payload['threads']}", f"{payload['threads']} (same process)", "yes"],
        ["denormals", "flushed" if payload["flush_denormal"] else "kept", "the same (same process)", "yes"],
        ["input scale", "[0, 1], noise and adversary in fractions of it", "0-255 normalized to [-0.5, 0.5], radii /255",
         "equivalent"],
        ["memory layout", "channels_last (our CPU default, width >= 8)", "contiguous (their default)", "their code's choice"],
        ["data loader", "in-process batches of a memory map", "their `Loader`, `num_workers=0` (their default 4)", "adapted"],
        ["noise storage", "int8 levels in a scratch file", "int8 numpy array in memory", "their code's choice"],
    ]


def not_matched(k: dict, payload: dict) -> str:
    """What differs between the sides, or from the paper's REM, and why."""
    paper, e = {**k, "samples": 5, "adv_steps": 10}, payload.get("effective")
    paper_s = f"~{passes_per_step(paper) * e['input_gradient_s'] + e['training_step_s']:.0f} s" if e else "minutes"
    lines = []
    if (k["samples"], k["adv_steps"]) != (5, 10):
        lines.append(f"- **J = {k['samples']} and {k['adv_steps']} adversarial steps, not the paper's J = 5 and 10** (our `cpu` "
                     f"preset's REM has 1 and 2): at the paper's, one source step is {passes_per_step(paper)} input-gradient "
                     f"passes ({paper_s} here at width {k['width']}, from the rates above), and a few timed steps per "
                     "side would take hours. Both sides run the same knobs and so the same passes per step "
                     f"({payload['passes_per_step']} here): the ratio measures the implementations, not the knobs.")
    if k["width"] != 64:
        lines.append(f"- **Width {k['width']}**: their ResNet-18 has no width knob (base width 64); ours ran at {k['width']}, "
                     "so the networks differ and the ratio compares different work.")
    else:
        lines.append("- **Width 64** on both sides: their ResNet-18 has no width knob, so ours runs at 64, not at our "
                     "`cpu` preset's 16.")
    lines += [
        f"- **Learning-rate schedule**: ours decays at fractions of the run's steps, theirs every 2000 steps; over "
        f"{payload['warmup'] + payload['measured']} steps it changes only the learning rate's value, not a step's work.",
        "- **Their data loader** runs with `num_workers=0` instead of their default 4 (4 worker processes would compete "
        "with the 2 torch threads); their per-image tensor conversion stays in the timed steps.",
        "- **Dataset**: their parser accepts only its own dataset names, so it is given `--dataset cifar10` and the "
        "adapter replaces what that name selects (loader, the network's classes and channels, crop size, noise array "
        "shape); no CIFAR data is read.",
        "- **Implementation choices** are not knobs and are left as each side has them: memory layout (ours "
        "channels_last, theirs contiguous), the transformation (ours one batched gather, theirs torchvision image by "
        "image), noise storage (ours a scratch file, theirs an in-memory array).",
    ]
    return "\n".join(lines) + "\n"


def step_section(payload: dict) -> list[str]:
    """Seconds per source step, each side, against the floor of its network passes."""
    lines = []
    sides = {side: payload.get(side) for side in ("ours", "theirs")}
    e, p = payload.get("effective"), payload.get("peak")
    step_flop = floor = None
    if e:
        step_flop = payload["passes_per_step"] * e["input_gradient_flop"] + e["training_step_flop"]
        floor = payload["passes_per_step"] * e["input_gradient_s"] + e["training_step_s"]
    lines.append(f"## Seconds per source step, {payload['dataset']} slice of {payload['n']}, "
                 f"{payload['measured']} timed step(s) after {payload['warmup']} warm-up\n")
    rows = []
    for side, label in (("ours", "medshield `rem`"), ("theirs", "reference `generate_robust_em.py`")):
        r = sides[side]
        if not r:
            rows.append([label, "not measured", "", "", "", "", ""])
            continue
        rows.append([label, f"{r['s_per_step']:.2f}", ", ".join(f"{s:.2f}" for s in r["steps_s"]),
                     f"{r['s_per_step'] / floor:.2f}" if floor else "",
                     f"{step_flop / r['s_per_step'] / 1e9:.1f}" if step_flop else "",
                     f"{step_flop / r['s_per_step'] / p['flops']:.0%}" if step_flop and p else "",
                     f"{step_flop / r['s_per_step'] / p['mm_flops']:.0%}" if step_flop and p else ""])
    lines.append(markdown_table(["side", "s / source step", "each timed step, s", "step / floor", "effective GFLOP/s",
                                 "of peak", "of `torch.mm`"], rows) + "\n")
    if sides["ours"] and sides["theirs"]:
        ratio = sides["theirs"]["s_per_step"] / sides["ours"]["s_per_step"]
        lines.append(f"**Theirs / ours: {ratio:.2f}x** (seconds per source step; above 1, ours is faster).\n")
    walls = [f"{part} {payload[part]['wall_s']:.0f} s" for part in ("peak", "effective", "ours", "theirs") if payload.get(part)]
    lines.append(f"Wall time of each part: {', '.join(walls)}.\n")
    if floor:
        lines.append(f"The floor is a step's network passes at the rates below: {payload['passes_per_step']} input-gradient "
                     f"passes x {e['input_gradient_s']:.3f} s + one training step x {e['training_step_s']:.3f} s = "
                     f"{floor:.2f} s, {step_flop / 1e9:.1f} GFLOP.\n")
    return lines


def limit_section(payload: dict) -> list[str]:
    """The fastest kernel measured, and our passes' share of it."""
    e, p = payload.get("effective"), payload.get("peak")
    lines = []
    lines.append("## The CPU's limit\n")
    rows = []
    if p:
        for m in p["kernels"]:
            mark = "**peak**: " if p["by"] == m["kernel"] else ""
            rows.append([f"{mark}{m['kernel']}, fp32, best of {p['repeats']}", f"{m['flop'] / 1e9:.1f}", f"{m['s']:.3f}",
                         f"{m['flops'] / 1e9:.1f}", f"{m['flops'] / p['flops']:.0%}", f"{m['flops'] / p['mm_flops']:.0%}"])
    if e:
        for name, key in (("our input-gradient pass (one PGD pass)", "input_gradient"), ("our training step", "training_step")):
            rows.append([f"{name}, ResNet-18 width {e['width']}, batch {e['batch']}", f"{e[key + '_flop'] / 1e9:.1f}",
                         f"{e[key + '_s']:.3f}", f"{e[key + '_flops'] / 1e9:.1f}",
                         f"{e[key + '_flops'] / p['flops']:.0%}" if p else "",
                         f"{e[key + '_flops'] / p['mm_flops']:.0%}" if p else ""])
    lines.append(markdown_table(["work", "GFLOP", "best s", "GFLOP/s", "of peak", "of `torch.mm`"], rows) + "\n")
    if p:
        lines.append(f"The peak is the fastest kernel measured, here {p['by']}"
                     + (", faster than MKL's `torch.mm`: the matrix product alone is not the limit of a convolutional "
                        "network's pass on this CPU; the last column is against `torch.mm` all the same. "
                        if p["by"] != p["kernels"][0]["kernel"] else ". ")
                     + "FLOPs are those `torch.utils.flop_counter.FlopCounterMode` counts (convolutions and matrix "
                     "products; batch norm, activations and the transformation are not counted). A pass is timed best of "
                     f"{PASS_REPEATS}, a training step best of 3, after one warm-up each.\n")
    return lines


def write(payload: dict, history: list[dict]) -> None:
    write_json(RESULTS / "peer_cpu.json", payload)
    ctx, k = payload["context"], payload["knobs"]
    lines = [
        "# REM beside its reference code: seconds per source step on CPU\n",
        f"Command: `{ctx['command']}` (commit {ctx['commit']})\n",
        f"Date: {ctx['date']}\n",
        f"Machine: {payload['cpu_model']}, {ctx['machine']['cpu_count']} cores, {payload['threads']} torch threads, "
        f"torch {torch.__version__}\n",
        f"Reference: {REPOSITORY} at commit {payload['peer']['commit']}, extracted with "
        f"`{payload['peer']['extract_command']}` and run in place by `benchmarks/peer/rem_reference.py`\n",
    ]
    lines += step_section(payload)
    lines += limit_section(payload)
    lines.append("## Settings\n")
    lines.append(markdown_table(["knob", "ours", "theirs", "matched"], settings_rows(k, payload)) + "\n")
    lines.append("## Not matched, and why\n")
    lines.append(not_matched(k, payload))
    lines.append("## Commands\n")
    lines.append("```\n"
                 "# the reference, once: the session tool `fetch` with source github:fshp971/robust-unlearnable-examples\n"
                 f"{payload['peer']['extract_command']}   # done by the script when missing\n"
                 + "".join(f"{command}\n" for command in payload["commands"]) + "```\n")
    if history:
        lines.append("## Runs in the journal\n")
        lines.append(markdown_table(["date", "commit", "ours s/step", "theirs s/step", "theirs / ours"], [
            [h["date"][:16], h["commit"], h.get("ours", ""), h.get("theirs", ""),
             f"{h['theirs'] / h['ours']:.2f}x" if h.get("ours") and h.get("theirs") else ""] for h in history]) + "\n")
    write_markdown(RESULTS / "peer_cpu.md", "\n".join(lines), keep=("## Notes",))


def history() -> list[dict]:
    runs = {}
    for r in JOURNAL.records():
        h = runs.setdefault(r["run"], {"date": r["run"], "commit": r["commit"]})
        if r["part"] in ("ours", "theirs"):
            h[r["part"]] = r["s_per_step"]
    return list(runs.values())


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dataset", default="bloodmnist")
    parser.add_argument("--n", type=int, default=2048, help="train images of the slice (the first N)")
    parser.add_argument("--warmup", type=int, default=1, help="source steps before the timed ones (at least 1)")
    parser.add_argument("--measured", type=int, default=3, help="source steps timed, each side")
    parser.add_argument("--width", type=int, default=64, help="our source width (theirs is 64, fixed)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--pgd-steps", type=int, default=10)
    parser.add_argument("--samples", type=int, default=1, help="J, transformations per PGD step (paper: 5)")
    parser.add_argument("--adv-steps", type=int, default=2, help="adversarial ascent steps (paper: 10)")
    parser.add_argument("--peer-git", default=DEFAULT_GIT, help="git directory of the fetched reference snapshot")
    parser.add_argument("--peer-root", default=tempfile.gettempdir(), help="where the snapshot is extracted")
    parser.add_argument("--keep-denormals", action="store_true", help="do not flush fp32 denormals to zero")
    parser.add_argument("--parts", default="peak,effective,ours,theirs", help="what to measure")
    parser.add_argument("--resume", action="store_true", help="complete the latest journaled run of the same settings")
    args = parser.parse_args()
    if args.warmup < 1 or args.measured < 1:
        parser.error("--warmup and --measured must be at least 1")
    return args


def resumed(key: dict, ctx: dict) -> tuple[dict, list[str], dict]:
    """The parts, commands and context of the latest journaled run with the same settings (--resume)."""
    same = [r for r in JOURNAL.records() if r["key"] == json.loads(json.dumps(key))]
    if not same:
        return {}, [], ctx
    mine = [r for r in same if r["run"] == same[-1]["run"]]
    return {r["part"]: r["result"] for r in mine}, [r["invoked"] for r in mine], same[-1]["context"]


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    flush = not args.keep_denormals
    torch.set_flush_denormal(flush)
    k = knobs(args)
    peer = rem_reference.snapshot(Path(args.peer_git), Path(args.peer_root))
    checkout = Path(peer["checkout"])
    ctx = context()
    key = {"knobs": k, "dataset": args.dataset, "n": args.n, "warmup": args.warmup, "measured": args.measured,
           "threads": args.threads, "flush_denormal": flush, "peer_commit": peer["commit"]}
    invoked = (f"cd {Path(__file__).resolve().parents[1]} && PYTHONPATH=src {sys.executable} "
               f"{' '.join(['benchmarks/peer_cpu.py', *sys.argv[1:]])}")
    done, commands = {}, []
    if args.resume:
        done, commands, ctx = resumed(key, ctx)
    run_id = ctx["date"]  # a resumed run keeps its first context
    with np.load(data_root() / f"{args.dataset}.npz", allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["train_images"], arrays["train_labels"] = arrays["train_images"][: args.n], arrays["train_labels"][: args.n]
    images, labels = arrays["train_images"], arrays["train_labels"].reshape(-1).astype(np.int64)
    payload = {"context": ctx, "cpu_model": cpu_model(), **key, "shape": list(images.shape[1:]), "peer": peer,
               "passes_per_step": passes_per_step(k), "commands": list(dict.fromkeys([*commands, invoked]))}
    payload.update(done)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / f"{args.dataset}.npz"
        np.savez(source, **arrays)
        num_classes = load(str(source)).num_classes
        jobs = {"peak": lambda: peak(k, images.shape[1]),
                "effective": lambda: effective(images, labels, num_classes, k, checkout),
                "ours": lambda: ours(source, k, args.warmup, args.measured),
                "theirs": lambda: theirs(checkout, images, labels, k, args.warmup, args.measured)}
        for part in args.parts.split(","):
            if part in done:
                continue
            started = time.perf_counter()
            payload[part] = jobs[part]()
            payload[part]["wall_s"] = round(time.perf_counter() - started, 1)
            print(json.dumps({"part": part, **{n: v for n, v in payload[part].items()
                                               if n in ("wall_s", "s_per_step", "steps_s", "flops", "input_gradient_flops")}}),
                  flush=True)
            JOURNAL.append({"run": run_id, "commit": ctx["commit"], "context": ctx, "key": key, "part": part,
                            "result": payload[part], "invoked": invoked,
                            **({"s_per_step": payload[part]["s_per_step"]} if "s_per_step" in payload[part] else {})})
            write(payload, history())

if __name__ == "__main__":
    main()
