"""Utility metrics: identical images score perfectly, perturbed ones move the right way."""
import math

import numpy as np
import pytest

from medshield.evaluate.utility import image_metrics, segment, utility_report

SIMILARITIES = ("ssim", "ahash", "phash", "dhash", "nmi", "segmentation_agreement")


def textured(seed=0, shape=(28, 28)):
    rng = np.random.default_rng(seed)
    image = rng.integers(40, 120, size=shape).astype(np.uint8)
    image[8:20, 8:20] = 210  # an object Otsu separates from the background
    return image


def perturbed(image, amount, seed=1):
    rng = np.random.default_rng(seed)
    return np.clip(image.astype(int) + rng.integers(-amount, amount + 1, size=image.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("shape", [(28, 28), (28, 28, 3)])
def test_identical_images_score_perfectly(shape):
    image = textured(shape=shape)
    m = image_metrics(image, image.copy())
    for name in SIMILARITIES:
        assert m[name] == pytest.approx(100.0), name
    assert math.isinf(m["psnr"]) and m["linf"] == 0 and m["l0"] == 0 and m["delta_e"] == 0


def test_metrics_move_the_right_way_with_more_noise():
    image = textured()
    small, large = image_metrics(image, perturbed(image, 4)), image_metrics(image, perturbed(image, 40))
    for name in ("ssim", "nmi", "psnr"):
        assert 0 < large[name] < small[name] < (100.0 if name != "psnr" else np.inf), name
    for name in ("ahash", "phash", "dhash"):
        assert large[name] <= small[name] <= 100.0
    assert large["phash"] < 100.0
    assert small["linf"] == 4 and large["linf"] == 40


def test_colour_difference_sees_a_tint_that_ssim_barely_sees():
    image = textured(shape=(28, 28, 3))
    tinted = image.copy()
    tinted[..., 0] += 10  # red up by 10 levels everywhere: textured() stays below 245
    m = image_metrics(image, tinted)
    assert m["ssim"] > 99.5 and m["delta_e"] > 2.0  # about 1 is the smallest difference a viewer notices


def test_colour_difference_of_gray_images_is_lightness_at_any_bit_depth():
    image = textured()
    eight = image_metrics(image, image + 5, names=("delta_e",))["delta_e"]
    wide = image.astype(np.uint16) * 257  # the same picture in 16 bits
    sixteen = image_metrics(wide, wide + 5 * 257, names=("delta_e",))["delta_e"]
    assert eight > 1.0 and sixteen == pytest.approx(eight)


def test_l0_counts_positions_not_channel_values():
    image = textured(shape=(28, 28, 3))
    changed = image.copy()
    changed[0, 0, :] += 1  # one position, three values
    changed[5, 5, 1] += 1  # one position, one value
    assert image_metrics(image, changed)["l0"] == pytest.approx(2 / 784)


def test_segmentation_agreement_drops_when_the_object_changes():
    image = textured()
    moved = image.copy()
    moved[8:20, 8:20] = 80
    moved[2:14, 14:26] = 210
    assert (segment(image) == segment(image)).all()
    assert image_metrics(image, moved)["segmentation_agreement"] < 80


def test_report_aggregates_per_class_with_worst_tail():
    originals = np.stack([textured(seed=i) for i in range(20)])
    released = originals.copy()
    released[:10] = [perturbed(x, 8, seed=i) for i, x in enumerate(originals[:10])]
    labels = np.array([0] * 10 + [1] * 10)
    report = utility_report(originals, released, labels)
    assert report["images"] == 20
    assert report["per_class"][1]["ssim"]["mean"] == pytest.approx(100.0)
    assert report["per_class"][0]["ssim"]["mean"] < 100.0
    assert report["overall"]["ssim"]["worst_5pct"] <= report["overall"]["ssim"]["mean"]
    assert report["overall"]["psnr"]["identical"] == 10 and math.isfinite(report["overall"]["psnr"]["mean"])
    assert report["overall"]["l0"]["worst_5pct"] >= report["overall"]["l0"]["mean"]


def _threshold_model(tmp_path, level: float):
    """A TorchScript 'segmentation network': foreground where the gray value exceeds ``level``."""
    import torch

    class Threshold(torch.nn.Module):
        def __init__(self, level: float):
            super().__init__()
            self.level = level

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean(dim=1, keepdim=True) - self.level

    path = tmp_path / "segmenter.pt"
    torch.jit.save(torch.jit.script(Threshold(level)), str(path))
    return path


def test_owner_model_agreement_is_100_for_identical_and_drops_when_labels_flip(tmp_path):
    from medshield.evaluate.utility import ModelSegmenter

    segmenter = ModelSegmenter(_threshold_model(tmp_path, 150 / 255))
    images = np.stack([textured(seed) for seed in range(4)])
    same = utility_report(images, images.copy(), segmenter=segmenter)
    assert same["overall"]["model_segmentation_agreement"]["mean"] == pytest.approx(100.0)
    flipped = images.copy()
    flipped[:, 0, :4] = 255  # 4 background pixels per image pushed over the model's threshold
    report = utility_report(images, flipped, segmenter=segmenter)
    assert report["overall"]["model_segmentation_agreement"]["mean"] == pytest.approx(100 * (1 - 4 / 784))


def test_owner_model_must_be_torchscript(tmp_path):
    from medshield.errors import InputError
    from medshield.evaluate.utility import ModelSegmenter

    bad = tmp_path / "weights.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(InputError, match="not a TorchScript model"):
        ModelSegmenter(bad)
    with pytest.raises(InputError, match="not found"):
        ModelSegmenter(tmp_path / "missing.pt")
