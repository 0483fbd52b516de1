"""Noise in the low block frequencies: the projection, and that JPEG at q = 10 keeps more of it."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

from medshield.errors import InputError
from medshield.protect import create_protection
from medshield.protect._ops import dct_matrix, low_frequency


def test_dct_matrix_is_orthonormal():
    d = dct_matrix()
    assert torch.allclose(d @ d.T, torch.eye(8), atol=1e-6)


def test_low_frequency_projection_is_idempotent_and_keep_8_is_the_identity():
    t = torch.randn(3, 2, 28, 20)
    once = low_frequency(t, 2)
    assert once.shape == t.shape and torch.allclose(low_frequency(once[..., :24, :16], 2), once[..., :24, :16], atol=1e-5)
    assert torch.equal(low_frequency(t, 8), t)
    blocks = low_frequency(t, 1)[..., :8, :8]  # keep = 1: each whole block is its mean
    assert torch.allclose(blocks, t[..., :8, :8].mean(dim=(-2, -1), keepdim=True).expand_as(blocks), atol=1e-5)


def jpeg_kept(images: np.ndarray, noise: np.ndarray) -> float:
    """Correlation of what JPEG q = 10 leaves of a change with the change itself."""
    def coded(a):
        buffer = io.BytesIO()
        Image.fromarray(a).save(buffer, format="JPEG", quality=10)
        return np.asarray(Image.open(buffer)).astype(float)
    left = np.stack([coded(np.clip(i + n, 0, 255).astype(np.uint8)) - coded(i) for i, n in zip(images, noise)])
    return float(np.corrcoef(left.ravel(), noise.ravel())[0, 1])


def test_jpeg_at_quality_10_keeps_block_means_and_drops_dense_noise():
    """At 8/255, JPEG q = 10 quantizes every AC coefficient of the change to zero on a flat image
    (keep = 2 left nothing); the block means (keep = 1) survive."""
    rng = np.random.default_rng(0)
    images = np.full((8, 32, 32), 128, np.uint8)
    dense = torch.from_numpy(rng.choice([-8.0, 8.0], size=(8, 1, 32, 32))).float()
    low = low_frequency(dense, 1)
    low = (low / low.abs().amax(dim=(1, 2, 3), keepdim=True) * 8).round()
    assert jpeg_kept(images, low[:, 0].numpy()) > 0.8 > 0.3 > jpeg_kept(images, dense[:, 0].numpy())


def test_dct_keep_is_checked():
    assert create_protection("em", dct_keep=3).dct_keep == 3 and create_protection("salm").dct_keep == 8
    with pytest.raises(InputError, match="dct_keep"):
        create_protection("em", dct_keep=0)


def test_a_setting_names_its_robust_options_away_from_their_defaults():
    from medshield.report.choice import setting_of
    assert setting_of("salm", {"k": 0.5, "dct_keep": 2}) == "salm k=0.50 dct=2"
    assert setting_of("salm", {"k": 0.5, "dct_keep": 8, "transform": "flip-crop", "adv_eps": 0.0}) == "salm k=0.50"
    # SALM's head names K, so a radius away from 8/255 must be named, or two releases share a name
    assert setting_of("salm", {"k": 0.5, "dct_keep": 2, "eps": 20 / 255}) == "salm k=0.50 dct=2 eps=20"
    assert setting_of("salm", {"k": 0.5, "eps": 8 / 255}) == "salm k=0.50"
    assert setting_of("em", {"adv_eps": 4 / 255, "transform": "defense-aware"}) == "em eps=8 adv=4 defense-aware"
    assert setting_of("rem", {"adv_eps": 4 / 255}) == "rem eps=8"  # REM's own default
    assert setting_of("tap", {"transform": "defense-aware"}) == "tap eps=8 defense-aware"


def test_salm_with_robust_options_does_not_call_itself_algorithm_1_as_written():
    """The manifest and report quote this line: a DCT release at 20/255 is not the paper's algorithm."""
    assert create_protection("salm").sparsity().startswith("Algorithm 1 as written:")
    robust = create_protection("salm", k=0.5, dct_keep=2, eps=20 / 255, step_size=4 / 255).sparsity()
    assert robust.startswith("Algorithm 1 with dct=2, eps=20:") and "as written" not in robust
