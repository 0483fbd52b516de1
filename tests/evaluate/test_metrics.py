import numpy as np
import pytest

from medshield.evaluate import classification_metrics, majority_floor


def test_perfect_binary():
    labels = np.array([0, 1, 1, 0])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]])
    m = classification_metrics(labels, probs)
    assert m == {"test_accuracy": 1.0, "balanced_accuracy": 1.0, "auc": 1.0, "majority_floor": 0.5,
                 "per_class_accuracy": {0: 1.0, 1: 1.0}, "per_class_count": {0: 2, 1: 2}}


def test_constant_predictor_sits_on_the_floor():
    labels = np.array([0, 0, 0, 1, 2])
    probs = np.tile([0.6, 0.3, 0.1], (5, 1))
    m = classification_metrics(labels, probs)
    assert m["test_accuracy"] == pytest.approx(0.6) == m["majority_floor"]
    assert m["balanced_accuracy"] == pytest.approx(1 / 3)
    assert m["auc"] == pytest.approx(0.5)


def test_multiclass_auc_skips_classes_absent_from_test():
    labels = np.array([0, 1, 0, 1])
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.3, 0.6, 0.1]])
    assert classification_metrics(labels, probs)["auc"] == pytest.approx(1.0)


def test_majority_floor():
    assert majority_floor(np.array([2, 2, 1, 0])) == 0.5


def test_crop_gap_follows_the_papers_definition():
    from medshield.evaluate.grid import crop_gaps
    from medshield.report.tables import grid_table

    # Paper Table 4, TAP row: D_c 91.2, cropped 81.9, D_u 26.5, cropped 12.7 -> Gap 4.5
    cells = [
        {"arch": "resnet18", "defense": "none", "clean_test_accuracy": 0.912, "protected_test_accuracy": 0.265,
         "protected_peak_test_accuracy": 0.3, "majority_floor": 0.2},
        {"arch": "resnet18", "defense": "crop:fraction=0.75", "clean_test_accuracy": 0.819, "protected_test_accuracy": 0.127,
         "protected_peak_test_accuracy": 0.2, "majority_floor": 0.2},
    ]
    [(_, _, gap)] = crop_gaps(cells)
    assert gap == pytest.approx(0.045)
    assert "crop Gap (resnet18, crop:fraction=0.75): +4.5 points" in grid_table(cells)


@pytest.mark.parametrize("clean, protected, verdict", [(0.89, 0.74, "holds"), (0.865, 0.826, "breaks"),
                                                       (0.195, 0.195, "trains nothing"), (0.21, 0.10, "trains nothing")])
def test_cell_verdict_tells_a_break_from_a_defense_that_trains_nothing(clean, protected, verdict):
    from medshield.evaluate.grid import cell_verdict
    from medshield.report.tables import grid_table

    cell = {"arch": "resnet18", "defense": "x", "clean_test_accuracy": clean, "protected_test_accuracy": protected,
            "protected_peak_test_accuracy": protected, "majority_floor": 0.195}
    assert cell_verdict(cell) == verdict
    assert grid_table([cell]).splitlines()[-1].endswith(f"| {verdict} |")
