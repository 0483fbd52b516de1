"""The journal every resumable run keeps: whole records back, a line cut short by a kill skipped."""
from medshield.evaluate.journal import Journal


def test_records_match_by_fields_and_survive_a_line_cut_short(tmp_path):
    journal = Journal(tmp_path / "cells.jsonl")
    assert journal.records() == [] and not journal.has({"seed": 0})
    journal.append({"setting": "em", "seed": 0, "accuracy": 0.5})
    with open(journal.path, "a") as handle:
        handle.write('{"setting": "em", "seed": 1, "accu')  # the process was killed mid-line
    journal.append({"setting": "tap", "seed": 0, "accuracy": 0.4})
    assert [r["setting"] for r in journal.records()] == ["em", "tap"]
    assert journal.has({"setting": "em", "seed": 0}) and not journal.has({"setting": "em", "seed": 1})
    assert journal.matching({"seed": 0, "missing": None}) == journal.records()  # an absent field counts as None
    assert not journal.has({"setting": "em", "seed": 0, "threads": 2})
