"""The members of T: differentiable JPEG against Pillow's, and shape, range and gradients of every member."""
import io

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data
from skimage.transform import resize

from medshield.errors import InputError
from medshield.models.augment import ALL_MEMBERS, NAMED, flip_crop, transform_distribution
from medshield.models.transforms import jpeg_at

# Mean |kornia - Pillow| in 8-bit levels. kornia's codec rounds DCT coefficients with a cubic
# (differentiable) rounding and keeps fractional pixel values, so it cannot match to the level.
# Measured (kornia 0.9.0, Pillow's libjpeg): q = 10: 2.1 / 1.0 levels on 28 px tiles of
# scikit-image's astronaut / camera, 3.1 / 1.4 on the first 32 BloodMNIST / PneumoniaMNIST train
# images; q = 75: 1.7 / 0.8 and 0.9 / 0.6. Pillow itself moves them by 7-13 levels at q = 10.
TOLERANCE = {10: 4.0, 75: 2.0}


def natural_tiles(flag: str, medmnist_root, real_medmnist) -> np.ndarray:
    """32 real MedMNIST train images, or 16 downscaled 128 px tiles of a scikit-image photograph."""
    if flag.endswith("mnist"):
        if not real_medmnist:
            pytest.skip("the generated MedMNIST stand-ins are noise, not photographs")
        return np.load(medmnist_root / f"{flag}.npz")["train_images"][:32]
    image = getattr(data, flag)()
    return np.stack([(resize(image[r:r + 128, c:c + 128], (28, 28), anti_aliasing=True) * 255).round().astype(np.uint8)
                     for r in range(0, 512, 128) for c in range(0, 512, 128)])


def pillow_jpeg(images: np.ndarray, quality: int) -> np.ndarray:
    out = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
        out.append(np.asarray(Image.open(buffer)))
    return np.stack(out).reshape(images.shape)


def as_batch(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images.astype(np.float32) / 255)
    return x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)


@pytest.mark.parametrize("flag", ["astronaut", "camera", "bloodmnist", "pneumoniamnist"])
@pytest.mark.parametrize("quality", [10, 75])
def test_differentiable_jpeg_matches_pillow_within_tolerance(medmnist_root, real_medmnist, flag, quality):
    images = natural_tiles(flag, medmnist_root, real_medmnist)
    reference = as_batch(pillow_jpeg(images, quality))
    x = as_batch(images)
    coded = jpeg_at(x, torch.tensor([float(quality)]))
    error = 255 * (coded - reference).abs().mean().item()
    assert coded.shape == x.shape and error <= TOLERANCE[quality]
    if quality == 10:  # it models the codec, not the identity: far closer to Pillow than the input is
        assert error < 0.4 * 255 * (x - reference).abs().mean().item()


@pytest.mark.parametrize("channels", [1, 3])
def test_differentiable_jpeg_passes_gradients(channels):
    x = torch.rand(4, channels, 28, 28, requires_grad=True)
    grad = torch.autograd.grad((jpeg_at(x, torch.tensor([10.0, 30.0, 50.0, 75.0])) * torch.randn(4, channels, 28, 28)).sum(), x)[0]
    assert torch.isfinite(grad).all() and (grad.abs().sum(dim=(1, 2, 3)) > 0).all()


def sixteen_bit_batch(shape, seed=0):
    """Float images from 16-bit levels, with both ends of the range present."""
    levels = np.random.default_rng(seed).integers(0, 65536, size=shape, dtype=np.uint16)
    levels.flat[0], levels.flat[-1] = 0, 65535
    return torch.from_numpy(levels.astype(np.float32) / 65535)


SPECS = sorted(ALL_MEMBERS) + sorted(NAMED) + ["flip-crop+jpeg+cutout:2,median-smooth+bitdepth"]


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("shape", [(6, 1, 28, 28), (6, 3, 28, 28), (3, 3, 20, 36), (2, 1, 64, 64)])
@pytest.mark.parametrize("bits", [8, 16])
def test_every_transformation_keeps_shape_and_range_and_passes_gradients(spec, shape, bits):
    x = sixteen_bit_batch(shape) if bits == 16 else torch.randint(0, 256, shape).float() / 255
    delta = torch.zeros(shape, requires_grad=True)
    out = transform_distribution(spec)(x + delta, torch.Generator().manual_seed(3))
    assert out.shape == x.shape and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    grad = torch.autograd.grad((out * torch.randn(shape)).sum(), delta)[0]
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_flip_crop_by_name_draws_exactly_as_before():
    x = torch.rand(8, 3, 28, 28)
    a, b = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(transform_distribution("flip-crop")(x, a), flip_crop(x, b))
    assert torch.equal(a.get_state(), b.get_state())


def test_each_image_draws_its_alternative_by_weight():
    x = torch.rand(2000, 3, 8, 8)
    out = transform_distribution("none:1,grayscale:3")(x, torch.Generator().manual_seed(0))
    gray = (out[:, 0] == out[:, 1]).all(dim=(1, 2))
    assert torch.equal(out[~gray], x[~gray])  # the others are untouched, in their rows
    assert 0.70 < gray.float().mean() < 0.80


def test_bit_depth_is_a_staircase_forward_and_the_identity_backward():
    x = torch.linspace(0, 1, 1000).view(1, 1, 10, 100).requires_grad_(True)
    out = transform_distribution("bitdepth")(x, torch.Generator().manual_seed(0))
    assert 4 <= len(out.unique()) <= 32
    assert torch.equal(torch.autograd.grad(out.sum(), x)[0], torch.ones_like(x))


def test_median_stand_in_removes_an_isolated_spike():
    x = torch.full((1, 1, 9, 9), 0.4)
    x[0, 0, 4, 4] = 1.0
    out = transform_distribution("median-smooth")(x, torch.Generator())
    assert torch.allclose(out, torch.full_like(x, 0.4))


@pytest.mark.parametrize("spec, message", [
    ("blur", "unknown member 'blur'"), ("jpeg:0", "positive number"), ("jpeg:x", "positive number"),
    ("jpeg,", "unknown member ''"), ("flip-crop++jpeg", "unknown member"),
])
def test_bad_specs_are_one_line_errors(spec, message):
    with pytest.raises(InputError, match=message):
        transform_distribution(spec)
