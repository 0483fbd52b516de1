"""Classification metrics for victims (task-aware, after medmnist's evaluator)."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import balanced_accuracy_score, roc_auc_score


def majority_floor(labels: np.ndarray) -> float:
    """Test accuracy of always predicting the most frequent test class."""
    return float(np.bincount(labels).max() / len(labels))


def classification_metrics(labels: np.ndarray, probs: np.ndarray) -> dict:
    """Accuracy, balanced accuracy and AUC (binary: P(class 1); multi-class: one-vs-rest macro).

    AUC is NaN when the test labels hold a single class (it is undefined there).
    """
    predictions = probs.argmax(axis=1)
    present = np.unique(labels)
    if len(present) < 2:
        auc = float("nan")
    else:
        # Classes absent from the test labels cannot enter a one-vs-rest average.
        columns = probs[:, present] / probs[:, present].sum(axis=1, keepdims=True)
        if len(present) == 2:
            auc = float(roc_auc_score(labels == present[1], columns[:, 1]))
        else:
            auc = float(roc_auc_score(labels, columns, multi_class="ovr", labels=present))
    return {
        "test_accuracy": float((predictions == labels).mean()),
        "balanced_accuracy": float(balanced_accuracy_score(labels, predictions)),
        "auc": auc,
        "majority_floor": majority_floor(labels),
        "per_class_accuracy": {int(c): float((predictions[labels == c] == c).mean()) for c in present},
        "per_class_count": {int(c): int((labels == c).sum()) for c in present},
    }
