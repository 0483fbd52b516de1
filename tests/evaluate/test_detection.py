"""Detectability: a simple model fits an error-minimizing release faster than its original."""
import numpy as np
import pytest

from medshield.data import load
from medshield.errors import InputError
from medshield.evaluate.detection import detectability, detectability_gap
from medshield.protect import create_protection

N = 300


@pytest.fixture(scope="module")
def em_slice(medmnist_root, tmp_path_factory):
    """The first N BloodMNIST train images (labels shuffled, so the original holds no shortcut on the
    generated stand-ins either) and a small EM release of them."""
    with np.load(medmnist_root / "bloodmnist.npz") as npz:
        arrays = {key: npz[key] for key in npz.files}
    arrays["train_images"] = arrays["train_images"][:N]
    arrays["train_labels"] = np.random.default_rng(0).permutation(arrays["train_labels"][:N])
    path = tmp_path_factory.mktemp("slice") / "blood.npz"
    np.savez(path, **arrays)
    data = load(str(path))
    release = create_protection("em", steps=40, width=8, batch_size=64).protect(data, seed=0, progress=False)
    return np.array(release.images), data.images("train"), data.labels("train")


@pytest.mark.slow
def test_detectability_separates_an_em_release_from_its_original(em_slice):
    release, original, labels = em_slice
    found = detectability_gap(release, original, labels, epochs=EPOCHS)
    assert found["gap"] >= 0.10 and found["release"] > found["original"]
    assert found["model"] == "linear" and found["epochs"] == EPOCHS


EPOCHS = 20


def test_detectability_is_seeded_and_checks_its_input(em_slice):
    release, _, labels = em_slice
    assert detectability(release, labels, epochs=2) == detectability(release, labels, epochs=2)
    assert 0 <= detectability(release, labels, model="two-layer", epochs=1) <= 1
    with pytest.raises(InputError, match="one label per image"):
        detectability(release, labels[:-1])
    with pytest.raises(InputError, match="model must be one of"):
        detectability(release, labels, model="forest")
