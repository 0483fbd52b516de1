"""Quick probe on a slice of a MedMNIST train split: protect, then clean vs protected victims.

    python benchmarks/slice_probe.py N STEPS EPOCHS OPTIMIZER LR DATASET '{"k": 0.3}'

For example ``300 60 40 adam 0.001 breastmnist '{"k": 0.3}'`` is the end-to-end test's setting.
SALM source width 8, batch 64, seed 1; victim width 8, no weight decay. One line to stdout.
Used to pick the end-to-end test's settings and to see how protection depends on K at small
budgets (README, "The mask").
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from common import data_root
from medshield import pipeline


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, help="train images kept (the first N)")
    parser.add_argument("steps", type=int, help="SALM source steps")
    parser.add_argument("epochs", type=int, help="victim epochs")
    parser.add_argument("optimizer", help="victim optimizer (sgd, adam)")
    parser.add_argument("lr", type=float, help="victim learning rate")
    parser.add_argument("flag", nargs="?", default="breastmnist", help="MedMNIST flag")
    parser.add_argument("extra", nargs="?", type=json.loads, default={}, help="SALM parameters as JSON")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp, np.load(data_root() / f"{args.flag}.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
        arrays["train_images"], arrays["train_labels"] = arrays["train_images"][:args.n], arrays["train_labels"][:args.n]
        source = Path(tmp) / f"{args.flag}.npz"
        np.savez(source, **arrays)
        start = time.time()
        pipeline.protect(str(source), Path(tmp) / "release",
                         params={"steps": args.steps, "width": 8, "batch_size": 64, **args.extra}, seed=1, progress=False)
        generation = time.time() - start
        report = pipeline.evaluate(str(Path(tmp) / "release"), recipe={"width": 8, "epochs": args.epochs, "optimizer": args.optimizer,
                                   "lr": args.lr, "weight_decay": 0.0}, seed=1, compare=True, progress=False)
    print(json.dumps({"args": sys.argv[1:], "generation_s": round(generation), "protected": report["test_accuracy"],
                      "clean": report["clean"]["test_accuracy"], "protected_peak": report["peak_test_accuracy"],
                      "clean_peak": report["clean"]["peak_test_accuracy"], "majority_floor": report["majority_floor"]}))


if __name__ == "__main__":
    main()
