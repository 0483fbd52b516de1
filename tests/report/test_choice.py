"""The report's method advice: built from the measured frontier summary, honest about where it was measured."""
import pytest

from medshield.report.choice import PROVENANCE, advice, frontier_summary, load_summary, recommended, setting_of

SUMMARY = {
    "preset": "cpu", "date": "2026-11-25", "ssim_floor": 94.4,
    "datasets": {"bloodmnist": {"clean_accuracy": 90.0, "settings": [
        {"setting": "em eps=8", "accuracy": 30.0, "sd": 5.0, "seeds": 3, "ssim": 98.8, "l0": 99.9, "generation_s": 300, "recommended": True},
        {"setting": "salm k=0.10", "accuracy": 70.0, "sd": None, "seeds": 1, "ssim": 99.0, "l0": 99.0, "generation_s": 290, "recommended": False},
    ]}},
}


def test_setting_names_match_the_frontier():
    assert setting_of("em", {"eps": 8 / 255}) == "em eps=8"
    assert setting_of("em", {"eps": 4 / 255}) == "em eps=4"
    assert setting_of("salm", {"k": 0.1, "sparse": False}) == "salm k=0.10"
    assert setting_of("salm", {"k": 0.3, "sparse": True}) == "salm --sparse k=0.30"


def test_advice_names_the_recommendation_and_prices_every_alternative():
    lines = advice("bloodmnist", "salm", {"k": 0.1}, SUMMARY)
    assert "em eps=8 protects best" in lines[0] and "30.0 % ± 5.0 (3 seeds)" in lines[0] and "60.0 points below" in lines[0]
    assert lines[1] == "This release uses salm k=0.10, not the recommended one."
    assert lines[2].startswith("Alternative: salm k=0.10: a victim reaches 70.0 % (1 seed), 20.0 points below clean")
    assert advice("bloodmnist", "em", {"eps": 8 / 255}, SUMMARY)[1] == "This release uses that setting."


def test_a_dataset_without_a_clean_cell_gets_advice_without_drops():
    summary = {**SUMMARY, "datasets": {"bloodmnist": {**SUMMARY["datasets"]["bloodmnist"], "clean_accuracy": None}}}
    lines = advice("bloodmnist", "em", {"eps": 8 / 255}, summary)
    assert "below clean" not in " ".join(lines) and "30.0 % ± 5.0" in lines[0]


def test_an_unmeasured_dataset_is_told_so_and_no_summary_means_no_advice(tmp_path):
    assert "this dataset was not measured" in advice("dermamnist", "em", {"eps": 8 / 255}, SUMMARY)[0]
    assert advice("bloodmnist", "em", {}, {}) == []
    assert load_summary(tmp_path / "missing.json") == {}


def test_the_shipped_summary_is_readable():
    summary = load_summary()  # package data written by benchmarks/frontier_cpu.py: it must ship
    assert summary, "src/medshield/report/frontier_cpu.json is missing or empty"
    assert summary["preset"] == "cpu" and all("settings" in table for table in summary["datasets"].values())
    assert all(sum(s["recommended"] for s in table["settings"]) == 1 for table in summary["datasets"].values())
    assert set(summary["provenance"]) == set(PROVENANCE) and all(summary["provenance"].values())  # what wrote it


def cell(setting: str, accuracy: float, ssim: float, date: str = "2026-11-25T10:00:00+00:00") -> dict:
    return {"setting": setting, "test_accuracy": accuracy, "ssim": ssim, "l0": 0.5, "generation_s": 100.0, "date": date}


def test_the_recommendation_needs_the_papers_similarity_and_as_many_seeds_as_the_best_measured():
    measured = {
        ("blood", "a"): [cell("a", 0.30, 99.0)] * 3,
        ("blood", "b"): [cell("b", 0.20, 99.0)],  # lower, but one seed against three: not yet
        ("blood", "c"): [cell("c", 0.10, 90.0)] * 3,  # lowest, but below the SSIM floor
        ("pneu", "d"): [cell("d", 0.60, 95.0)],
    }
    assert recommended(measured, ssim_floor=94.4) == {"blood": "a", "pneu": "d"}
    assert recommended(measured, ssim_floor=99.5) == {}


def test_the_written_summary_carries_its_provenance_and_refuses_without_it():
    measured = {("blood", "clean"): [cell("clean", 0.90, 100.0)], ("blood", "a"): [cell("a", 0.30, 99.0, "2026-11-26T01:00:00+00:00")]}
    provenance = {"command": "python frontier_cpu.py --write-only --publish", "commit": "abc1234", "date": "2026-12-05T07:00:00+00:00"}
    summary = frontier_summary(measured, preset="cpu", provenance={**provenance, "machine": "ignored"}, ssim_floor=94.4)
    assert summary["provenance"] == provenance and summary["date"] == "2026-11-26"
    assert summary["datasets"]["blood"]["clean_accuracy"] == 90.0
    assert summary["datasets"]["blood"]["settings"][0] | {"generation_s": 0} == {
        "setting": "a", "accuracy": 30.0, "sd": None, "seeds": 1, "ssim": 99.0, "l0": 50.0, "generation_s": 0, "recommended": True}
    with pytest.raises(ValueError, match="commit"):
        frontier_summary(measured, preset="cpu", provenance={"command": "x", "date": "y"})


def test_a_setting_within_the_seed_spread_of_the_recommended_one_is_told_so():
    rows = SUMMARY["datasets"]["bloodmnist"]["settings"] + [
        {"setting": "tap eps=8", "accuracy": 34.0, "sd": 6.0, "seeds": 3, "ssim": 97.0, "l0": 100.0, "generation_s": 200,
         "recommended": False},
        {"setting": "em eps=4", "accuracy": 50.0, "sd": 2.0, "seeds": 3, "ssim": 99.5, "l0": 99.0, "generation_s": 250,
         "recommended": False}]
    summary = {**SUMMARY, "datasets": {"bloodmnist": {"clean_accuracy": 90.0, "settings": rows}}}
    close = advice("bloodmnist", "tap", {"eps": 8 / 255}, summary)[1]
    assert "within the seed spread of it (34.0 against 30.0 %, sd up to 6.0)" in close
    assert advice("bloodmnist", "em", {"eps": 4 / 255}, summary)[1] == "This release uses em eps=4, not the recommended one."
    assert advice("bloodmnist", "salm", {"k": 0.1}, summary)[1].endswith("not the recommended one.")  # one seed: no claim
