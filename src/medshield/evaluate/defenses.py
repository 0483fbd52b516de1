"""What an unauthorized trainer can do to a release before or while training on it.

Two kinds, each built by name with its parameters (``create_defense("jpeg", quality=10)``):

- *preprocessing* (``kind="data"``): applied once to the downloaded training images, stored
  levels in (8- or 16-bit), the same dtype and range out: low-pass filters (mean, median, Gaussian; 3x3, paper Table 3),
  central crop resized back (Table 4), JPEG, bit-depth reduction, grayscale.
- *training-time* (``kind="train"``): applied to every float batch while training: CutOut,
  MixUp, CutMix, PGD adversarial training, and a UEraser-style strong random augmentation
  (the loss is the maximum over several augmented draws).

Settings follow APBench (anchors.md) unless the paper gives them. Test images are never
touched: the adversary wants a model that works on real data.
"""
from __future__ import annotations

import inspect
import io
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage

from .._registry import Registry
from ..errors import InputError
from ..models.pgd import adversarial
from ..models.transforms import random_boxes
from ..units import parse_assignments

DEFENSES: Registry = Registry("defense")


@dataclass
class Defense:
    """A named defense with its parameters; ``kind`` is "data" or "train"."""

    name: str
    kind: str
    params: dict = field(default_factory=dict)
    note: str = ""

    def apply(self, images: np.ndarray) -> np.ndarray:  # data defenses
        return images

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "params": self.params, **({"note": self.note} if self.note else {})}


def list_defenses() -> list[str]:
    return DEFENSES.names()


def create_defense(name: str, **params) -> Defense:
    try:
        return DEFENSES.get(name)(**params)
    except TypeError as exc:
        raise InputError(f"defense {name!r}: {exc}") from None


def defense_parameters(name: str) -> dict:
    """A defense's parameters with their defaults (from its factory's signature)."""
    return {key: p.default for key, p in inspect.signature(DEFENSES.get(name)).parameters.items()}


def parse_defense(spec: str) -> Defense:
    """``"jpeg:quality=10"`` or ``"median"`` -> Defense (the grid command's syntax; radii in pixel values)."""
    name, _, rest = spec.partition(":")
    params = parse_assignments(list(filter(None, rest.split(","))), defense_parameters(name), f"defense {name!r} ({spec})")
    return create_defense(name, **params)


# --- preprocessing -------------------------------------------------------------------------

def _top(images: np.ndarray) -> int:
    """The largest stored level: 255 for 8-bit data, 65535 for 16-bit."""
    return int(np.iinfo(images.dtype).max)


def _spatial(images: np.ndarray, function) -> np.ndarray:
    """Apply a 2-D filter to each image and channel; stored layout (N, H, W[, C]) and dtype kept."""
    out, top = np.empty_like(images), _top(images)
    for i, image in enumerate(images):
        if image.ndim == 2:
            out[i] = np.clip(np.rint(function(image.astype(np.float32))), 0, top)
        else:
            for c in range(image.shape[-1]):
                out[i, ..., c] = np.clip(np.rint(function(image[..., c].astype(np.float32))), 0, top)
    return out


class _Data(Defense):
    def __init__(self, name, function, **params):
        super().__init__(name=name, kind="data", params=params)
        self._function = function

    def apply(self, images):
        return self._function(images)


@DEFENSES.register("mean")
def mean_filter(size: int = 3) -> Defense:
    return _Data("mean", lambda x: _spatial(x, lambda a: ndimage.uniform_filter(a, size, mode="reflect")), size=size)


@DEFENSES.register("median")
def median_filter(size: int = 3) -> Defense:
    return _Data("median", lambda x: _spatial(x, lambda a: ndimage.median_filter(a, size, mode="reflect")), size=size)


@DEFENSES.register("gaussian")
def gaussian_filter(sigma: float = 0.1, size: int = 3) -> Defense:
    """APBench's blur: 3x3 kernel, sigma 0.1 (nearly the identity; raise sigma for a stronger blur)."""
    radius = size // 2
    return _Data("gaussian", lambda x: _spatial(x, lambda a: ndimage.gaussian_filter(a, sigma, mode="reflect", radius=radius)),
                 sigma=sigma, size=size)


