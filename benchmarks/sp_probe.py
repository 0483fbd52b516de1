"""Why does SP protect so little at 28 px? Properties of the SP noise itself, no victim training.

    python benchmarks/sp_probe.py [--dataset bloodmnist] [--train 6000]

For the dataset's train labels, the SP perturbations (cpu = paper settings: SP has no model) are
measured: their energy (RMS per value, against the reference's L2 = 1.0 on 32 x 32 x 3 images,
an RMS of 1/sqrt(3072) = 4.6/255), and how separable the classes are from the noise alone, by a
linear probe (scikit-learn logistic regression) trained on ``--train`` noises and tested on the
rest, before and after the victim's flip + crop (pad 4). If the noise alone stays separable after
the victim's augmentation, the victim *could* learn the shortcut; whether it prefers it to the
image's own features is what the frontier's SP cells measure (benchmarks/frontier_cpu.py).
Writes results/sp_probe.md/.json.

Imports ``medshield.models.augment`` beyond the public ``medshield``: it applies the victim's own
flip + crop to the noise alone, a transformation no public call runs outside training.
"""
from __future__ import annotations

import argparse
import math

import torch
from sklearn.linear_model import LogisticRegression

from common import RESULTS, context, data_root, write_json, write_markdown
from medshield import create_protection, load
from medshield.models.augment import TRANSFORMS


def sp_noise(data, patch_size=None) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.from_numpy(data.labels("train"))
    images = data.images("train")
    shape = (len(labels), images.shape[-1] if images.ndim == 4 else 1, *images.shape[1:3])
    deltas = torch.zeros(shape)

    class Shape:  # SP reads only the shape of the images
        pass

    x = Shape()
    x.shape = shape
    sp = create_protection("sp", patch_size=patch_size)
    for index, delta in sp._perturb(x, labels, None, num_classes=data.num_classes, generator=torch.Generator().manual_seed(0), progress=False):
        deltas[index] = delta
    return deltas, labels


def probe(z: torch.Tensor, y: torch.Tensor, n: int) -> float:
    flat = z.flatten(1).numpy()
    return float(LogisticRegression(max_iter=300).fit(flat[:n], y[:n].numpy()).score(flat[n:], y[n:].numpy()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="bloodmnist")
    parser.add_argument("--train", type=int, default=6000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load(args.dataset, str(data_root()))
    rows = []
    for patch in (None, 4, 14):
        deltas, labels = sp_noise(data, patch)
        augmented = TRANSFORMS["flip-crop"](deltas + 0.5, torch.Generator().manual_seed(1)) - 0.5
        rows.append({"patch_size": patch or "default (size/4)", "rms_x255": 255 * float(deltas.pow(2).mean().sqrt()),
                     "max_x255": 255 * float(deltas.abs().max()), "probe_plain": probe(deltas, labels, args.train),
                     "probe_flip_crop": probe(augmented, labels, args.train)})
    record = {**context(), "dataset": args.dataset, "train": args.train, "reference_rms_x255": 255 / math.sqrt(3072), "rows": rows}
    write_json(RESULTS / "sp_probe.json", record)
    lines = [f"# SP noise alone: energy and linear separability ({args.dataset})", "",
             f"Command: `{record['command']}` (commit {record['commit']}, {record['date']}); machine {record['machine']}", "",
             f"Reference energy: L2 = 1.0 on 32 x 32 x 3 is an RMS of {record['reference_rms_x255']:.1f}/255 per value.", "",
             "| patch | RMS (/255) | max (/255) | probe acc, noise as released | probe acc, after flip + crop |", "|---|---|---|---|---|"]
    lines += [f"| {r['patch_size']} | {r['rms_x255']:.1f} | {r['max_x255']:.1f} | {100 * r['probe_plain']:.1f} % | "
              f"{100 * r['probe_flip_crop']:.1f} % |" for r in rows]
    write_markdown(RESULTS / "sp_probe.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
