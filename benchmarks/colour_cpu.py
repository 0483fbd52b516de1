"""How visible each release's change is: mean colour difference (CIEDE2000) beside SSIM and PSNR.

    python benchmarks/colour_cpu.py [--dataset bloodmnist] [--random 8,20]

The utility rule reads SSIM, which weighs a smooth per-image tint lightly; CIEDE2000 (definitions in
src/medshield/evaluate/utility.py) does not. This measures the releases other benchmarks left on
disk (robust_grid.py's results/runs/robust/release_<dataset>_<setting>_<seed>.npy, budget_cpu.py's
results/runs/budget_<method>_<budget>) against the originals, and makes uniform random noise at the
``--random`` radii (/255, no network: seconds) as the reference for dense noise of a known size.
Writes results/colour_cpu.md and .json (one record per release, replaced on every run).
"""
from __future__ import annotations

import argparse

import numpy as np

from common import RESULTS, context, cpu_model, data_root, write_json, write_markdown
from medshield import create_protection, load, open_dataset, utility_report
from medshield.report import markdown_table

MEASURES = ("ssim", "psnr", "delta_e", "linf", "l0")
RUNS = RESULTS / "runs"


def saved_releases(dataset: str) -> list[tuple[str, np.ndarray]]:
    """(name, train images) of every release the grid and the budget curve left for ``dataset``."""
    found = [(path.stem.removeprefix(f"release_{dataset}_"), np.load(path))
             for path in sorted((RUNS / "robust").glob(f"release_{dataset}_*.npy")) if ".partial" not in path.name]
    for folder in sorted(RUNS.glob("budget_*")):
        data, release = open_dataset(str(folder)) if folder.is_dir() else (None, None)
        if release is not None and data.name == dataset:
            found.append((f"{folder.name} (eps={round(255 * release.manifest['params']['eps'])})", data.images("train")))
    return found


def measure(name: str, original: np.ndarray, released: np.ndarray) -> dict:
    overall = utility_report(original, released, names=MEASURES)["overall"]
    return {"release": name, **{k: overall[k]["mean"] for k in MEASURES},
            "delta_e_worst_5pct": overall["delta_e"]["worst_5pct"]}


def write(records: list[dict], ctx: dict) -> None:
    write_json(RESULTS / "colour_cpu.json", [{**r, **ctx} for r in records])
    rows = [[r["dataset"], r["release"], f"{r['ssim']:.1f}", f"{r['psnr']:.1f}", f"{r['delta_e']:.2f}",
             f"{r['delta_e_worst_5pct']:.2f}", f"{r['linf']:.0f}", f"{100 * r['l0']:.1f}"] for r in records]
    text = (f"# How visible the change is: colour difference beside SSIM\n\n"
            f"Command: `{ctx['command']}` (commit {ctx['commit']}); {ctx['date']}; CPU {cpu_model()}\n\n"
            "Mean over every train image against its original: SSIM % and PSNR dB as the utility rule reads\n"
            "them; CIEDE2000 (skimage `deltaE_ciede2000` on CIELAB, mean over pixels; about 1 is the smallest\n"
            "difference a viewer notices side by side, and its worst 5 % is the 95th percentile over images);\n"
            "L-inf in pixel values; L0 = % of positions changed. Releases: the defense grid's and the budget\n"
            "curve's, as they lay on disk (settings and seeds in their names), and uniform random noise.\n\n"
            + markdown_table(["dataset", "release", "SSIM %", "PSNR dB", "CIEDE2000", "CIEDE2000 worst 5 %",
                              "L-inf", "L0 %"], rows) + "\n")
    write_markdown(RESULTS / "colour_cpu.md", text, keep=("## Notes",))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="bloodmnist")
    parser.add_argument("--random", default="8,20", help="radii (/255) of the random-noise references")
    args = parser.parse_args()
    ctx = context()
    data = load(args.dataset, root=str(data_root()))
    original = data.images("train")
    releases = [(f"random eps={r}", create_protection("random", eps=float(r) / 255).protect(data, seed=0, progress=False).images)
                for r in filter(None, args.random.split(","))] + saved_releases(args.dataset)
    records = [{"dataset": args.dataset, **measure(name, original, images)} for name, images in releases]
    for record in records:
        print(record["release"], f"SSIM {record['ssim']:.1f}", f"CIEDE2000 {record['delta_e']:.2f}", flush=True)
    write(records, ctx)


if __name__ == "__main__":
    main()
