"""The vae defense: a rate-constrained VAE trained on the release passes little of a perturbation
through, and purification keeps the stored shape, dtype and range."""
import numpy as np
import pytest
import torch

from medshield.errors import InputError
from medshield.evaluate.defenses import list_defenses, parse_defense
from medshield.evaluate.purification import train_vae

SETTINGS = dict(rate=30.0, epochs=10, batch_size=64, lr=1e-3, seed=0)


def slice_of(medmnist_root, n=256):
    return np.load(medmnist_root / "bloodmnist.npz")["train_images"][:n]


def test_a_rate_constrained_vae_passes_little_of_the_perturbation(medmnist_root):
    """Trained on perturbed images, the VAE's outputs for an image with and without its
    perturbation differ by well under the perturbation itself (it spends no code on it)."""
    images = torch.from_numpy(slice_of(medmnist_root)).float().div(255).permute(0, 3, 1, 2)
    signs = torch.randint(0, 2, images.shape, generator=torch.Generator().manual_seed(0)).float() * 2 - 1
    perturbed = (images + 8 / 255 * signs).clamp(0, 1)
    vae = train_vae(perturbed, **SETTINGS)
    with torch.no_grad():
        passed = (vae(perturbed)[0] - vae(images)[0]).pow(2).mean().sqrt()
    given = (perturbed - images).pow(2).mean().sqrt()
    assert passed < 0.5 * given


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_purification_keeps_shape_dtype_and_range_and_is_seeded(dtype):
    rng = np.random.default_rng(0)
    maximum = np.iinfo(dtype).max
    images = rng.integers(0, maximum, size=(40, 20, 20), dtype=dtype)
    images[0, 0, 0], images[0, 0, 1] = 0, maximum
    defense = parse_defense("vae:epochs=1")
    out, again = defense.apply(images), defense.apply(images)
    assert out.shape == images.shape and out.dtype == images.dtype and np.array_equal(out, again)
    assert not np.array_equal(out, images) and out.max() <= maximum
    assert defense.kind == "data" and "vae" in list_defenses()


def test_bad_vae_parameters_are_one_line_errors():
    with pytest.raises(InputError, match="rate"):
        parse_defense("vae:rate=0")
    with pytest.raises(InputError, match="epochs"):
        parse_defense("vae:epochs=0")
