"""The Random control must not protect: if it does, the evaluation is broken."""
import numpy as np

from medshield.data.medmnist import MedMNISTData, load
from medshield.evaluate import Recipe, train_victim
from medshield.protect import create_protection


def blood_slice(root, n_train=600, n_test=600) -> MedMNISTData:
    data = load(str(root / "bloodmnist.npz"))
    arrays = dict(data.arrays)
    for split, n in (("train", n_train), ("test", n_test)):
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = arrays[f"{split}_images"][:n], arrays[f"{split}_labels"][:n]
    return MedMNISTData(name=data.name, path=data.path, arrays=arrays, num_classes=data.num_classes, task=data.task, label_names=data.label_names)


def test_random_noise_leaves_victim_accuracy_near_clean(medmnist_root):
    data = blood_slice(medmnist_root)
    released = create_protection("random").protect(data, seed=0, progress=False).images
    assert np.abs(released.astype(int) - data.images("train")).max() == 8
    noisy = MedMNISTData(name=data.name, path=data.path, arrays={**data.arrays, "train_images": released},
                         num_classes=data.num_classes, task=data.task, label_names=data.label_names)
    recipe = Recipe(width=8, epochs=20, iterations=None, optimizer="adam", lr=1e-3, weight_decay=0.0)
    clean = train_victim(data, data, recipe, seed=0, progress=False)
    random = train_victim(noisy, data, recipe, seed=0, progress=False)
    assert clean["test_accuracy"] > clean["majority_floor"] + 0.2  # the victim learns the task
    assert abs(random["test_accuracy"] - clean["test_accuracy"]) < 0.06
