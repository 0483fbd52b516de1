"""The HTML report, from a real (small) run on PneumoniaMNIST, rendered by headless Chromium."""
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from medshield.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def run(*argv):
    assert main(list(argv)) == 0


@pytest.mark.slow
def test_report_renders_tables_and_images_in_a_browser(tmp_path, medmnist_root):
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: the README's test command installs it (apt-get install chromium)")
        pytest.skip("chromium not installed")
    with np.load(medmnist_root / "pneumoniamnist.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["train_images"], arrays["train_labels"] = arrays["train_images"][:200], arrays["train_labels"][:200]
    source = tmp_path / "pneumoniamnist.npz"
    np.savez(source, **arrays)
    release = tmp_path / "release"
    run("protect", str(source), "--out", str(release), "--steps", "5", "--width", "4", "--batch-size", "50", "--quiet")
    run("evaluate", str(release), "--compare", "--arch", "small-cnn", "--width", "8", "--epochs", "2",
        "--json", str(tmp_path / "evaluation.json"), "--quiet")
    run("grid", str(release), "--out", str(tmp_path / "grid"), "--victims", "small-cnn", "--defenses", "none;median",
        "--epochs", "1", "--width", "8", "--quiet")
    run("report", str(release))
    page = tmp_path / "release-report" / "index.html"
    text = page.read_text()
    for section in ("What it means", "How it was protected", "Utility", "What the perturbation looks like",
                    "Efficacy", "Victims x defenses", "trained on this release reaches"):
        assert section in text, section
    assert len(re.findall(r"<td>(?:holds|breaks|trains nothing)</td>", text)) == 2  # a verdict per grid cell
    assert sorted(p.name for p in (page.parent / "figures").iterdir()) == [
        "comparison.png", "learning_curves_0.png", "perturbation_map.png"]

    chromium = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files"]
    dom = subprocess.run(chromium + ["--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert re.search(r'data-images="3 loaded, 0 broken"', dom), dom[-400:]
    assert dom.count("<table>") >= 4
    shot = tmp_path / "shot.png"
    subprocess.run(chromium + ["--window-size=1100,2600", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120, cwd=tmp_path)
    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.shape == (2600, 1100) and pixels.std() > 10  # a page was drawn, not a blank
    assert json.loads((page.parent / "utility.json").read_text())["images"] == 200
