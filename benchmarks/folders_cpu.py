"""Image folders as owners hold them (issue 28), measured on MedMNIST images.

    python benchmarks/folders_cpu.py archive   # split folders, gray + RGB, JPEG + PNG, 3 sizes: protect + restore
    python benchmarks/folders_cpu.py evaluate  # evaluate --compare --preset cpu on a 3-size folder release
    python benchmarks/folders_cpu.py validate [--n 7000]              # load and validate: time, peak RSS
    python benchmarks/folders_cpu.py protect [--n 7000] [--steps M]   # protect --preset cpu: time, peak RSS

Each part builds its folder from MedMNIST images (``Training/<class>/`` and ``Testing/<class>/``,
seeded, resized to a few sizes, some gray, some JPEG), runs ``medshield`` in a child process under
``/usr/bin/time -v`` (wall time, peak RSS), appends a record to results/folders_cpu.jsonl and
rewrites results/folders_cpu.md and .json from it. Folders go to --work (outside the repository)
or a temporary folder removed at the end. Run one part at a time, alone on the machine
(``flock /tmp/medshield-cpu.lock``): timings of parts run side by side mean nothing.

Imports ``medshield.data.folder`` beyond the public ``medshield`` (in the ``validate`` part's child
process): it times the image-folder reader alone, without the DICOM sniff ``open_dataset`` adds.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from common import RESULTS, context, cpu_model, data_root, write_json, write_markdown
from medshield import Journal, read_image
from medshield.report import markdown_table

TIME = Path("/usr/bin/time")
CLASSES = {"bloodmnist": 8, "breastmnist": 2}


def build(root: Path, flag: str, n_train: int, n_test: int, sizes: tuple, *, jpeg_every: int, gray_every: int,
          seed: int = 0) -> dict:
    """Training/ and Testing/ from ``flag``'s train and test images, one file at a time; the first
    train image is also copied into Testing/ (a leak to be found) and a .DS_Store sits at the root.
    A folder built before with the same settings is reused (its record sits beside it)."""
    spec = {"flag": flag, "n_train": n_train, "n_test": n_test, "sizes": list(sizes), "jpeg_every": jpeg_every,
            "gray_every": gray_every, "seed": seed}
    marker = root.with_name(f"{root.name}.json")
    if marker.is_file() and json.loads(marker.read_text())["spec"] == spec:
        return json.loads(marker.read_text())["built"]
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(seed)
    with np.load(data_root() / f"{flag}.npz", allow_pickle=False) as npz:
        parts = {"Training": (npz["train_images"], npz["train_labels"][:, 0], n_train),
                 "Testing": (npz["test_images"], npz["test_labels"][:, 0], n_test)}
        for split, (images, labels, n) in parts.items():
            for i in rng.permutation(len(images))[:n] if n < len(images) else range(len(images)):
                image = Image.fromarray(images[i]).resize((sizes[i % len(sizes)],) * 2, Image.Resampling.BICUBIC)
                if gray_every and i % gray_every == 0:
                    image = image.convert("L")
                folder = root / split / f"class_{labels[i]}"
                folder.mkdir(parents=True, exist_ok=True)
                if jpeg_every and i % jpeg_every:
                    image.save(folder / f"{i:06d}.jpg", quality=95)
                else:
                    image.save(folder / f"{i:06d}.png", compress_level=1)
    first = sorted((root / "Training").rglob("*.*"))[0]
    shutil.copy(first, root / "Testing" / first.parent.name / f"copy_{first.name}")
    (root / ".DS_Store").write_bytes(b"\0\0\0\1Bud1\0")
    files = [p for p in root.rglob("*") if p.is_file()]
    built = {"flag": flag, "files": len(files), "sizes": list(sizes), "jpeg": sum(p.suffix == ".jpg" for p in files),
             "png": sum(p.suffix == ".png" for p in files)}
    marker.write_text(json.dumps({"spec": spec, "built": built}))
    return built


def timed(command: list[str], env: dict | None = None) -> dict:
    """Run ``command`` under /usr/bin/time -v: wall seconds and peak RSS."""
    start = time.perf_counter()
    done = subprocess.run([str(TIME), "-v", *command], env={**os.environ, **(env or {})}, capture_output=True, text=True)
    wall = time.perf_counter() - start
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    if done.returncode != 0 or not peak:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    log = [line for line in done.stderr.splitlines() if line.startswith(("WARNING", "medshield"))]
    return {"wall_s": round(wall, 1), "peak_rss_mib": round(int(peak.group(1)) / 1024, 1), "log": log,
            "stdout": done.stdout[-2000:]}




def medshield(*args) -> list[str]:
    return [sys.executable, "-m", "medshield", *[str(a) for a in args]]


VALIDATE = ("from medshield.data.folder import load_folder; import sys; d = load_folder(sys.argv[1]); "
            "w = d.notes['working']; print(f\"{len(d.files)} images validated; working {w['size']} px x {w['channels']} "
            "channels; {d.notes['duplicates']['held_out_images_in_train']} held-out images found in train\")")


def part_validate(work: Path, args) -> dict:
    data = work / f"folder_{args.n}"
    built = build(data, "bloodmnist", args.n * 5 // 7, args.n - args.n * 5 // 7 - 1, (28, 56, 112),
                  jpeg_every=7, gray_every=5)
    run = timed([sys.executable, "-c", VALIDATE, str(data)])
    return {"built": built, **run}


def part_protect(work: Path, args) -> dict:
    data = work / f"folder_{args.n}"
    built = build(data, "bloodmnist", args.n * 5 // 7, args.n - args.n * 5 // 7 - 1, (28, 56, 112),
                  jpeg_every=7, gray_every=5)
    command = medshield("protect", data, "--out", work / "release", "--overwrite", "--preset", "cpu", "--seed", 0, "--quiet",
                        *(["--steps", args.steps] if args.steps else []))
    run = timed(command, {"TMPDIR": str(work)})
    manifest = json.loads((work / "release" / "manifest.json").read_text())
    return {"built": built, "protect_command": " ".join(command[1:]), **run, "measured": manifest["measured"],
            "working": manifest["working"], "generation_seconds": manifest["generation_seconds"]}


def part_archive(work: Path, args) -> dict:
    data = work / "archive"
    built = build(data, "bloodmnist", 120, 60, (28, 40, 56), jpeg_every=2, gray_every=3)
    out, restored = work / "release", work / "restored"
    run = timed(medshield("protect", data, "--out", out, "--overwrite", "--preset", "cpu", "--seed", 0, "--quiet"))
    timed(medshield("restore", out, "--out", restored, "--overwrite"))
    worst, same, png_worst = 0, 0, 0
    images = [p.relative_to(data) for p in data.rglob("*") if p.suffix in (".png", ".jpg")]
    for rel in images:
        original = read_image(data / rel).astype(np.int64)
        change = int(np.abs(read_image(out / rel).astype(np.int64) - original).max())
        worst = max(worst, change)
        png_worst = max(png_worst, change) if rel.suffix == ".png" else png_worst
        same += bool(np.array_equal(read_image(restored / rel), original))
    manifest = json.loads((out / "manifest.json").read_text())
    return {"built": built, **run, "restored_pixel_identical": f"{same}/{len(images)}", "linf_png": png_worst,
            "linf_all": worst, "measured": manifest["measured"], "duplicates": manifest["duplicates"],
            "working": manifest["working"], "skipped_files": manifest["skipped_files"]}


def part_evaluate(work: Path, args) -> dict:
    data = work / "three_sizes"
    built = build(data, "bloodmnist", 3000, 1000, (24, 28, 36), jpeg_every=0, gray_every=0)
    out = work / "release"
    protect = timed(medshield("protect", data, "--out", out, "--overwrite", "--preset", "cpu", "--seed", 0, "--quiet"))
    command = medshield("evaluate", out, "--compare", "--preset", "cpu", "--seed", 0, "--quiet", "--json", work / "eval.json")
    run = timed(command)
    report = json.loads((work / "eval.json").read_text())
    return {"built": built, "protect_wall_s": protect["wall_s"], "evaluate_command": " ".join(command[1:]), **run,
            "protected_accuracy": report["test_accuracy"], "clean_accuracy": report["clean"]["test_accuracy"],
            "accuracy_drop": report["accuracy_drop"], "working": json.loads((out / "manifest.json").read_text())["working"]}


PARTS = {"archive": part_archive, "evaluate": part_evaluate, "validate": part_validate, "protect": part_protect}


def render(results: Path) -> None:
    runs = Journal(results / "folders_cpu.jsonl").records()
    rows = [[r["part"], r["built"]["files"], r["wall_s"], r["peak_rss_mib"], _outcome(r), r["date"][:16], r["commit"]]
            for r in runs]
    commands = "\n".join(f"- {r['part']}: `{r['command']}`" + (f" (child: `{r.get('protect_command') or r.get('evaluate_command')}`)"
                                                                if r.get("protect_command") or r.get("evaluate_command") else "")
                         for r in runs)
    text = ("# Image folders as owners hold them (issue 28)\n\n"
            f"Machine: {runs[-1]['cpu_model']}, {runs[-1]['machine']}\n\n"
            f"{markdown_table(['part', 'files', 'wall s', 'peak RSS MiB', 'outcome', 'date', 'commit'], rows)}\n\n"
            "Wall time and peak RSS of the child process (`/usr/bin/time -v`, which includes importing torch, about\n"
            "0.9 GiB); folders built from MedMNIST images (BloodMNIST, some converted to gray, resized to the sizes\n"
            "listed, JPEG at quality 95 or PNG, `Training/<class>/` + `Testing/<class>/`, a train image copied into\n"
            "`Testing/`, a `.DS_Store`). validate: `load_folder` alone (scan, decode each file once, hashes,\n"
            "duplicate search); its peak does not grow with the number of files. protect: the whole `medshield\n"
            "protect` (validation, SALM with the `cpu` preset at the `steps` shown, writing each file at its own\n"
            "size, reading it back, bounds, sealing); a `--steps` below the preset's 300 keeps the run short on 2\n"
            "shared cores and is named, not hidden. JPEG files are re-encoded at quality 100, so their L-inf\n"
            "exceeds 8 (the manifest records it as lossy; `--jpeg-as-png` keeps the bound); PNG files hold it.\n\n"
            f"Commands:\n\n{commands}\n")
    write_markdown(results / "folders_cpu.md", text)


def _outcome(r: dict) -> str:
    if r["part"] == "evaluate":
        return (f"clean {100 * r['clean_accuracy']:.1f} %, release {100 * r['protected_accuracy']:.1f} % "
                f"(working {r['working']['size']} px)")
    if r["part"] == "archive":
        return (f"restored {r['restored_pixel_identical']} pixel-identical; L-inf PNG {r['linf_png']}, JPEG incl. "
                f"{r['linf_all']}; leaks {r['duplicates']['held_out_images_in_train']}")
    if r["part"] == "protect":
        return (f"steps {r.get('steps') or 'preset'}; working {r['working']['size']} px; L-inf {r['measured']['linf']}; "
                f"generation {r['generation_seconds']} s")
    return f"sizes {r['built']['sizes']}; {r['stdout'].strip()}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=list(PARTS))
    parser.add_argument("--n", type=int, default=7000, help="files for validate/protect (7000)")
    parser.add_argument("--steps", type=int, help="protect: source steps (default: the cpu preset's 300)")
    parser.add_argument("--work", type=Path, help="folder for data and releases (default: a temporary one, removed)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    work = args.work.resolve() if args.work else Path(tempfile.mkdtemp(prefix="medshield-folders-"))
    ctx = context()
    try:
        work.mkdir(parents=True, exist_ok=True)
        record = {**ctx, "cpu_model": cpu_model(), "part": args.part, "n": args.n, "steps": args.steps, **PARTS[args.part](work, args)}
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    args.results.mkdir(parents=True, exist_ok=True)
    Journal(args.results / "folders_cpu.jsonl").append(record)
    write_json(args.results / "folders_cpu.json", Journal(args.results / "folders_cpu.jsonl").records())
    render(args.results)
    print(json.dumps({k: v for k, v in record.items() if k not in ("log", "machine")}, indent=1)[:3000])


if __name__ == "__main__":
    main()