@DEFENSES.register("crop")
def central_crop(fraction: float = 0.75) -> Defense:
    """Keep the central ``fraction`` of each side and resize back (bilinear), as a reader would zoom."""
    if not 0 < fraction <= 1:
        raise InputError(f"defense 'crop': fraction must be in (0, 1], got {fraction}")

    def apply(images):
        x = torch.from_numpy(images).float()
        x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
        h, w = x.shape[-2:]
        ch, cw = max(1, round(h * fraction)), max(1, round(w * fraction))
        top, left = (h - ch) // 2, (w - cw) // 2
        x = F.interpolate(x[..., top : top + ch, left : left + cw], size=(h, w), mode="bilinear", align_corners=False)
        x = (x[:, 0] if images.ndim == 3 else x.permute(0, 2, 3, 1)).contiguous().numpy()
        return np.clip(np.rint(x), 0, _top(images)).astype(images.dtype)

    return _Data("crop", apply, fraction=fraction)


@DEFENSES.register("jpeg")
def jpeg(quality: int = 10) -> Defense:
    """JPEG at ``quality``; JPEG is 8-bit, so 16-bit data goes through 8 bits and back, as a trainer's would."""
    def apply(images):
        out, scale = np.empty_like(images), _top(images) / 255
        for i, image in enumerate(images):
            buffer = io.BytesIO()
            Image.fromarray(np.rint(image / scale).astype(np.uint8)).save(buffer, format="JPEG", quality=int(quality))
            out[i] = np.rint(np.asarray(Image.open(buffer), np.float64) * scale).reshape(image.shape)
        return out

    return _Data("jpeg", apply, quality=quality)


