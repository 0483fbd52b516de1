"""Source and victim networks, built by name."""
from __future__ import annotations

import torch
from torch import nn

from .._registry import Registry
from . import densenet, resnet, small, vgg
from .precision import PRECISIONS, resolve_precision, supports_bf16, with_precision

MODELS: Registry = Registry("architecture")
MODELS.register("resnet18")(resnet.resnet18)
MODELS.register("resnet50")(resnet.resnet50)
MODELS.register("vgg11")(vgg.vgg11)
MODELS.register("densenet121")(densenet.densenet121)
MODELS.register("small-cnn")(small.small_cnn)


def list_models(pattern: str = "*") -> list[str]:
    return MODELS.names(pattern)


#: from this side length on, ResNets use the standard ImageNet stem (as MedMNIST's 64-224 px models)
LARGE_IMAGE = 64


def create_model(
    name: str,
    *,
    num_classes: int,
    in_channels: int,
    width: int = 64,
    image_size: int = 28,
    device: torch.device | None = None,
    precision: str = "fp32",
) -> nn.Module:
    """Build an architecture for ``in_channels`` x H x W inputs and ``num_classes`` outputs.

    ResNets get the CIFAR stem below ``LARGE_IMAGE`` px and torchvision's ImageNet stem (7x7
    stride-2 convolution + max-pool) from there on, so a 224 px source model costs what the
    paper's did instead of 64x more. With a ``device`` the model is moved there in its fastest
    memory format and runs in the resolved ``precision`` ("fp32" or "bf16", see ``precision``).
    """
    factory = MODELS.get(name)
    if name.startswith("resnet"):
        model = factory(num_classes=num_classes, in_channels=in_channels, width=width, imagenet_stem=image_size >= LARGE_IMAGE)
    else:
        model = factory(num_classes=num_classes, in_channels=in_channels, width=width)
    if device is None:
        return model
    return with_precision(model.to(device, memory_format=memory_format(device, width)), precision, device)


def memory_format(device: torch.device, width: int) -> torch.memory_format:
    """channels_last makes CPU convolutions ~1.5x faster here; oneDNN (torch 2.14) aborts the
    process on 4-channel channels_last convolutions, so narrow networks keep the default."""
    if device.type == "cpu" and width >= 8:
        return torch.channels_last
    return torch.contiguous_format


__all__ = ["MODELS", "PRECISIONS", "create_model", "list_models", "memory_format", "resolve_precision", "supports_bf16"]
