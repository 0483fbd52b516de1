"""class-conv: one filter per class, brightness kept, strength as the utility knob."""
import numpy as np
import pytest
from PIL import Image

from medshield.data import load
from medshield.errors import InputError
from medshield.evaluate.utility import utility_report
from medshield.protect import create_protection

from medshield.cli import main

from builders import make_folder, medmnist_images
from conftest import synthetic_npz


def twin_dataset(path, channels=1):
    """Two copies of the same images, the copies labelled 0 and 1, and a flat image in each class."""
    base = np.random.default_rng(0).integers(0, 128, size=(20, 12, 12, channels)).astype(np.uint8)
    base[0] = 85  # flat: a normalized kernel must leave it as it is
    images = np.concatenate([base, base])
    labels = np.repeat([0, 1], len(base))[:, None]
    np.savez(path, train_images=images, train_labels=labels, val_images=images[:4], val_labels=labels[:4],
             test_images=images[:4], test_labels=labels[:4])
    return load(str(path))


@pytest.mark.parametrize("channels", [1, 3])
def test_same_image_same_class_same_filter_other_class_other_filter(tmp_path, channels):
    data = twin_dataset(tmp_path / "twins.npz", channels)
    dtype = np.uint8
    released = create_protection("class-conv", strength=0.8).protect(data, seed=0, progress=False).images
    original = data.images("train")
    assert released.dtype == dtype and released.shape == original.shape
    half = len(original) // 2
    assert not np.array_equal(released[1:half], released[half + 1:])  # the class, not the image, sets the filter
    assert np.array_equal(released[0], original[0]) and np.array_equal(released[half], original[half])  # flat: kept
    # brightness kept: a kernel sums to 1, so an image's mean moves by rounding and reflection only
    means = lambda a: a.reshape(len(a), -1).mean(1)  # noqa: E731
    assert np.abs(means(released) - means(original)).max() < 0.02 * np.iinfo(dtype).max


def test_strength_trades_similarity_for_change(tiny_npz):
    data = load(str(tiny_npz))
    original = data.images("train")
    ssim = {}
    for strength in (0.0, 0.3, 0.9):
        released = create_protection("class-conv", strength=strength).protect(data, seed=0, progress=False).images
        ssim[strength] = utility_report(original, released, names=("ssim",))["overall"]["ssim"]["mean"]
        if strength == 0.0:
            assert np.array_equal(released, original)
    assert ssim[0.0] > ssim[0.3] > ssim[0.9]


def test_same_seed_same_release_other_seed_other_filters(tmp_path):
    data = load(str(synthetic_npz(tmp_path / "four.npz", classes=4)))
    method = create_protection("class-conv")
    first, again, other = (method.protect(data, seed=s, progress=False).images for s in (0, 0, 1))
    assert np.array_equal(first, again) and not np.array_equal(first, other)


@pytest.mark.parametrize("params,says", [({"kernel_size": 4}, "odd"), ({"strength": 1.5}, "strength must be in")])
def test_bad_settings_are_one_line(params, says):
    with pytest.raises(InputError, match=says):
        create_protection("class-conv", **params)


def test_a_16_bit_folder_release_is_filtered_signed_and_verified(capsys, tmp_path, medmnist_root):
    images, labels, _, _ = medmnist_images(medmnist_root, "breastmnist", 24)
    root, _ = make_folder(tmp_path, images, labels, ".png", sixteen=True)
    out = tmp_path / "release"
    assert main(["protect", str(root), "--method", "class-conv", "--out", str(out), "--quiet"]) == 0
    assert main(["verify", str(out)]) == 0, capsys.readouterr().out
    changed = []
    for original in root.rglob("*.png"):
        with Image.open(original) as a, Image.open(out / original.relative_to(root)) as b:
            before, after = np.asarray(a), np.asarray(b)
        assert after.dtype == before.dtype == np.uint16
        changed.append(np.abs(after.astype(int) - before).max())
    assert max(changed) > 8 * 257  # beyond any imperceptible radius: no radius bounds a filter
