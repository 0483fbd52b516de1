"""Figures a data owner looks at before publishing (matplotlib, PNG).

- ``comparison_grid``: original / perturbation (amplified, diverging colour scale in pixel
  values) / protected, a few images per class (paper Fig. 3, 8, 9).
- ``perturbation_map``: where the budget went: how often each position changed, and the share
  of changed positions inside the foreground (Otsu segmentation) against the foreground's share
  of the image.
- ``learning_curves``: train and test accuracy per epoch of victims trained on clean vs
  protected data (paper Fig. 2 left).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..evaluate.utility import segment  # noqa: E402


def _show(ax, image, **kwargs):
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255, **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])


def pick_examples(labels: np.ndarray, per_class: int, seed: int = 0) -> list[int]:
    rng = np.random.default_rng(seed)
    picks = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        picks += sorted(rng.choice(members, size=min(per_class, len(members)), replace=False).tolist())
    return picks


def comparison_grid(original, released, labels, path: Path, *, per_class: int = 2, label_names=None, seed: int = 0) -> Path:
    index = pick_examples(np.asarray(labels).reshape(-1), per_class, seed)
    diff = released.astype(np.int32) - original.astype(np.int32)
    bound = max(1, int(np.abs(diff[index]).max()))
    fig, axes = plt.subplots(len(index), 3, figsize=(6, 2 * len(index)), squeeze=False)
    for row, i in enumerate(index):
        _show(axes[row, 0], original[i])
        shown = diff[i] if diff[i].ndim == 2 else diff[i].mean(axis=-1)
        im = axes[row, 1].imshow(shown, cmap="RdBu_r", vmin=-bound, vmax=bound)
        axes[row, 1].set_xticks([])
        axes[row, 1].set_yticks([])
        _show(axes[row, 2], released[i])
        name = label_names.get(str(int(labels[i])), str(int(labels[i]))) if label_names else str(int(labels[i]))
        axes[row, 0].set_ylabel(f"#{i}\n{name[:18]}", fontsize=7)
    for ax, title in zip(axes[0], ("original", "perturbation (pixel values)", "protected")):
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=axes[:, :].ravel().tolist(), orientation="horizontal", fraction=0.04, pad=0.02,
                 label="released - original (pixel values)")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def foreground_share(original: np.ndarray, released: np.ndarray) -> dict[str, float]:
    """Share of changed positions that fall in the foreground, and the foreground's share of area."""
    changed = released != original
    if changed.ndim == 4:
        changed = changed.any(axis=-1)
    foreground = np.stack([segment(image) for image in original])
    total = changed.sum()
    return {
        "changed_in_foreground": float((changed & foreground).sum() / total) if total else 0.0,
        "foreground_area": float(foreground.mean()),
    }


def perturbation_map(original, released, path: Path) -> tuple[Path, dict]:
    changed = released != original
    if changed.ndim == 4:
        changed = changed.any(axis=-1)
    frequency = changed.mean(axis=0)
    share = foreground_share(original, released)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
    im = axes[0].imshow(frequency, cmap="magma", vmin=0)
    axes[0].set_title("how often each position changed", fontsize=9)
    axes[0].set_xticks([])
    axes[0].set_yticks([])
    fig.colorbar(im, ax=axes[0], shrink=0.8, label="fraction of images")
    axes[1].bar(["foreground area", "changes in foreground"], [100 * share["foreground_area"], 100 * share["changed_in_foreground"]],
                color=["#999999", "#c0392b"])
    axes[1].set_ylim(0, 100)
    axes[1].set_ylabel("%")
    axes[1].set_title("budget inside the foreground (Otsu)", fontsize=9)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path, share


def learning_curves(evaluation: dict, path: Path) -> Path:
    runs = {"protected": evaluation}
    if "clean" in evaluation:
        runs["clean"] = evaluation["clean"]
    fig, ax = plt.subplots(figsize=(6, 3.4))
    colours = {"protected": "#c0392b", "clean": "#2471a3"}
    for label, run in runs.items():
        epochs = [h["epoch"] for h in run["history"]]
        ax.plot(epochs, [100 * h["train_accuracy"] for h in run["history"]], "--", color=colours[label], label=f"{label}: train")
        ax.plot(epochs, [100 * h["test_accuracy"] for h in run["history"]], "-", color=colours[label], label=f"{label}: test")
    ax.axhline(100 * evaluation["majority_floor"], color="#777777", lw=0.8, label="majority floor")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy %")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"victim {evaluation['recipe']['arch']} trained on clean vs protected data", fontsize=9)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