@DEFENSES.register("bitdepth")
def bit_depth(bits: int = 2) -> Defense:
    """Keep the top ``bits`` bits of the stored depth, each level mapped to the middle of its bin."""
    if not 1 <= bits <= 8:
        raise InputError(f"defense 'bitdepth': bits must be 1..8, got {bits}")

    def apply(x):
        shift = 8 * x.dtype.itemsize - int(bits)
        return (((x >> shift) << shift) + (1 << shift) // 2).astype(x.dtype)

    return _Data("bitdepth", apply, bits=bits)


@DEFENSES.register("grayscale")
def grayscale() -> Defense:
    def apply(images):
        if images.ndim == 3:
            return images
        gray = np.rint(images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).astype(images.dtype)
        return np.repeat(gray[..., None], images.shape[-1], axis=-1)

    d = _Data("grayscale", apply)
    d.note = "no-op on single-channel datasets"
    return d


# --- training-time -------------------------------------------------------------------------

class _Train(Defense):
    def __init__(self, name, **params):
        super().__init__(name=name, kind="train", params=params)

    def loss(self, model, x, y, generator, num_classes) -> tuple[torch.Tensor, torch.Tensor]:
        """Training loss on a float batch and the logits used for train accuracy."""
        logits = model(x)
        return F.cross_entropy(logits, y), logits


class _CutOut(_Train):
    def loss(self, model, x, y, generator, num_classes):
        n, _, h, w = x.shape
        size = self.params["size"] or max(1, round(min(h, w) / 2))
        box = random_boxes(n, h, w, torch.full((n,), (size / h) * (size / w)), generator).to(x.device)
        return super().loss(model, x * ~box.unsqueeze(1), y, generator, num_classes)


@DEFENSES.register("cutout")
def cutout(size: int | None = None) -> Defense:
    """One zeroed square per image (APBench: 16 px at 32 px; default: half the image side)."""
    return _CutOut("cutout", size=size)


class _Mix(_Train):
    def loss(self, model, x, y, generator, num_classes):
        alpha = self.params["alpha"]
        lam = float(torch.distributions.Beta(alpha, alpha).sample()) if alpha > 0 else 1.0
        perm = torch.randperm(len(x), generator=generator).to(x.device)
        if self.name == "mixup":
            mixed = lam * x + (1 - lam) * x[perm]
        else:
            n, _, h, w = x.shape
            box = random_boxes(1, h, w, torch.tensor([1 - lam]), generator)[0].to(x.device)
            mixed = torch.where(box, x[perm], x)
            lam = 1 - box.float().mean().item()
        logits = model(mixed)
        return lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(logits, y[perm]), logits


@DEFENSES.register("mixup")
def mixup(alpha: float = 1.0) -> Defense:
    return _Mix("mixup", alpha=alpha)


@DEFENSES.register("cutmix")
def cutmix(alpha: float = 1.0) -> Defense:
    return _Mix("cutmix", alpha=alpha)


class _Adversarial(_Train):
    def loss(self, model, x, y, generator, num_classes):
        example = adversarial(model, x, y, eps=self.params["eps"], steps=self.params["steps"],
                              step_size=self.params["step_size"], generator=generator)
        return super().loss(model, example, y, generator, num_classes)


@DEFENSES.register("adversarial")
def adversarial_training(eps: float = 8 / 255, steps: int = 10, step_size: float | None = None) -> Defense:
    """PGD adversarial training (Madry et al.); eps and step as fractions of the range, like every
    radius (``adversarial:eps=8`` in a spec is 8/255); step eps/4 unless given. One step of 1.25 eps
    from a random start is "fast" FGSM-RS adversarial training (Wong et al. 2020), hence steps up to 2 eps."""
    if not 0 < eps <= 1 or (step_size is not None and not 0 < step_size <= 2 * eps):
        raise InputError(f"adversarial: eps and step_size are fractions of the range (8/255, step up to 2 eps), got "
                         f"eps={eps!r}, step_size={step_size!r}; in a spec they are pixel values (adversarial:eps=8)")
    return _Adversarial("adversarial", eps=eps, steps=steps, step_size=step_size if step_size is not None else eps / 4)


class _StrongAugment(_Train):
    def loss(self, model, x, y, generator, num_classes):
        losses, logits_first = [], None
        for _ in range(self.params["repeats"]):
            logits = model(_strong_augment(x, generator))
            losses.append(F.cross_entropy(logits, y, reduction="none"))
            logits_first = logits if logits_first is None else logits_first
        return torch.stack(losses).max(dim=0).values.mean(), logits_first


def _strong_augment(x, generator, p: float = 0.5):
    """Per image: flip, random resized crop, brightness/contrast jitter, channel shuffle (colour),
    additive noise and random erasing, each drawn with probability ``p`` as in UEraser (kornia's
    default 0.5); written as batched tensor ops. All of them at once on every image leaves too
    little of a 28 px image to learn from: a clean-trained ResNet-18 stayed at the majority class."""
    n, c, h, w = x.shape
    dev = x.device

    def chosen():
        return (torch.rand(n, generator=generator) < p).to(dev).view(n, 1, 1, 1)

    x = torch.where(chosen(), x.flip(3), x)
    scale = (0.6 + 0.4 * torch.rand(n, generator=generator)).to(dev)
    shift = ((torch.rand(n, 2, generator=generator) * 2 - 1).to(dev) * (1 - scale).unsqueeze(1))
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, :, 2] = scale, scale, shift
    cropped = F.grid_sample(x, F.affine_grid(theta, x.shape, align_corners=False), align_corners=False, padding_mode="reflection")
    x = torch.where(chosen(), cropped, x)
    brightness = ((torch.rand(n, generator=generator) - 0.5) * 0.8).to(dev).view(n, 1, 1, 1)
    contrast = (0.5 + torch.rand(n, generator=generator)).to(dev).view(n, 1, 1, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = torch.where(chosen(), (x - mean) * contrast + mean + brightness, x)
    if c > 1:
        order = torch.stack([torch.randperm(c, generator=generator) for _ in range(n)]).to(dev)
        x = torch.where(chosen(), x.gather(1, order.view(n, c, 1, 1).expand_as(x)), x)
    x = torch.where(chosen(), x + 0.05 * torch.randn(x.shape, generator=generator).to(dev), x)
    erase = random_boxes(n, h, w, 0.02 + 0.2 * torch.rand(n, generator=generator), generator).to(dev).unsqueeze(1) & chosen()
    return torch.where(erase, torch.rand(n, 1, 1, 1, generator=generator).to(dev), x).clamp(0, 1)


@DEFENSES.register("strong-augment")
def strong_augment(repeats: int = 5) -> Defense:
    """UEraser-style: strong random augmentation, loss = max over ``repeats`` draws per image."""
    return _StrongAugment("strong-augment", repeats=repeats)
