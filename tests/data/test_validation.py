"""Every validation rule gives one clear InputError naming the problem and the key."""
import numpy as np
import pytest

from medshield.data import load
from medshield.data.medmnist import parse_flag, resolve
from medshield.errors import InputError


def good_arrays(n=10, shape=(28, 28)):
    rng = np.random.default_rng(0)
    arrays = {}
    for split in ("train", "val", "test"):
        arrays[f"{split}_images"] = rng.integers(0, 255, (n, *shape), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 2, (n, 1))
    return arrays


def write(tmp_path, arrays, name="custom.npz"):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_good_file_loads(tmp_path):
    data = load(str(write(tmp_path, good_arrays())))
    assert data.num_classes == 2 and data.channels == 1 and data.splits == ["train", "val", "test"]
    assert data.labels("train").shape == (10,)


def test_known_flag_takes_its_classes_from_medmnist_info(tmp_path):
    arrays = good_arrays()
    data = load(str(write(tmp_path, arrays, "bloodmnist.npz")))
    assert data.num_classes == 8 and data.task == "multi-class" and data.label_names["0"] == "basophil"


def mutate(key, value=None, drop=False):
    def apply(arrays):
        if drop:
            del arrays[key]
        else:
            arrays[key] = value(arrays) if callable(value) else value
        return arrays

    return apply


CASES = [
    (mutate("train_labels", drop=True), "missing key.*train_labels"),
    (mutate("test_images", drop=True), "missing key.*test_images"),
    (mutate("val_labels", drop=True), "val_images and val_labels"),
    (mutate("train_images", lambda a: a["train_images"].astype(np.float32)), "train_images has dtype float32.*uint8"),
    (mutate("train_images", lambda a: a["train_images"][..., None].repeat(2, -1)), "train_images has shape.*1 or 3 channels"),
    (mutate("test_images", lambda a: a["test_images"][:, :20, :20]), "test_images has image shape"),
    (mutate("train_images", lambda a: a["train_images"][:0]), "train_images is empty"),
    (mutate("train_labels", lambda a: a["train_labels"][:5]), "train_labels has shape.*for 10 images"),
    (mutate("train_labels", lambda a: a["train_labels"] - 1), "train_labels holds values -1"),
    (mutate("test_labels", lambda a: a["test_labels"].astype(np.float32)), "test_labels has dtype float32"),
    (mutate("train_labels", lambda a: np.zeros((10, 3), dtype=np.int64)), "multi-label"),
]


@pytest.mark.parametrize("change, message", CASES)
def test_each_rule_gives_a_clear_error(tmp_path, change, message):
    path = write(tmp_path, change(good_arrays()))
    with pytest.raises(InputError, match=message) as info:
        load(str(path))
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_labels_out_of_range_for_a_known_flag(tmp_path):
    arrays = good_arrays()
    arrays["train_labels"][0] = 8
    with pytest.raises(InputError, match=r"train_labels holds values 0..8; expected class indices 0..7"):
        load(str(write(tmp_path, arrays, "bloodmnist.npz")))


def test_a_single_class_loads_for_support_classes_and_evaluate_refuses_it(tmp_path):
    from medshield import pipeline

    arrays = {k: (np.zeros_like(v) if k.endswith("labels") else v) for k, v in good_arrays().items()}
    path = write(tmp_path, arrays)
    assert load(str(path)).num_classes == 1  # protect asks for --support (tests/data/test_support.py)
    with pytest.raises(InputError, match="holds one class"):
        pipeline.evaluate(str(path), progress=False)


@pytest.mark.parametrize("split", ["test", "val"])
def test_split_classes_that_never_occur_in_train_are_refused(tmp_path, split):
    arrays = good_arrays()
    arrays["train_labels"][:] = np.arange(len(arrays["train_labels"])).reshape(arrays["train_labels"].shape) % 2
    arrays[f"{split}_labels"][0] = 5
    with pytest.raises(InputError, match=rf"{split}_labels hold class\(es\) \[5\] that never occur in train_labels"):
        load(str(write(tmp_path, arrays, "bloodmnist.npz")))


def test_pickled_objects_are_never_loaded(tmp_path):
    arrays = good_arrays()
    arrays["train_labels"] = np.array([object()] * 10, dtype=object)
    path = tmp_path / "evil.npz"
    np.savez(path, **arrays)
    with pytest.raises(InputError, match="pickled objects"):
        load(str(path))


def test_not_a_npz(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_text("hello")
    with pytest.raises(InputError, match="not a .npz archive"):
        load(str(path))


@pytest.mark.parametrize(
    "spec, expected",
    [("bloodmnist", ("bloodmnist", 28)), ("bloodmnist_64", ("bloodmnist", 64)), ("PneumoniaMNIST_224", ("pneumoniamnist", 224))],
)
def test_flags_and_sizes(spec, expected):
    assert parse_flag(spec) == expected


@pytest.mark.parametrize("spec, message", [("cifar10", "unknown dataset"), ("bloodmnist_32", "unknown size"), ("organmnist3d", "3D dataset")])
def test_bad_flags(spec, message):
    with pytest.raises(InputError, match=message):
        parse_flag(spec)


def test_missing_file_without_download(tmp_path):
    with pytest.raises(InputError, match="not found"):
        resolve("bloodmnist", tmp_path, download=False)


def test_failed_download_is_one_line(tmp_path, monkeypatch):
    import medmnist

    def offline(*args, **kwargs):
        raise RuntimeError("network down\n with many lines")

    monkeypatch.setattr(medmnist, "BreastMNIST", offline)
    with pytest.raises(InputError, match="could not download breastmnist_64.npz") as info:
        resolve("breastmnist_64", tmp_path / "new-root")
    assert "\n" not in str(info.value)


def test_root_from_environment(tmp_path, monkeypatch):
    np.savez(tmp_path / "breastmnist.npz", **good_arrays())
    monkeypatch.setenv("MEDSHIELD_DATA_ROOT", str(tmp_path))
    assert resolve("breastmnist") == tmp_path / "breastmnist.npz"


def test_a_train_subset_is_seeded_keeps_order_and_leaves_the_other_splits(tiny_npz):
    data = load(str(tiny_npz))
    part = data.train_subset(50, seed=3)
    assert len(part.images("train")) == 50 and part.train_subset(50, seed=3).images("train").shape == (50, 28, 28)
    assert np.array_equal(part.images("train"), data.train_subset(50, seed=3).images("train"))
    assert not np.array_equal(part.images("train"), data.train_subset(50, seed=4).images("train"))
    rows = [next(i for i, image in enumerate(data.images("train")) if np.array_equal(image, kept)) for kept in part.images("train")]
    assert rows == sorted(rows) and np.array_equal(part.labels("train"), data.labels("train")[rows])
    assert part.images("test") is data.images("test") and data.train_subset(10_000) is data
    swapped = data.with_train(data.images("train")[::-1].copy())
    assert np.array_equal(swapped.images("train")[0], data.images("train")[-1]) and swapped.arrays is not data.arrays
