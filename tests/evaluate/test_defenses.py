"""Each defense transforms data as specified, and training with it runs."""
import numpy as np
import pytest
import torch

from medshield.data import load
from medshield.errors import InputError
from medshield.evaluate import Recipe, train_victim
from medshield.evaluate.defenses import create_defense, list_defenses, parse_defense


def flat(value=100, shape=(2, 16, 16)):
    return np.full(shape, value, dtype=np.uint8)


def test_median_filter_removes_an_isolated_spike_mean_spreads_it():
    images = flat()
    images[0, 8, 8] = 255
    assert (create_defense("median").apply(images) == 100).all()
    smoothed = create_defense("mean").apply(images)
    assert smoothed[0, 8, 8] == round(100 + 155 / 9) and smoothed[0, 7, 7] == smoothed[0, 8, 8]


def test_gaussian_blur_is_a_weighted_low_pass():
    images = flat()
    images[0, 8, 8] = 255
    weak, strong = create_defense("gaussian").apply(images), create_defense("gaussian", sigma=1.0).apply(images)
    assert weak[0, 8, 8] > strong[0, 8, 8] > 100 and strong[0, 7, 8] > 100 and strong[0, 5, 8] == 100


def test_bit_depth_keeps_only_the_top_bits():
    images = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    out = create_defense("bitdepth", bits=2).apply(images)
    assert sorted(np.unique(out)) == [32, 96, 160, 224]


def test_jpeg_changes_a_noisy_image_and_lower_quality_changes_it_more():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(2, 28, 28, 3), dtype=np.uint8)
    q10, q75 = create_defense("jpeg", quality=10).apply(images), create_defense("jpeg", quality=75).apply(images)
    assert q10.shape == images.shape and q10.dtype == np.uint8
    error = lambda out: np.abs(out.astype(int) - images).mean()  # noqa: E731
    assert error(q10) > error(q75) > 0


def test_grayscale_is_a_noop_on_one_channel_and_equalizes_channels_otherwise():
    gray = np.random.default_rng(0).integers(0, 256, size=(2, 8, 8), dtype=np.uint8)
    defense = create_defense("grayscale")
    assert np.array_equal(defense.apply(gray), gray) and "no-op" in defense.describe()["note"]
    colour = np.random.default_rng(1).integers(0, 256, size=(2, 8, 8, 3), dtype=np.uint8)
    out = defense.apply(colour)
    assert out.shape == colour.shape and (out[..., 0] == out[..., 2]).all()


def test_central_crop_zooms_into_the_centre():
    images = np.zeros((1, 16, 16), np.uint8)
    images[0, 4:12, 4:12] = 200  # a centred square covering half the side
    out = create_defense("crop", fraction=0.5).apply(images)
    assert out.shape == images.shape and (out[0, 2:14, 2:14] == 200).all()


def test_cutout_zeroes_a_square_and_mixup_blends():
    torch.manual_seed(0)
    seen = {}

    def model(x):
        seen["x"] = x
        return torch.zeros(len(x), 2, requires_grad=True)

    x, y = torch.ones(4, 1, 28, 28), torch.tensor([0, 1, 0, 1])
    create_defense("cutout").loss(model, x, y, torch.Generator().manual_seed(0), 2)
    zeros = (seen["x"] == 0).flatten(1).sum(1)
    assert (zeros > 0).all() and (zeros <= 14 * 14).all()
    x = torch.arange(4).float().view(4, 1, 1, 1).expand(4, 1, 8, 8).clone()
    create_defense("mixup").loss(model, x, y, torch.Generator().manual_seed(0), 2)
    assert not torch.equal(seen["x"], x) and seen["x"].min() >= 0 and seen["x"].max() <= 3


def test_registry_and_spec_parsing():
    assert {"mean", "median", "gaussian", "crop", "jpeg", "bitdepth", "grayscale", "cutout", "mixup", "cutmix",
            "adversarial", "strong-augment"} <= set(list_defenses())
    assert parse_defense("jpeg:quality=30").params == {"quality": 30}
    assert parse_defense("adversarial:eps=4").params["step_size"] == pytest.approx(1 / 255)  # pixel values in specs
    fast = parse_defense("adversarial:eps=8,steps=1,step_size=10").params  # FGSM-RS: one step of 1.25 eps
    assert fast["steps"] == 1 and fast["step_size"] == pytest.approx(10 / 255)
    with pytest.raises(InputError, match="up to 2 eps"):
        parse_defense("adversarial:eps=4,step_size=9")
    assert parse_defense("adversarial:eps=4/255").params["eps"] == create_defense("adversarial", eps=4 / 255).params["eps"]
    with pytest.raises(InputError, match="unknown defense"):
        parse_defense("magic")
    with pytest.raises(InputError, match="needs a number"):
        parse_defense("jpeg:quality=high")
    with pytest.raises(InputError, match="defense 'jpeg'"):
        parse_defense("jpeg:level=3")


