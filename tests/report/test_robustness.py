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


def test_the_worst_case_is_the_defense_with_the_smallest_seed_mean_drop():
    cells = [cell("a", "none", 0.9, 0.4), cell("a", "jpeg", 0.9, 0.85), cell("a", "jpeg", 0.9, 0.65, seed=1),
             cell("a", "at", 0.8, 0.79), cell("a", "gray", 0.21, 0.21)]
    case = worst_cases(cells)[("d", "a")]
    assert case["worst_defense"] == "at" and case["worst_drop"] == 1.0
    assert case["holds"] == ["none"] and case["breaks"] == ["at"] and case["trains nothing"] == ["gray"]
    assert case["weakened"] == ["jpeg"] and case["drops"]["jpeg"] == 15.0  # the seeds' means: 90 against 75
    sentence = survival_sentence("a", case)
    assert "holds under none (+50.0, 1 seed)" in sentence and "undone by at (+1.0, 1 seed)" in sentence
    assert "gray" not in sentence
    assert worst_cases(cells, min_seeds=2)[("d", "a")]["worst_defense"] == "jpeg"  # the only defense with 2 seeds


def test_the_recommendation_ranks_by_worst_case_where_the_grid_measured():
    rows = lambda setting, acc, ssim=97.0: [{"setting": setting, "test_accuracy": acc, "ssim": ssim}] * 3  # noqa: E731
    candidates = {("d", "a"): rows("a", 0.40), ("d", "b"): rows("b", 0.45), ("d", "c"): rows("c", 0.10, ssim=90.0)}
    assert recommended(candidates) == {"d": "a"}  # no grid: the lowest accuracy at the utility floor
    worst = {("d", "a"): {"worst_drop": -10.0}, ("d", "b"): {"worst_drop": 3.0}, ("d", "c"): {"worst_drop": 40.0}}
    assert recommended(candidates, worst=worst) == {"d": "b"}  # c is below the SSIM floor, a loses more


def test_verdicts_rank_before_drops_so_the_next_defense_decides_between_releases_undone_alike():
    def case(drops):
        grid = [cell("s", d, 0.9, 0.9 - drop / 100, seed=seed) for d, drop in drops.items() for seed in range(3)]
        return worst_cases(grid, min_seeds=3)[("d", "s")]
    rows = lambda setting, acc: [{"setting": setting, "test_accuracy": acc, "ssim": 97.0}] * 3  # noqa: E731
    candidates = {("d", "a"): rows("a", 0.40), ("d", "b"): rows("b", 0.45)}
    a = case({"none": 50.0, "jpeg": 10.0, "at": 4.0, "vae": 30.0})  # the larger worst drop, undone all the same
    b = case({"none": 45.0, "jpeg": 25.0, "at": 1.0})
    assert a["worst_drop"] > b["worst_drop"] and a["breaks"] == b["breaks"] == ["at"]
    assert recommended(candidates, worst={("d", "a"): a, ("d", "b"): b}) == {"d": "b"}  # jpeg holds; vae unshared
    b = case({"none": 45.0, "jpeg": 12.0, "at": 6.0})  # weakened by both
    assert recommended(candidates, worst={("d", "a"): a, ("d", "b"): b}) == {"d": "b"}  # a is undone by at
    a = case({"none": 50.0, "jpeg": 10.0, "at": 7.0})  # the same verdicts: the worst drop decides
    assert recommended(candidates, worst={("d", "a"): a, ("d", "b"): b}) == {"d": "a"}
