"""``torchrun --nproc-per-node 2 -m medshield grid | evaluate``: two CPU processes (gloo) on the tiny dataset.

A 2-process grid trains whole cells in turn, each as one process trains it, so its cells equal a
1-process grid's; a 2-process ``evaluate`` trains one victim data-parallel, taking the global batch
one process takes (as many steps per epoch), and rank 0 alone reports.
"""
import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import synthetic_npz

from medshield import pipeline
from medshield.evaluate.train import Recipe, check_batch
from medshield._distributed import World
from medshield.errors import InputError

DEFENSES = "none;median;jpeg:quality=30"  # three cells: a full round of two and a round rank 1 sits out
VICTIM = ["--preset", "cpu", "--width", "4", "--iterations", "20", "--batch-size", "32"]
SCORES = tuple(f"{run}_{metric}" for run in ("protected", "clean")
               for metric in ("test_accuracy", "peak_test_accuracy", "balanced_accuracy", "auc"))


@pytest.fixture(autouse=True)
def keep_threads():
    """The one-process runs here take 1 thread (as each torchrun process does); later tests get the count back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def torchrun(processes: int, *args) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes), "-m", "medshield",
               *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                          timeout=240)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    folder = tmp_path_factory.mktemp("grid")
    out = folder / "release"
    pipeline.protect(str(synthetic_npz(folder / "tiny.npz")), out, method="random", seed=0, progress=False)
    return out


def cells_of(out) -> list[dict]:
    return json.loads((out / "grid.json").read_text())["cells"]


def test_two_process_grid_gives_the_cells_of_one_process(release, tmp_path):
    done = torchrun(2, "grid", release, "--out", tmp_path / "two", "--victims", "small-cnn", "--defenses", DEFENSES,
                    *VICTIM, "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    pipeline.grid(str(release), tmp_path / "one", victims=["small-cnn"], defenses=DEFENSES.split(";"), preset_name="cpu",
                  recipe={"width": 4, "iterations": 20, "batch_size": 32}, progress=False, threads=1)
    two, one = cells_of(tmp_path / "two"), cells_of(tmp_path / "one")
    assert [c["defense"] for c in two] == [c["defense"] for c in one] == DEFENSES.split(";")
    assert [[c[k] for k in SCORES] for c in two] == [[c[k] for k in SCORES] for c in one]
    assert json.loads((tmp_path / "two" / "grid.json").read_text())["processes"] == 2


def test_two_process_evaluate_trains_one_victim_data_parallel(release, tmp_path):
    report = tmp_path / "two.json"
    done = torchrun(2, "evaluate", release, *VICTIM, "--arch", "small-cnn", "--compare", "--json", report, "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    two = json.loads(report.read_text())
    one = pipeline.evaluate(str(release), preset_name="cpu", recipe={"arch": "small-cnn", "width": 4, "iterations": 20,
                                                                       "batch_size": 32}, compare=True, progress=False,
                            threads=1)
    assert two["processes"] == 2 and "processes" not in one
    # Two processes of 16 take the global batch of 32: as many steps per epoch as one process.
    assert [h["iteration"] for h in two["history"]] == [h["iteration"] for h in one["history"]]
    assert [h["iteration"] for h in two["clean"]["history"]] == [h["iteration"] for h in one["clean"]["history"]]
    assert 0 <= two["test_accuracy"] <= 1 and 0 <= two["clean"]["test_accuracy"] <= 1


def test_victim_batch_must_split_evenly_over_the_processes():
    check_batch(Recipe(batch_size=32), World(rank=0, size=2, local_rank=0))
    with pytest.raises(InputError, match="multiple of the number of processes"):
        check_batch(Recipe(batch_size=33), World(rank=0, size=2, local_rank=0))
