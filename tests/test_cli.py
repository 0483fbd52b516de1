"""The command line as a user meets it: exit codes, one-line errors, and a whole protect+evaluate."""
import json

import numpy as np
import pytest

from medshield import list_protections
from medshield.cli import build_parser, main

FAST = ["--steps", "4", "--width", "8", "--pgd-steps", "2", "--quiet"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_the_verbs(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert all(verb in out for verb in VERBS) and len(VERBS) == 9


def verbs() -> list[str]:
    """The verbs the parser offers (the test below must cover each of them)."""
    action = next(a for a in build_parser()._actions if a.dest == "verb")
    return list(action.choices)


VERBS = verbs()


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_help(capsys, verb):
    with pytest.raises(SystemExit) as info:
        main([verb, "--help"])
    assert info.value.code == 0 and f"medshield {verb}" in capsys.readouterr().out


def test_report_verify_and_restore_run_on_a_tiny_release(capsys, tmp_path, tiny_npz):
    """The three owner verbs other files test at length, once each from the command line on a cheap release
    (the other six run in the tests above and below)."""
    release = tmp_path / "rel"
    assert run(capsys, "protect", str(tiny_npz), "--out", str(release), "--method", "random", "--quiet")[0] == 0
    code, out, err = run(capsys, "verify", str(release), "--json", str(tmp_path / "checks.json"))
    assert code == 0, err
    assert "FAILED" not in out and json.loads((tmp_path / "checks.json").read_text())
    code, out, err = run(capsys, "restore", str(release), "--out", str(tmp_path / "originals"))
    assert code == 0, err
    with np.load(tiny_npz) as original, np.load(tmp_path / "originals" / "tiny.npz") as restored:
        assert np.array_equal(original["train_images"], restored["train_images"])
    code, out, err = run(capsys, "report", str(release), "--out", str(tmp_path / "report"))
    assert code == 0, err
    assert (tmp_path / "report" / "index.html").is_file() and "index.html" in out


def test_methods_lists_salm_with_defaults(capsys):
    code, out, _ = run(capsys, "methods")
    assert code == 0 and "salm" in out and "k = 0.1" in out and "steps = 5000" in out
    assert all(f"{name}:" in out for name in list_protections()) and "eps = 8/255" in out


def test_every_method_writes_the_same_release_layout(capsys, tmp_path, tiny_npz):
    out = tmp_path / "sp"
    code, _, err = run(capsys, "protect", str(tiny_npz), "--out", str(out), "--method", "sp", "--patch-size", "4", "--quiet")
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["method"] == "sp" and manifest["params"]["patch_size"] == 4 and manifest["measured"]["linf"] <= 8
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "manifest.sig", "owner.pub", "restoration.sealed",
                                                     "tiny.npz"]
    assert (tmp_path / "sp.key").is_file()  # the key beside the release, not in it


def test_cpu_preset_applies_per_method_settings(capsys, tmp_path, tiny_npz):
    out = tmp_path / "tap"
    code, _, err = run(capsys, "protect", str(tiny_npz), "--out", str(out), "--method", "tap", "--preset", "cpu",
                       "--source-epochs", "1", "--width", "4", "--quiet")
    assert code == 0, err
    params = json.loads((out / "manifest.json").read_text())["params"]
    assert (params["pgd_steps"], params["restarts"], params["source_epochs"], params["width"]) == (20, 1, 1, 4)


def test_an_option_the_method_does_not_take_is_one_line_error(capsys, tmp_path, tiny_npz):
    code, _, err = run(capsys, "protect", str(tiny_npz), "--out", str(tmp_path / "x"), "--method", "sp", "--k", "0.1")
    assert code == 2 and "has no parameter 'k'" in err and not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["protect", "nosuchmnist", "--out", "X"], "unknown dataset 'nosuchmnist'"),
        (["protect", "missing.npz", "--out", "X"], "does not exist"),
        (["evaluate", "runs/no-such-release"], "runs/no-such-release does not exist"),
        (["protect", "tiny.npz"], "required: --out"),
        (["protect", "tiny.npz", "--out", "X", "--method", "magic"], "invalid choice"),
        (["protect", "tiny.npz", "--out", "X", "--k", "5"], "k must be in"),
        (["protect", "tiny.npz", "--out", "X", "--steps", "many"], "invalid int value"),
        (["evaluate", "tiny.npz", "--compare"], "--compare needs a release folder"),
        (["evaluate", "emptydir"], "no PNG, JPEG, TIFF or BMP images found"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(capsys, tmp_path, tiny_npz, monkeypatch, argv, message):
    monkeypatch.chdir(tiny_npz.parent)
    (tiny_npz.parent / "emptydir").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("medshield: error:") and message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_bad_npz_is_rejected_before_any_work(capsys, tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, train_images=np.zeros((4, 28, 28), np.float32), train_labels=np.zeros((4, 1), int),
             test_images=np.zeros((4, 28, 28), np.uint8), test_labels=np.zeros((4, 1), int))
    code, _, err = run(capsys, "protect", str(path), "--out", str(tmp_path / "out"), *FAST)
    assert code == 2 and "train_images has dtype float32" in err
    assert not (tmp_path / "out").exists()


def test_existing_output_is_not_overwritten(capsys, tmp_path, tiny_npz):
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = run(capsys, "protect", str(tiny_npz), "--out", str(out), *FAST)
    assert code == 2 and "--overwrite" in err and list(out.iterdir()) == []


def breast_slice(root, tmp_path, n_train=300):
    """A slice of BreastMNIST (real when ../shared exists) written as its own .npz."""
    with np.load(root / "breastmnist.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["train_images"], arrays["train_labels"] = arrays["train_images"][:n_train], arrays["train_labels"][:n_train]
    path = tmp_path / "breastmnist.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.slow
def test_protect_then_evaluate_end_to_end(capsys, tmp_path, medmnist_root, real_medmnist):
    """Protect 300 BreastMNIST images and train victims on clean vs protected.

    At 60 source steps SALM's default K = 10 % does not yet protect (measured: 75.6 % vs 77.6 %
    clean, see README); K = 30 % did before the noise was stored in whole int8 levels, and then
    not at 2 threads (78.2 % vs 77.6 %); K = 50 % does, so the test uses it: it checks the
    pipeline end to end, the benchmarks measure the defaults. The strict drop is asserted on the
    real file only: without ../shared the generated stand-in is too easy to protect at this budget.
    """
    source = breast_slice(medmnist_root, tmp_path)
    source_bytes = source.read_bytes()
    out = tmp_path / "release"
    code, _, err = run(capsys, "protect", str(source), "--out", str(out), "--seed", "1",
                       "--steps", "60", "--width", "8", "--batch-size", "64", "--k", "0.5", "--sparse", "--quiet")
    assert code == 0, err
    assert source.read_bytes() == source_bytes
    assert sorted(p.name for p in out.iterdir()) == ["breastmnist.npz", "manifest.json", "manifest.sig", "owner.pub",
                                                     "restoration.sealed"]
    assert "keep it private" in err

    import medmnist

    loaded = medmnist.BreastMNIST(split="train", root=str(out))  # a valid medmnist root
    assert loaded.imgs.shape[0] == 300 and loaded[0][1].shape == (1,)  # (len() checks the official count)

    manifest = json.loads((out / "manifest.json").read_text())
    for key in ("method", "params", "seed", "preset", "precision", "versions", "release_id", "measured", "files"):
        assert key in manifest
    assert manifest["method"] == "salm" and manifest["seed"] == 1 and manifest["preset"] == "paper"
    assert manifest["params"]["steps"] == 60 and manifest["params"]["k"] == 0.5 and manifest["params"]["sparse"]
    assert "sparse release" in manifest["sparsity"]
    assert "input" not in manifest and manifest["versions"]["torch"]
    private = json.loads((tmp_path / "release.key").read_text())["private"]
    assert private["input"]["sha256"] and private["input"]["path"] == str(source.resolve())
    assert manifest["measured"]["linf"] <= 8 and manifest["measured"]["changed_positions_max"] <= 392

    report_path = tmp_path / "eval.json"
    code, out_text, err = run(capsys, "evaluate", str(out), "--compare", "--width", "8", "--epochs", "40",
                              "--optimizer", "adam", "--lr", "0.001", "--weight-decay", "0", "--seed", "1",
                              "--json", str(report_path))
    assert code == 0, err
    assert "protected" in out_text and "clean" in out_text
    report = json.loads(report_path.read_text())
    for key in ("test_accuracy", "balanced_accuracy", "auc", "majority_floor"):
        assert 0 <= report[key] <= 1 and 0 <= report["clean"][key] <= 1
    assert report["recipe"]["epochs"] == 40 and report["recipe"]["width"] == 8
    assert report["release_manifest"]["method"] == "salm"
    assert report["clean"]["test_accuracy"] > report["majority_floor"]  # the clean victim learned something
    if real_medmnist:
        assert report["test_accuracy"] < report["clean"]["test_accuracy"]
    else:  # the generated stand-in (a bright bar) is learned perfectly with or without the noise
        assert report["test_accuracy"] <= report["clean"]["test_accuracy"]


def test_utility_compares_a_release_with_its_original(capsys, tmp_path, tiny_npz):
    out = tmp_path / "random"
    assert run(capsys, "protect", str(tiny_npz), "--out", str(out), "--method", "random", "--quiet")[0] == 0
    code, text, err = run(capsys, "utility", str(out), "--json", str(tmp_path / "u.json"))
    assert code == 0, err
    assert "SSIM %" in text and "L0 (% of positions)" in text
    report = json.loads((tmp_path / "u.json").read_text())
    assert report["method"] == "random" and report["images"] == 120
    assert report["overall"]["linf"]["worst_5pct"] <= 8 and 0 < report["overall"]["ssim"]["mean"] < 100
    assert set(report["per_class"]) == {"0", "1"}
    code, _, err = run(capsys, "utility", str(tiny_npz))
    assert code == 2 and "not a release folder" in err


def test_grid_runs_victims_by_defenses_and_resumes(capsys, tmp_path, tiny_npz):
    release = tmp_path / "rel"
    assert run(capsys, "protect", str(tiny_npz), "--out", str(release), "--method", "random", "--quiet")[0] == 0
    grid = tmp_path / "grid"
    argv = ["grid", str(release), "--out", str(grid), "--victims", "small-cnn", "--defenses", "none;median;jpeg:quality=30",
            "--epochs", "1", "--width", "8", "--quiet"]
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    cells = json.loads((grid / "grid.json").read_text())["cells"]
    assert [c["defense"] for c in cells] == ["none", "median", "jpeg:quality=30"]
    assert all(0 <= c["clean_test_accuracy"] <= 1 and 0 <= c["protected_test_accuracy"] <= 1 for c in cells)
    assert cells[2]["defense_detail"] == {"name": "jpeg", "kind": "data", "params": {"quality": 30}}
    assert "clean-trained acc %" in (grid / "grid.md").read_text()
    journal = (grid / "grid.jsonl").read_text()
    assert run(capsys, *argv)[0] == 0  # finished cells are not recomputed
    assert (grid / "grid.jsonl").read_text() == journal
    code, _, err = run(capsys, "grid", str(release), "--out", str(grid), "--defenses", "blur")
    assert code == 2 and "unknown defense 'blur'" in err


def test_evaluate_with_a_defense_records_it(capsys, tmp_path, tiny_npz):
    code, _, err = run(capsys, "evaluate", str(tiny_npz), "--arch", "small-cnn", "--width", "8", "--epochs", "1",
                       "--defense", "bitdepth:bits=3", "--json", str(tmp_path / "e.json"), "--quiet")
    assert code == 0, err
    assert json.loads((tmp_path / "e.json").read_text())["defense"]["params"] == {"bits": 3}


def test_partial_protection_by_class_and_fraction(capsys, tmp_path, tiny_npz):
    original = np.load(tiny_npz)
    labels = original["train_labels"][:, 0]
    out = tmp_path / "classes"
    assert run(capsys, "protect", str(tiny_npz), "--out", str(out), "--method", "random", "--classes", "1", "--quiet")[0] == 0
    released = np.load(out / "tiny.npz")["train_images"]
    changed = (released != original["train_images"]).reshape(len(labels), -1).any(axis=1)
    assert changed[labels == 1].all() and not changed[labels == 0].any()
    assert json.loads((out / "manifest.json").read_text())["partial"]["protected_images"] == int((labels == 1).sum())
    code, text, err = run(capsys, "evaluate", str(out), "--compare", "--arch", "small-cnn", "--width", "8", "--epochs", "1",
                          "--json", str(tmp_path / "e.json"))
    assert code == 0, err
    split = json.loads((tmp_path / "e.json").read_text())["by_protection"]
    assert set(split) == {"protected", "clean"} and 0 <= split["protected"]["protected_classes_accuracy"] <= 1
    assert "on the protected classes" in text

    out = tmp_path / "half"
    assert run(capsys, "protect", str(tiny_npz), "--out", str(out), "--method", "random", "--fraction", "0.5", "--quiet")[0] == 0
    released = np.load(out / "tiny.npz")["train_images"]
    assert (released != original["train_images"]).reshape(len(labels), -1).any(axis=1).sum() == 60
    code, _, err = run(capsys, "protect", str(tiny_npz), "--out", str(tmp_path / "x"), "--classes", "7")
    assert code == 2 and "--classes [7]" in err


def test_compare_puts_releases_side_by_side(capsys, tmp_path, tiny_npz):
    for method in ("random", "sp"):
        assert run(capsys, "protect", str(tiny_npz), "--out", str(tmp_path / method), "--method", method, "--quiet")[0] == 0
    code, text, err = run(capsys, "compare", str(tmp_path / "random"), str(tmp_path / "sp"), "--json", str(tmp_path / "c.json"))
    assert code == 0, err
    lines = [line for line in text.splitlines() if line.startswith("| random") or line.startswith("| sp")]
    assert len(lines) == 2 and "SSIM" in text and "NMI" in text
    assert [r["method"] for r in json.loads((tmp_path / "c.json").read_text())] == ["random", "sp"]


def test_same_seed_and_threads_repeat_the_release_bytes_and_are_recorded(capsys, tmp_path, tiny_npz):
    """Results move with the thread count, so it is a setting: recorded, and a rerun repeats the bytes."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        images = []
        for name in ("a", "b"):
            out = tmp_path / name
            code, _, err = run(capsys, "protect", str(tiny_npz), "--out", str(out), "--seed", "5", "--threads", "1", *FAST)
            assert code == 0, err
            manifest = json.loads((out / "manifest.json").read_text())
            assert manifest["threads"] == 1 and manifest["seed"] == 5
            with np.load(out / "tiny.npz", allow_pickle=False) as npz:
                images.append(npz["train_images"].tobytes())
        assert images[0] == images[1]
        code, _, err = run(capsys, "evaluate", str(tmp_path / "a"), "--threads", "1", "--epochs", "1", "--width", "4",
                           "--quiet", "--json", str(tmp_path / "e.json"))
        assert code == 0, err
        assert json.loads((tmp_path / "e.json").read_text())["threads"] == 1
        code, _, err = run(capsys, "protect", str(tiny_npz), "--out", str(tmp_path / "c"), "--threads", "0", *FAST)
        assert code == 2 and "--threads must be at least 1" in err and not (tmp_path / "c").exists()
    finally:
        torch.set_num_threads(before)


def test_the_manifest_states_the_l0_measured_on_the_written_release(capsys, tmp_path, tiny_npz):
    from medshield.bounds import pixel_change
    from medshield.data import load

    out = tmp_path / "dense"
    code, _, err = run(capsys, "protect", str(tiny_npz), "--out", str(out), *FAST)
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    with np.load(out / "tiny.npz", allow_pickle=False) as npz:
        measured = pixel_change(load(str(tiny_npz)).images("train"), npz["train_images"])
    assert manifest["measured"]["l0_mean"] == pytest.approx(measured["l0_mean"])
    assert manifest["measured"]["l0_max"] == pytest.approx(measured["l0_max"])
    assert measured["l0_mean"] > 0.5 and "Algorithm 1" in manifest["sparsity"]  # the default SALM release is dense


def test_a_mistyped_flag_gets_the_closest_name_and_a_large_radius_a_warning(capsys, caplog, tmp_path, tiny_npz):
    code, _, err = run(capsys, "protect", "bloodmnis", "--out", str(tmp_path / "x"))
    assert code == 2 and "did you mean bloodmnist?" in err and err.count("\n") == 1
    code, _, err = run(capsys, "protect", str(tiny_npz), "--out", str(tmp_path / "y"), "--method", "random", "--eps", "24", "--quiet")
    assert code == 0 and "no longer imperceptible" in caplog.text


@pytest.mark.parametrize("where", ["file", "proc"])
def test_an_unwritable_output_location_is_refused_before_any_work(capsys, tmp_path, tiny_npz, where):
    if where == "file":
        (tmp_path / "plain").write_text("not a folder")
        out = tmp_path / "plain" / "release"
    else:
        out = "/proc/medshield-release"  # not writable, even for root
    code, _, err = run(capsys, "protect", str(tiny_npz), "--out", str(out), "--method", "random")
    assert code == 2 and err.count("\n") == 1 and ("not a folder" in err or "cannot write" in err), err


def test_a_full_disk_while_writing_leaves_no_partial_release_and_one_line(capsys, tmp_path, tiny_npz, monkeypatch):
    import errno

    from medshield.release import npz as release_module

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out"))

    before = tiny_npz.read_bytes()
    monkeypatch.setattr(release_module.np, "savez_compressed", full)
    code, _, err = run(capsys, "protect", str(tiny_npz), "--out", str(tmp_path / "out"), "--method", "random", "--quiet")
    assert code == 2 and err.count("\n") == 1 and "No space left on device" in err  # the machine refused: exit 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.npz"] and tiny_npz.read_bytes() == before


def test_param_sets_any_method_parameter_and_refuses_unknown_ones(capsys, tmp_path, tiny_npz):
    out = tmp_path / "release"
    code, _, err = run(capsys, "protect", str(tiny_npz), "--out", str(out), "--method", "salm", "--param", "k=0.2",
                       "--param", "sparse=true", "--steps", "2", "--width", "4", "--batch-size", "32", "--pgd-steps", "1",
                       "--quiet")
    assert code == 0, err
    params = json.loads((out / "manifest.json").read_text())["params"]
    assert (params["k"], params["sparse"], params["steps"]) == (0.2, True, 2)
    code, _, err = run(capsys, "protect", str(tiny_npz), "--out", str(tmp_path / "x"), "--method", "tap",
                       "--param", "k=0.2", "--quiet")
    assert code == 2 and "--param (tap): no parameter 'k'" in err and err.count("\n") == 1


CTRL_C_DURING_IMPORT = """
import builtins, sys
real_import = builtins.__import__
def interrupted(name, *args, **kwargs):  # the Ctrl-C lands while the command line imports torch
    if name == "torch" or name.startswith("torch."):
        raise KeyboardInterrupt
    return real_import(name, *args, **kwargs)
builtins.__import__ = interrupted
sys.argv = ["medshield", "methods"]
from medshield.__main__ import run
sys.exit(run())
"""


def test_a_ctrl_c_while_the_command_starts_is_one_quiet_line():
    """SIGINT while ``import torch`` runs gave a KeyboardInterrupt traceback; now one line, exit 130.
    The interrupt is raised inside the import itself, so the test does not race the machine's speed."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    child = subprocess.run([sys.executable, "-c", CTRL_C_DURING_IMPORT], capture_output=True, text=True, env=env,
                           timeout=120)
    assert "Traceback" not in child.stderr, child.stderr
    assert child.returncode == 130 and child.stderr == "medshield: interrupted; nothing was written\n", (
        child.returncode, child.stderr)
