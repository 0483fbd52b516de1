"""The defense grid's verdict, each setting's worst case, and the recommendation that ranks by it."""
from medshield.report import recommended, worst_cases
from medshield.report.robustness import survival_sentence, verdict


def cell(setting, defense, clean, protected, seed=0, floor=0.2):
    return {"dataset": "d", "setting": setting, "defense": defense, "victim": "v", "seed": seed,
            "clean_trained_accuracy": clean, "protected_trained_accuracy": protected, "majority_floor": floor}


def test_verdicts_follow_the_thresholds():
    assert verdict(0.90, 0.50, 0.20) == "holds"
    assert verdict(0.90, 0.80, 0.20) == "weakened"
    assert verdict(0.90, 0.88, 0.20) == "breaks"
    assert verdict(0.21, 0.21, 0.20) == "trains nothing"
    assert verdict(0.85, 0.66, 0.625) == "holds" and verdict(0.85, 0.70, 0.625) == "weakened"  # narrow gap: floor + 5


def test_the_worst_case_is_the_trainers_best_response_measured_from_the_clean_victim_without_a_defense():
    cells = [cell("a", "none", 0.9, 0.4), cell("a", "jpeg", 0.9, 0.85), cell("a", "jpeg", 0.9, 0.65, seed=1),
             cell("a", "at", 0.8, 0.79), cell("a", "gray", 0.21, 0.21), cell("a", "vae", 0.45, 0.5)]
    case = worst_cases(cells)[("d", "a")]
    assert case["worst_defense"] == "at" and case["worst_drop"] == 11.0  # 90 wanted, 79 reached
    assert "vae" in case["breaks"] and case["drops"]["vae"] == -5.0  # undone in its cell, but only 50 % reached
    assert case["holds"] == ["none"] and case["breaks"] == ["at", "vae"] and case["trains nothing"] == ["gray"]
    assert case["weakened"] == ["jpeg"] and case["drops"]["jpeg"] == 15.0  # the seeds' means: 90 against 75
    sentence = survival_sentence("a", case)
    assert "holds under none (+50.0, 1 seed)" in sentence and "at (+1.0, 1 seed)" in sentence
    assert "gray" not in sentence
    assert worst_cases(cells, min_seeds=2)[("d", "a")]["worst_drop"] == 15.0  # jpeg, the only defense with 2 seeds
    assert worst_cases([c for c in cells if c["defense"] != "none"])[("d", "a")]["worst_drop"] is None  # nothing wanted


def test_the_recommendation_ranks_by_worst_case_where_the_grid_measured():
    rows = lambda setting, acc, ssim=97.0: [{"setting": setting, "test_accuracy": acc, "ssim": ssim}] * 3  # noqa: E731
    candidates = {("d", "a"): rows("a", 0.40), ("d", "b"): rows("b", 0.45), ("d", "c"): rows("c", 0.10, ssim=90.0)}
    assert recommended(candidates) == {"d": "a"}  # no grid: the lowest accuracy at the utility floor
    worst = {("d", "a"): {"worst_drop": -10.0}, ("d", "b"): {"worst_drop": 8.0}, ("d", "c"): {"worst_drop": 40.0}}
    assert recommended(candidates, worst=worst) == {"d": "b"}  # c is below the SSIM floor, a loses more


def test_where_no_setting_survives_the_best_response_the_rule_falls_back_to_no_defense():
    rows = lambda setting, acc: [{"setting": setting, "test_accuracy": acc, "ssim": 97.0}] * 3  # noqa: E731
    candidates = {("d", "a"): rows("a", 0.40), ("d", "b"): rows("b", 0.45)}
    worst = {("d", "a"): {"worst_drop": -10.0}, ("d", "b"): {"worst_drop": 3.0}}  # both within BREAK_POINTS: noise
    assert recommended(candidates, worst=worst) == {"d": "a"}  # the better protection against a trainer who does nothing
    worst[("d", "b")]["worst_drop"] = 5.0  # b keeps the grid's break margin: it survives, a does not
    assert recommended(candidates, worst=worst) == {"d": "b"}