@pytest.mark.parametrize("spec", ["median", "cutmix", "adversarial:steps=2", "strong-augment:repeats=2"])
def test_training_with_each_kind_of_defense_runs_and_is_recorded(tiny_npz, spec):
    data = load(str(tiny_npz))
    recipe = Recipe(arch="small-cnn", width=8, epochs=1, iterations=None)
    result = train_victim(data, data, recipe, seed=0, progress=False, defense=parse_defense(spec))
    assert result["defense"]["name"] == spec.split(":")[0] and 0 <= result["test_accuracy"] <= 1


@pytest.mark.parametrize("eps", [4, 8])
def test_adversarial_training_trains_on_inputs_within_its_radius(eps):
    from medshield.models import create_model

    seen = []

    class Recording(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = create_model("small-cnn", num_classes=3, in_channels=1, width=4, image_size=28)

        def forward(self, x):
            seen.append(x.detach().clone())
            return self.net(x)

    generator = torch.Generator().manual_seed(0)
    x = torch.rand((6, 1, 28, 28), generator=generator)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    loss, _ = parse_defense(f"adversarial:eps={eps},steps=3").loss(Recording(), x, y, generator, 3)
    trained_on = seen[-1]  # the last forward pass is the training step's
    assert len(seen) == 4 and loss.requires_grad
    assert (trained_on - x).abs().max() <= eps / 255 + 1e-6
    assert (trained_on - x).abs().max() > eps / 255 / 2  # it did move the inputs
    assert trained_on.min() >= 0 and trained_on.max() <= 1


def test_strong_augment_draws_each_ingredient_with_probability_half():
    """UEraser draws each augmentation with p = 0.5; applying all of them to every image left a
    clean-trained ResNet-18 on 28 px BloodMNIST at the majority class."""
    from medshield.evaluate.defenses import _strong_augment

    generator = torch.Generator().manual_seed(0)
    x = torch.rand((2000, 1, 16, 16), generator=generator) * 0.5 + 0.25
    untouched = (_strong_augment(x, generator) == x).flatten(1).all(1).float().mean().item()
    assert 0.015 < untouched < 0.06  # five ingredients on a gray image, none drawn: 1/32
    assert (_strong_augment(x, generator, p=1.0) == x).flatten(1).all(1).sum() == 0


def test_adversarial_training_through_train_victim_stays_within_its_radius(tiny_npz, monkeypatch):
    """End to end (the training loop, not only the defense's loss): every batch a victim trains on
    under ``adversarial:eps=4`` lies within 4/255 of real training images and in [0, 1]."""
    from medshield.evaluate import train as train_module

    trained_on = []
    build = train_module.create_model

    def recording_model(*args, **kwargs):
        net = build(*args, **kwargs)
        net.register_forward_pre_hook(lambda module, inputs: trained_on.append(inputs[0].detach().clone())
                                      if module.training else None)
        return net

    monkeypatch.setattr(train_module, "create_model", recording_model)
    data = load(str(tiny_npz))
    recipe = Recipe(arch="small-cnn", width=4, epochs=1, iterations=None, augment=False, batch_size=40)
    train_victim(data, data, recipe, seed=0, progress=False, defense=parse_defense("adversarial:eps=4,steps=2"))
    clean = torch.from_numpy(data.images("train")).float().div(255).flatten(1)
    assert len(trained_on) == 3  # 120 images in batches of 40
    for batch in trained_on:
        distance = (batch.flatten(1)[:, None, :] - clean[None]).abs().amax(dim=2).min(dim=1).values
        assert distance.max() <= 4 / 255 + 1e-6 and distance.max() > 1 / 255
        assert batch.min() >= 0 and batch.max() <= 1


def test_data_defenses_keep_a_16_bit_folder_16_bit(tmp_path):
    """A 16-bit folder's images stay 16-bit and keep their range under every data defense (they were
    clipped to 255 and cast to uint8 before)."""
    from PIL import Image as PILImage

    from medshield.data.folder import load_folder

    rng = np.random.default_rng(0)
    smooth = np.linspace(2000, 60000, 16 * 16).reshape(16, 16)
    for i in range(4):
        (tmp_path / f"c{i % 2}").mkdir(exist_ok=True)
        image = np.clip(smooth + rng.normal(0, 300, smooth.shape), 0, 65535).astype(np.uint16)
        PILImage.fromarray(image).save(tmp_path / f"c{i % 2}" / f"{i}.png")
    images = np.array(load_folder(tmp_path).images("train"))
    assert images.dtype == np.uint16 and images.max() > 255
    for spec in ("mean", "median", "gaussian", "crop", "jpeg:quality=75", "jpeg:quality=10", "bitdepth:bits=4", "grayscale"):
        out = parse_defense(spec).apply(images)
        assert out.dtype == np.uint16 and out.shape == images.shape, spec
        assert np.abs(out.astype(np.int64) - images).mean() < 0.1 * 65535, spec  # the same images, not a collapsed range
    assert len(np.unique(parse_defense("bitdepth:bits=2").apply(images))) <= 4
