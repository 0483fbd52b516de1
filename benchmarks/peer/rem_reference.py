"""REM's reference code (github.com/fshp971/robust-unlearnable-examples) run in place on our data.

Its generation script, ``generate_robust_em.py``, is written for CIFAR-10 (downloaded by torchvision)
and CUDA. This adapter imports it from an extracted checkout and runs its own ``main(args, logger)``,
with its own argument parser, ``RobustMinimaxPGDDefender``, ``PGDAttacker``, ResNet-18 and training
step, on images handed over as arrays. It edits none of their files; at run time it replaces, on
their modules:

* ``utils.get_indexed_tensor_loader`` / ``utils.get_indexed_loader`` (which would download
  CIFAR-10): their own ``Loader`` over their own ``IndexedTensorDataset`` of our arrays, with
  ``num_workers=0`` (their default 4 would start 4 worker processes on a 2-core machine);
* ``utils.get_arch``: their ``models.resnet18`` with our channels and classes (theirs are looked up
  by dataset name);
* ``utils.get_transforms``: their CIFAR transformation (per-image flip, crop with 4 px of padding,
  normalize to [-0.5, 0.5]) with the crop size set to our image size;
* ``numpy`` as their script sees it: ``np.zeros`` of their CIFAR noise shape (N, 3, 32, 32),
  written per dataset name, gives our (N, C, H, W).

The device needs no patch: their ``--cpu`` flag keeps every tensor on the CPU. ``cv2`` (imported for
the low-pass filters of their training script, never called by generation) is stubbed when absent.
"""
from __future__ import annotations

import importlib
import logging
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import torch

THEIR_MODULES = ("generate_robust_em", "utils", "attacks", "models")  # top-level names their code imports


def snapshot(git_dir: Path, dest_root: Path) -> dict:
    """The snapshot's commit, extracted once (``git archive | tar -x``) into ``dest_root/rem-peer-<commit>``."""
    commit = subprocess.run(["git", f"--git-dir={git_dir}", "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    dest = dest_root / f"rem-peer-{commit[:12]}"
    command = f"mkdir -p {dest} && git --git-dir={git_dir} archive {commit} | tar -x -C {dest}"
    if not (dest / "generate_robust_em.py").exists():
        subprocess.run(command, shell=True, check=True)
    return {"commit": commit, "checkout": str(dest), "extract_command": command}


def _import(checkout: Path):
    clash = [name for name in THEIR_MODULES if name in sys.modules
             and not str(getattr(sys.modules[name], "__file__", "")).startswith(str(checkout))]
    if clash:
        raise RuntimeError(f"top-level module(s) {', '.join(clash)} already imported from elsewhere: "
                           "their code needs these names")
    try:
        importlib.import_module("cv2")
    except ImportError:
        sys.modules["cv2"] = types.ModuleType("cv2")  # only their training script's low-pass filters call it
    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    import generate_robust_em  # noqa: E402  (their script; importing it runs nothing)

    return generate_robust_em


def network(checkout: Path, channels: int, num_classes: int) -> torch.nn.Module:
    """Their ResNet-18 (base width 64, fixed in their code) for our channels and classes."""
    _import(checkout)
    return sys.modules["models"].resnet18(channels, num_classes)  # their models package, imported by their utils


class _Numpy:
    """numpy as their script sees it, except that their CIFAR noise array gets our image shape."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape

    def __getattr__(self, name):
        return getattr(np, name)

    def zeros(self, shape, dtype=float):
        if len(shape) == 4 and tuple(shape[1:]) == (3, 32, 32):
            shape = (shape[0], *self.shape)
        return np.zeros(shape, dtype=dtype)


def flags(knobs: dict, steps: int, save_dir: str) -> list[str]:
    """Their command line (gen_rem.sh's flags) at our knobs; radii and step sizes in 1/255 as they take them."""
    never = str(10**9)  # no evaluation on the test split, no checkpoint, inside the run
    return ["--arch", "resnet18", "--dataset", "cifar10", "--train-steps", str(steps),
            "--batch-size", str(knobs["batch_size"]), "--optim", "sgd", "--lr", str(knobs["lr"]),
            "--lr-decay-rate", "0.1", "--lr-decay-freq", "2000", "--weight-decay", str(knobs["weight_decay"]),
            "--momentum", str(knobs["momentum"]),
            "--pgd-radius", f"{255 * knobs['eps']:g}", "--pgd-steps", str(knobs["pgd_steps"]),
            "--pgd-step-size", f"{255 * knobs['step_size']:g}", "--pgd-random-start",
            "--atk-pgd-radius", f"{255 * knobs['adv_eps']:g}", "--atk-pgd-steps", str(knobs["adv_steps"]),
            "--atk-pgd-step-size", f"{255 * knobs['adv_step_size']:g}", "--atk-pgd-random-start",
            "--samp-num", str(knobs["samples"]), "--report-freq", never, "--save-freq", never,
            "--cpu", "--save-dir", save_dir, "--save-name", "rem"]


def run(checkout: Path, images: np.ndarray, labels: np.ndarray, knobs: dict, *, steps: int, seed: int = 0) -> None:
    """Their ``main`` on ``images`` (N, H, W[, C] uint8, as MedMNIST stores them) and ``labels`` (N,) for
    ``steps`` source steps, with ``flags(knobs, steps, ...)``. Their loop ends with a final pass over every
    image (``regenerate_def_noise``): the caller stops it from an optimizer-step hook after the last timed step."""
    gen = _import(checkout)
    utils = gen.utils
    if images.ndim == 3:
        images = images[..., None]
    n, height, width, channels = images.shape
    num_classes = int(labels.max()) + 1
    their_transforms = utils.get_transforms

    def loader(dataset, batch_size, root="./data", train=True):
        data = utils.IndexedTensorDataset(x=images, y=labels.astype(np.int64))
        return utils.Loader(data, batch_size=batch_size, shuffle=train, drop_last=train, num_workers=0)

    def transforms(dataset, train=True, is_tensor=True):
        composed = their_transforms("cifar10", train=train, is_tensor=is_tensor)
        for t in composed.trans.transforms:
            if type(t).__name__ == "RandomCrop":
                t.size, t.padding = (height, width), max(1, round(min(height, width) / 8))  # 4 px at 28 and at 32
            if type(t).__name__ == "Normalize":
                t.mean, t.std = (255 * 0.5,) * channels, (255.0,) * channels
        return composed

    utils.get_indexed_tensor_loader = lambda dataset, batch_size, root="./data", train=True: loader(dataset, batch_size)
    utils.get_indexed_loader = lambda dataset, batch_size, root="./data", train=True: loader(dataset, batch_size, train=False)
    utils.get_arch = lambda arch, dataset: network(checkout, channels, num_classes)
    utils.get_transforms = transforms
    gen.np = _Numpy((channels, height, width))
    torch.manual_seed(seed)
    np.random.seed(seed)
    with tempfile.TemporaryDirectory() as save_dir:
        argv = flags(knobs, steps, save_dir)
        saved_argv, sys.argv = sys.argv, ["generate_robust_em.py", *argv]
        try:
            args = gen.get_args()
        finally:
            sys.argv = saved_argv
        logger = logging.getLogger("rem-reference")
        gen.main(args, logger)
