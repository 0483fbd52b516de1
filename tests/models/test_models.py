"""Victim and source architectures: shapes, channel counts, and the standard sizes at width 64."""
import pytest
import torch

from medshield.errors import InputError
from medshield.models import create_model, list_models


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "vgg11", "densenet121", "small-cnn"])
@pytest.mark.parametrize("channels, size", [(1, 28), (3, 28), (3, 64)])
def test_every_architecture_takes_native_channels_and_sizes(name, channels, size):
    model = create_model(name, num_classes=5, in_channels=channels, width=8).eval()
    with torch.no_grad():
        assert model(torch.rand(2, channels, size, size)).shape == (2, 5)


@pytest.mark.parametrize("name, millions", [("resnet18", 11.17), ("resnet50", 23.5), ("vgg11", 9.23), ("densenet121", 6.95)])
def test_width_64_is_the_standard_cifar_network(name, millions):
    model = create_model(name, num_classes=10, in_channels=3, width=64)
    assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(millions, rel=0.02)


def test_unknown_architecture_is_an_input_error():
    assert "vgg11" in list_models()
    with pytest.raises(InputError, match="unknown architecture"):
        create_model("alexnet", num_classes=2, in_channels=1)


def test_large_images_get_the_imagenet_stem_and_small_ones_the_cifar_stem():
    small = create_model("resnet18", num_classes=2, in_channels=1, width=8, image_size=28)
    large = create_model("resnet18", num_classes=2, in_channels=1, width=8, image_size=224)
    assert small.stem[0].kernel_size == (3, 3) and small.stem[0].stride == (1, 1)
    assert large.stem[0].kernel_size == (7, 7) and isinstance(large.stem[-1], torch.nn.MaxPool2d)
    with torch.no_grad():
        assert large.eval()(torch.rand(1, 1, 224, 224)).shape == (1, 2)
