"""The SALM paper's Table 5 (image similarity per method) on the cpu-preset releases.

    python benchmarks/utility_cpu.py [--datasets bloodmnist,pneumoniamnist] [--preset cpu]

Reads the releases the other benchmarks wrote (results/runs/salm_<preset>_<flag> for SALM,
results/runs/table1_<preset>_<flag>_<method> for EM, TAP, SP and Random; run salm_cpu.py and
table1.py first) and measures each against its original with ``medshield.release_utility``
(definitions in src/medshield/evaluate/utility.py). Writes results/utility_<preset>.md and .json.
"""
from __future__ import annotations

import argparse
import time

from common import RESULTS, context, write_json, write_markdown
from medshield import release_utility
from medshield.report import TABLE5_UTILITY, markdown_table

METHODS = ("salm", "em", "tap", "sp", "random")
PAPER = TABLE5_UTILITY
PAPER_COLUMNS = ("ssim", "ahash", "phash", "dhash", "nmi")
OURS = PAPER_COLUMNS + ("psnr", "segmentation_agreement", "l0")


def release_dir(flag: str, method: str, preset: str):
    name = f"salm_{preset}_{flag}" if method == "salm" else f"table1_{preset}_{flag}_{method}"
    return RESULTS / "runs" / name


def write(records: list[dict], missing: list[str], ctx: dict, preset: str) -> None:
    write_json(RESULTS / f"utility_{preset}.json", records)
    rows = []
    for r in records:
        ours = [f"{(100 if k == 'l0' else 1) * r['overall'][k]['mean']:.1f}" for k in OURS]
        worst = f"{r['overall']['ssim']['worst_5pct']:.1f}"
        paper = PAPER.get(r["method"])
        paper_cells = [f"{paper[k]:.1f}" for k in PAPER_COLUMNS] if paper else ["-"] * len(PAPER_COLUMNS)
        rows.append([r["dataset"], r["method"].upper() if r["method"] != "random" else "Random", *ours, worst,
                     " / ".join(paper_cells)])
    headers = ["dataset", "method", "SSIM", "aHash", "pHash", "dHash", "NMI", "PSNR dB", "seg. agreement", "L0 %",
               "SSIM worst 5 %", "paper SSIM / aHash / pHash / dHash / NMI"]
    text = (
        f"# Image similarity per method (paper Table 5 layout) at the `{preset}` preset\n\n"
        f"Command: `{ctx['command']}` (commit {ctx['commit']}); date {ctx['date']}\n\n"
        f"Machine: {ctx['machine']}\n\n"
        "Mean over every released train image against its original, in % (PSNR in dB; L0 = % of pixel\n"
        "positions changed). Definitions: SSIM 7x7 uniform window, data range 255; hashes from ImageHash with\n"
        "hash size 8, similarity = 1 - Hamming/64; NMI = I(A;B)/H(A,B) from scikit-image's NMI with 256\n"
        "bins; segmentation agreement = % of pixels with the same Otsu + opening label. The paper's row\n"
        "(its Table 5, dataset not stated, radius 8/255) is beside each method; Random is not in the paper.\n\n"
        f"{markdown_table(headers, rows)}\n"
        + ("\nNot measured (release missing): " + ", ".join(missing) + "\n" if missing else "")
    )
    write_markdown(RESULTS / f"utility_{preset}.md", text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="bloodmnist,pneumoniamnist")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--preset", default="cpu")
    args = parser.parse_args()
    ctx = context()
    records, missing = [], []
    for flag in args.datasets.split(","):
        for method in args.methods.split(","):
            path = release_dir(flag, method, args.preset)
            if not (path / "manifest.json").exists():
                missing.append(f"{flag}/{method} ({path.name})")
                continue
            start = time.perf_counter()
            report = release_utility(str(path))
            records.append({**report, "release": path.name, "preset": args.preset, "seconds": round(time.perf_counter() - start, 1), **ctx})
            write(records, missing, ctx, args.preset)
            print(flag, method, f"SSIM {report['overall']['ssim']['mean']:.2f}", flush=True)
    write(records, missing, ctx, args.preset)


if __name__ == "__main__":
    main()
