"""Train a victim the way an unauthorized user would, and score it on real test data."""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DistributedSampler
from tqdm.auto import tqdm

from .._distributed import World
from .._runtime import pick_device, seed_everything
from ..data.medmnist import MedMNISTData
from ..data.tensors import to_float, to_tensor, value_range
from ..errors import InputError
from ..models import MODELS, create_model, memory_format, resolve_precision
from ..models.augment import flip_crop
from ..models.training import OPTIMIZERS, SCHEDULES, make_optimizer, make_schedule, train_step
from ..presets import preset, recipe_settings
from .defenses import Defense
from .metrics import classification_metrics



@dataclass
class Recipe:
    """How the victim is trained. Defaults: the SALM paper's (Appendix B.2).

    ``iterations`` (the paper's 20,000) wins over ``epochs`` when both are set.
    """

    arch: str = "resnet18"
    width: int = 64
    epochs: int | None = None
    iterations: int | None = 20_000
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "multistep"
    lr_decay: float = 0.1
    lr_milestones: tuple[float, ...] = (0.5, 0.75)
    augment: bool = True

    def __post_init__(self):
        if self.arch not in MODELS:
            raise InputError(f"unknown victim architecture {self.arch!r}; available: {', '.join(MODELS.names())}")
        if self.optimizer not in OPTIMIZERS:
            raise InputError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise InputError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.epochs is None and self.iterations is None:
            raise InputError("set epochs or iterations for the victim")
        for name in ("epochs", "iterations", "batch_size", "width"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InputError(f"{name} must be at least 1, got {value}")
        self.lr_milestones = tuple(self.lr_milestones)

    @classmethod
    def named(cls, preset_name: str, options: dict | None = None, recipe_name: str | None = None) -> "Recipe":
        """The named recipe (else the preset's victim settings) with the user's options on top.

        Options that give epochs and no iteration count train for epochs.
        """
        base = recipe_settings(recipe_name) if recipe_name else preset(preset_name, "victim")
        settings = {**base, **(options or {})}
        if settings.get("epochs") is not None and "iterations" not in (options or {}):
            settings["iterations"] = None
        return cls(**settings)

    def total_iterations(self, n_train: int) -> int:
        if self.iterations is not None:
            return self.iterations
        return self.epochs * math.ceil(n_train / self.batch_size)


def _predict(model, x: torch.Tensor, device, maximum: int, batch_size: int = 512) -> np.ndarray:
    model.eval()
    outputs = []
    with torch.no_grad():
        for chunk in x.split(batch_size):
            outputs.append(F.softmax(model(to_float(chunk, maximum).to(device)), dim=1).cpu())
    return torch.cat(outputs).numpy()


def _score(model, x_test: torch.Tensor, device, maximum: int, world: World | None) -> np.ndarray | None:
    """Test-split probabilities. Under torchrun each process scores its contiguous share (the processes
    hold one model after :meth:`World.settle`) and rank 0 gets them all in order; the others get None."""
    if world is None:
        return _predict(model, x_test, device, maximum)
    shares = world.gather(_predict(model, x_test.tensor_split(world.size)[world.rank], device, maximum))
    return np.concatenate(shares) if world.main else None


def _inputs(train: MedMNISTData, test: MedMNISTData, defense: Defense | None):
    """The victim's train tensors (after a data defense) and the real test split, with the value range."""
    train_images = train.images("train")
    if defense is not None and defense.kind == "data":
        train_images = defense.apply(train_images)
    x_test = to_tensor(test.images("test"))
    return (to_tensor(train_images), torch.from_numpy(train.labels("train")), x_test, test.labels("test"),
            value_range(train))


def _batches(n: int, batch_size: int, generator: torch.Generator, world: World | None, seed: int, epoch: int):
    """One epoch's batches of indices: a shuffled pass, or under torchrun this process's share of it
    (PyTorch's ``DistributedSampler``: each of the W processes takes batch_size / W images a step, so the
    W together take the global batch one process takes)."""
    if world is None:
        return torch.randperm(n, generator=generator).split(batch_size)
    sampler = DistributedSampler(range(n), num_replicas=world.size, rank=world.rank, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    return torch.tensor(list(sampler)).split(batch_size // world.size)


def _epoch(step, batches, x, y, *, recipe: Recipe, maximum: int, device, generator, iteration: int, total: int,
           bar) -> tuple[int, int, int, float]:
    """One pass over ``batches``, or what is left of ``total`` iterations: the iteration reached, and the
    images seen, classified right and their summed loss."""
    seen = correct = loss_sum = 0
    for index in batches:
        if iteration >= total:
            break
        xb, yb = to_float(x[index], maximum).to(device), y[index].to(device)
        if recipe.augment:
            xb = flip_crop(xb, generator)
        value, logits = step(xb, yb)
        iteration += 1
        seen += len(yb)
        correct += (logits.argmax(1) == yb).sum().item()
        loss_sum += value.item() * len(yb)
        bar.update(1)
        bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
    return iteration, seen, correct, loss_sum


def check_batch(recipe: Recipe, world: World | None) -> None:
    """Under torchrun each process takes an equal share of every batch."""
    if world is not None and recipe.batch_size % world.size:
        raise InputError(f"torchrun: the victim's batch size ({recipe.batch_size}) must be a multiple of the number of "
                         f"processes ({world.size}); set --batch-size or start another number of processes")


def train_victim(
    train: MedMNISTData,
    test: MedMNISTData,
    recipe: Recipe,
    *,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    defense: Defense | None = None,
    precision: str = "auto",
    world: World | None = None,
) -> dict | None:
    """Train ``recipe`` on ``train``'s train split, score on ``test``'s test split.

    ``precision`` ("auto", "fp32", "bf16") is the victim network's (see ``models.precision``).
    Under torchrun (``world``) the processes train and score one victim data-parallel; rank 0
    returns the results, the others None.

    Returns the final metrics, the peak test accuracy over epochs (early stopping is a defense
    an adversary can use) and a per-epoch history of train loss/accuracy and test accuracy.
    """
    check_batch(recipe, world)
    dev = pick_device(device) if world is None else world.device(pick_device(device))
    if world is not None:
        world.start(dev)
    scores = world is None or world.main
    precision = resolve_precision(precision, dev, "victim")
    generator = seed_everything(seed)
    x, y, x_test, y_test, maximum = _inputs(train, test, defense)
    total = recipe.total_iterations(len(x))
    model, step, draws = _victim(recipe, train.num_classes, x, total, dev, precision, defense, generator, world)
    start = time.perf_counter()
    history = []
    iteration, epoch = 0, 0
    bar = tqdm(total=total, desc=f"victim {recipe.arch}", disable=not (progress and scores), leave=False)
    while iteration < total:
        batches = _batches(len(x), recipe.batch_size, generator, world, seed, epoch)
        iteration, seen, correct, loss_sum = _epoch(step, batches, x, y, recipe=recipe, maximum=maximum, device=dev,
                                                    generator=draws, iteration=iteration, total=total, bar=bar)
        epoch += 1
        probabilities = _score(model, x_test, dev, maximum, world)
        if scores:
            test_acc = float((probabilities.argmax(1) == y_test).mean())
            history.append({"epoch": epoch, "iteration": iteration, "train_loss": loss_sum / seen,
                            "train_accuracy": correct / seen, "test_accuracy": test_acc})
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}", test=f"{test_acc:.3f}")
    bar.close()
    if not scores:
        return None
    return {
        **classification_metrics(y_test, probabilities),  # the model the last epoch scored
        "peak_test_accuracy": max(h["test_accuracy"] for h in history),
        "train_seconds": time.perf_counter() - start,
        "recipe": asdict(recipe),
        "defense": defense.describe() if defense is not None else None,
        "seed": seed,
        "precision": precision,
        **({"processes": world.size} if world is not None else {}),
        "history": history,
    }


def _victim(recipe: Recipe, num_classes: int, x: np.ndarray, total: int, dev, precision: str,
            defense: Defense | None, generator, world: World | None):
    """The victim network and one optimizer step on it (the defense's loss when it trains with one);
    also the generator its augmentations draw from (under torchrun, each process its own)."""
    fmt = memory_format(dev, recipe.width)
    model = create_model(recipe.arch, num_classes=num_classes, in_channels=x.shape[1], width=recipe.width,
                         image_size=min(x.shape[-2:]), device=dev, precision=precision)
    trained = model if world is None else world.data_parallel(model, dev)
    draws = generator if world is None else world.generator(generator)
    optimizer = make_optimizer(model, recipe.optimizer, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    scheduler = make_schedule(optimizer, recipe.schedule, total=total, milestones=recipe.lr_milestones, decay=recipe.lr_decay)
    loss = None  # cross-entropy, unless the adversary trains with a defense of its own
    if defense is not None and defense.kind == "train":
        loss = lambda model, xb, yb: defense.loss(model, xb, yb, draws, num_classes)  # noqa: E731

    def step(xb, yb):
        result = train_step(trained, optimizer, scheduler, xb.contiguous(memory_format=fmt), yb, loss)
        if world is not None:
            world.settle(model)
        return result

    return model, step, draws
