"""Probe: would SALM protect more if every image of a class carried the *same* sparse noise?

    python benchmarks/salm_classwise_probe.py [--subset 4000] [--threads 2]

Not a product option: a subclass of SALM with per-class mask ranking (``mask_scope="class"``)
and one noise per class (EM's class-wise update: the mean of the batch's per-sample results).
It uses the same data, source steps and victim as ``salm_mask_variants.py`` (BloodMNIST subset,
150 steps, width 16, 8 victim epochs), so its row compares with that table. It appends its record
to results/salm_classwise_probe.jsonl.

Imports ``medshield.protect.em``/``.salm`` beyond the public ``medshield``: the probe subclasses
the SALM class and borrows EM's class-wise noise storage, which no public call exposes.
"""
from __future__ import annotations

import argparse

import torch

from common import RESULTS, context, data_root
from medshield import Journal, Recipe, load, pixel_change, train_victim
from medshield.protect.em import EM
from medshield.protect.salm import SALM


class ClassWiseSALM(SALM):
    """SALM whose noise is stored once per class (EM's class-wise load/store); no random start:
    the class noise starts at 0."""

    name = "salm-classwise-probe"
    mode = "class"  # EM's _load/_store read it; fixed here, so their sample-wise branch never runs
    _load = EM._load
    _store = EM._store

    def _init_noise(self, x, y, num_classes, generator):
        self._labels = y
        self._class_scores = torch.zeros((num_classes, *x.shape[-2:]), device=y.device)
        self._class_noise = torch.zeros((num_classes, *x.shape[1:]), device=x.device)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subset", type=int, default=4000)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load("bloodmnist", data_root()).train_subset(args.subset, seed=args.seed)
    protection = ClassWiseSALM(steps=args.steps, width=16, mask="fixed", mask_scope="class")
    result = protection.protect(data, seed=args.seed, progress=False)
    victim = train_victim(data.with_train(result.images), data, Recipe(width=16, epochs=8, iterations=None),
                          seed=args.seed, progress=False)
    record = {"variant": "class-wise noise + class mask", **context(), "train_images": len(result.images),
              "params": result.params, "generation_s": round(result.seconds, 1),
              "change": pixel_change(data.images("train"), result.images),
              **{k: victim[k] for k in ("test_accuracy", "peak_test_accuracy", "balanced_accuracy", "majority_floor")}}
    Journal(RESULTS / "salm_classwise_probe.jsonl").append(record)
    print(record["variant"], record["test_accuracy"], record["generation_s"], flush=True)


if __name__ == "__main__":
    main()
