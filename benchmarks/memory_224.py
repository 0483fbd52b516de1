"""Peak memory of protecting a folder of 224 x 224 images larger than its float32 copy would allow.

    python benchmarks/memory_224.py [--n 20000] [--method salm] [--channels 1] [--classes 4]
                                    [--steps M] [--batch-size B] [--threads T] [--work DIR] [--results DIR]

Generates a folder dataset of N 8-bit PNG images of 224 x 224 (seeded, written one image at a
time, labels from one sub-folder per class), then runs ``medshield protect DATA --preset cpu``
in a child process under ``/usr/bin/time -v`` and records its wall time and peak resident set
size beside the size of the train images held as float32 (N x 224 x 224 x C x 4 bytes). Each run
is appended to results/memory_224.jsonl; results/memory_224.md (one row per run, so runs of
different sizes show how the peak scales) and .json (the latest run) are rewritten from it. The
data go to --work (a folder outside the repository, kept and reused by later runs with the same
settings) or to a temporary folder removed at the end;
the release is always removed. The child's scratch files (``TMPDIR``) go to the same folder.
Data generation is not timed; the release of an interrupted run must be removed by hand.
Without ``/usr/bin/time`` the peak comes from ``getrusage(RUSAGE_CHILDREN)`` and the record says so.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from common import RESULTS, context, write_json, write_markdown
from medshield import Journal
from medshield.report import markdown_table

SIZE = 224
REPO = Path(__file__).resolve().parents[1]
TIME = Path("/usr/bin/time")


def generate(root: Path, n: int, channels: int, classes: int, seed: int) -> None:
    """N images, one at a time: a smooth background, a bright disk whose position says the class, noise."""
    spec = {"n": n, "channels": channels, "classes": classes, "seed": seed, "size": SIZE}
    marker = root / "dataset.json"
    if marker.is_file():
        if json.loads(marker.read_text()) == {**spec, "complete": True}:
            return
        shutil.rmtree(root)  # an earlier run's data with other settings, or interrupted
    elif root.exists():
        sys.exit(f"{root} exists and was not written by this script; choose another --work")
    root.mkdir(parents=True)
    marker.write_text(json.dumps({**spec, "complete": False}) + "\n")
    rows, cols = np.mgrid[:SIZE, :SIZE]
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        label = i % classes
        angle = 2 * np.pi * label / classes
        cy, cx = SIZE / 2 + SIZE / 4 * np.sin(angle), SIZE / 2 + SIZE / 4 * np.cos(angle)
        image = 60 + 40 * (rows / SIZE) + 120 * (((rows - cy) ** 2 + (cols - cx) ** 2) < (SIZE / 10) ** 2)
        image = image[..., None] + rng.normal(0, 12, (SIZE, SIZE, channels))
        path = root / f"class_{label}" / f"img_{i:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        array = np.clip(image, 0, 255).astype(np.uint8)
        Image.fromarray(array[..., 0] if channels == 1 else array).save(path, compress_level=1)
    marker.write_text(json.dumps({**spec, "complete": True}) + "\n")


def run_protect(command: list[str], env: dict) -> dict:
    """Run ``command``; its wall time and peak RSS, from /usr/bin/time -v when it exists."""
    start = time.perf_counter()
    if TIME.is_file():
        done = subprocess.run([str(TIME), "-v", *command], env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
        if done.returncode != 0 or not peak:
            sys.exit(f"protect failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return {"wall_s": round(wall, 1), "peak_rss_bytes": int(peak.group(1)) * 1024, "rss_source": "/usr/bin/time -v"}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"protect failed ({done.returncode}):\n{done.stderr[-3000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # kilobytes on Linux
    return {"wall_s": round(wall, 1), "peak_rss_bytes": peak,
            "rss_source": "getrusage(RUSAGE_CHILDREN).ru_maxrss (/usr/bin/time not found)"}


def gib(count: int) -> str:
    return f"{count / 2**30:.2f}"


def write(record: dict, results: Path) -> None:
    results.mkdir(parents=True, exist_ok=True)
    Journal(results / "memory_224.jsonl").append(record)
    write_json(results / "memory_224.json", record)
    render(results)


def render(results: Path) -> None:
    runs = Journal(results / "memory_224.jsonl").records()
    record = runs[-1]
    rows = [[
        r["n"], f"{SIZE}x{SIZE}x{r['channels']}", r["method"], r["preset"], r["steps"] or "preset's",
        r.get("batch_size") or "preset's", r["threads"] or r["machine"]["torch_threads"], r["wall_s"],
        r["generation_seconds"], gib(r["peak_rss_bytes"]), gib(r["float32_bytes"]), gib(r["uint8_bytes"]),
        f"{r['peak_rss_bytes'] / r['float32_bytes']:.2f}", r["date"][:16], r["commit"],
    ] for r in runs]
    headers = ["images", "shape", "method", "preset", "source steps", "batch", "threads", "wall s", "protection s", "peak RSS GiB",
               "float32 GiB", "uint8 GiB", "RSS / float32", "date", "commit"]
    commands = "\n".join(f"- `{r['command']}`: `{' '.join(r['protect_command'])}`; bounds {r['measured']}"
                         + (f". {r['note']}" if r.get("note") else "") for r in runs)
    text = (
        "# Peak memory of protecting 224 x 224 images\n\n"
        f"Machine: {record['machine']}, {gib(record['memory_total_bytes'])} GiB RAM\n\n"
        f"{markdown_table(headers, rows)}\n\n"
        "Peak RSS from /usr/bin/time -v (else getrusage); wall time of the whole `medshield protect` run (loading\n"
        "and validating the folder, protection, writing and checking the release); 'protection s' the part spent\n"
        "generating the noise. 'float32' is the size of the train images held as float32 (N x 224 x 224 x C x 4\n"
        "bytes), 'uint8' as stored.\n\nCommands, protect commands and measured bounds of each release:\n\n"
        f"{commands}\n"
    )
    write_markdown(results / "memory_224.md", text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="number of images (20000)")
    parser.add_argument("--method", default="salm")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--channels", type=int, default=1, choices=(1, 3))
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, help="source steps M (default: the preset's); not for sp/random")
    parser.add_argument("--batch-size", type=int, help="source batch size (default: the preset's; the peak grows with it)")
    parser.add_argument("--threads", type=int, help="OMP/MKL threads of the protect run (default: torch's)")
    parser.add_argument("--work", type=Path, help="folder for the data, outside the repository (kept, reused)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where memory_224.md/.json go (default: results/)")
    parser.add_argument("--note", default="", help="recorded beside the run (e.g. what else ran on the machine)")
    args = parser.parse_args()
    if args.n < args.classes or args.classes < 2:
        parser.error("--classes must be at least 2 and --n at least --classes")
    if args.work is not None and REPO in [args.work.resolve(), *args.work.resolve().parents]:
        parser.error(f"--work {args.work} is inside the repository; choose a folder outside {REPO}")
    work = args.work.resolve() if args.work else Path(tempfile.mkdtemp(prefix="medshield-memory-"))
    ctx = context()
    try:
        work.mkdir(parents=True, exist_ok=True)
        data, out = work / "data", work / "release"
        generate(data, args.n, args.channels, args.classes, args.seed)
        command = [sys.executable, "-m", "medshield", "protect", str(data), "--out", str(out), "--method", args.method,
                   "--preset", args.preset, "--seed", str(args.seed), "--quiet"]
        if args.steps is not None:
            command += ["--steps", str(args.steps)]
        if args.batch_size is not None:
            command += ["--batch-size", str(args.batch_size)]
        env = {**os.environ, "TMPDIR": str(work)}
        if args.threads:
            env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
        measured = run_protect(command, env)
        manifest = json.loads((out / "manifest.json").read_text())
        shutil.rmtree(out)
        (out.parent / f"{out.name}.key").unlink(missing_ok=True)  # the release's key, written beside it
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    values = args.n * SIZE * SIZE * args.channels
    record = {
        **ctx, "n": args.n, "channels": args.channels, "classes": args.classes, "method": args.method, "preset": args.preset,
        "steps": args.steps, "batch_size": args.batch_size, "threads": args.threads, "note": args.note, "protect_command": command, **measured,
        "float32_bytes": 4 * values, "uint8_bytes": values,
        "memory_total_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "generation_seconds": manifest["generation_seconds"], "measured": manifest["measured"], "params": manifest["params"],
    }
    write(record, args.results)
    print(f"{args.n} images, {args.method}: {measured['wall_s']} s, peak RSS {gib(measured['peak_rss_bytes'])} GiB "
          f"(float32 data {gib(4 * values)} GiB)", flush=True)


if __name__ == "__main__":
    main()
