"""Quick probe on a slice of a MedMNIST train split: protect, then clean vs protected victims.

    python benchmarks/slice_probe.py N STEPS EPOCHS OPTIMIZER LR DATASET '{"k": 0.3}'

For example ``300 60 40 adam 0.001 breastmnist '{"k": 0.3}'`` is the end-to-end test's setting.
SALM source width 8, batch 64, seed 1; victim width 8, no weight decay. One line to stdout.
Used to pick the end-to-end test's settings and to see how protection depends on K at small
budgets (README, "The mask").
"""
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _common import data_root
from medshield import pipeline

torch.set_num_threads(1)
n, steps, epochs, optimizer, lr = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
flag = sys.argv[6] if len(sys.argv) > 6 else "breastmnist"
extra = json.loads(sys.argv[7]) if len(sys.argv) > 7 else {}
with tempfile.TemporaryDirectory() as tmp, np.load(data_root() / f"{flag}.npz", allow_pickle=False) as npz:
    arrays = {k: npz[k] for k in npz.files}
    arrays["train_images"], arrays["train_labels"] = arrays["train_images"][:n], arrays["train_labels"][:n]
    source = Path(tmp) / f"{flag}.npz"
    np.savez(source, **arrays)
    start = time.time()
    pipeline.protect(str(source), Path(tmp) / "release", params={"steps": steps, "width": 8, "batch_size": 64, **extra},
                     seed=1, progress=False)
    generation = time.time() - start
    report = pipeline.evaluate(str(Path(tmp) / "release"), recipe={"width": 8, "epochs": epochs, "optimizer": optimizer,
                               "lr": lr, "weight_decay": 0.0}, seed=1, compare=True, progress=False)
print(json.dumps({"args": sys.argv[1:], "generation_s": round(generation), "protected": report["test_accuracy"],
                  "clean": report["clean"]["test_accuracy"], "protected_peak": report["peak_test_accuracy"],
                  "clean_peak": report["clean"]["peak_test_accuracy"], "majority_floor": report["majority_floor"]}))
