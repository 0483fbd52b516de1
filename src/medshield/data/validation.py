"""Checks that run before any work, so bad files fail in one line instead of mid-training."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError

REQUIRED = ("train_images", "train_labels", "test_images", "test_labels")
SUPPORTED_TASKS = ("multi-class", "binary-class", "ordinal-regression")


def validate_arrays(arrays: dict[str, np.ndarray], *, path: Path, task: str, num_classes: int | None) -> int:
    """Validate MedMNIST-layout arrays and return the number of classes.

    Requires train and test splits (val optional, but images and labels come in pairs); uint8
    images of one shape, (N, H, W) or (N, H, W, C) with C in {1, 3}; one integer label per image
    in [0, num_classes). ``num_classes`` is taken from MedMNIST's metadata for known flags and
    inferred as ``max(label) + 1`` otherwise.
    """
    where = str(path)
    if task not in SUPPORTED_TASKS:
        raise InputError(
            f"{where}: task {task!r} is not supported (one label per image is needed: {', '.join(SUPPORTED_TASKS)})"
        )
    missing = [key for key in REQUIRED if key not in arrays]
    if missing:
        raise InputError(f"{where}: missing key(s) {', '.join(missing)}; a MedMNIST-layout .npz needs {', '.join(REQUIRED)}")
    if ("val_images" in arrays) != ("val_labels" in arrays):
        raise InputError(f"{where}: val_images and val_labels must both be present or both absent")
    splits = [s for s in ("train", "val", "test") if f"{s}_images" in arrays]
    shape = None
    max_label = -1
    for split in splits:
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        key = f"{split}_images"
        if images.dtype != np.uint8:
            raise InputError(f"{where}: {key} has dtype {images.dtype}; expected uint8 pixels in 0..255")
        if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3)):
            raise InputError(
                f"{where}: {key} has shape {images.shape}; expected (N, H, W) or (N, H, W, C) with 1 or 3 channels"
            )
        if len(images) == 0:
            raise InputError(f"{where}: {key} is empty; every split needs at least one image")
        if shape is None:
            shape = images.shape[1:]
        elif images.shape[1:] != shape:
            raise InputError(f"{where}: {key} has image shape {images.shape[1:]} but train_images has {shape}")
        key = f"{split}_labels"
        if labels.ndim == 2 and labels.shape[1] != 1:
            raise InputError(
                f"{where}: {key} has shape {labels.shape}; multi-label data is not supported (one class per image)"
            )
        if labels.ndim not in (1, 2) or len(labels) != len(images):
            raise InputError(
                f"{where}: {key} has shape {labels.shape} for {len(images)} images; expected ({len(images)},) or ({len(images)}, 1)"
            )
        if not np.issubdtype(labels.dtype, np.integer):
            raise InputError(f"{where}: {key} has dtype {labels.dtype}; expected integer class indices")
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or (num_classes is not None and high >= num_classes):
            allowed = f"0..{num_classes - 1}" if num_classes is not None else "0 or more"
            raise InputError(f"{where}: {key} holds values {low}..{high}; expected class indices {allowed}")
        max_label = max(max_label, high)
    unseen = {split: sorted(set(np.unique(arrays[f"{split}_labels"]).tolist()) - set(np.unique(arrays["train_labels"]).tolist()))
              for split in splits if split != "train"}
    for split, labels in unseen.items():
        if labels:
            raise InputError(f"{where}: {split}_labels hold class(es) {labels} that never occur in train_labels; the "
                             "splits must describe one task (check the label encoding of each split)")
    # One class in train is allowed here: protect then asks for --support, evaluate refuses it.
    return num_classes if num_classes is not None else max_label + 1
