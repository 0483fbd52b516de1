"""The command line's options that come from the registries: one flag per method parameter (typed
after its default, help text from the methods' docstrings) and the victim recipe's flags."""
from __future__ import annotations

import argparse

from .errors import InputError
from .models import list_models
from .models.training import OPTIMIZERS, SCHEDULES
from .presets import RECIPES
from .protect import list_protections
from .protect.params import method_parameters, parameter_docs
from .units import RADIUS_PARAMS, parse_value


def shown(name: str, value) -> str:
    """A default as a user would type it (radii in pixel values)."""
    if name in RADIUS_PARAMS and isinstance(value, float):
        return f"{value * 255:.3g}"
    if isinstance(value, tuple):
        return ",".join(f"{v:g}" for v in value)
    return str(value)


def typed(name: str, default):
    """An argparse type for parameter ``name``: argparse reports a failure as "invalid <type> value"."""
    def parse(text: str):
        try:
            return parse_value(name, text, default)  # an InputError is a ValueError: argparse's one line
        except InputError as exc:
            if name in RADIUS_PARAMS:  # a radius out of range: say the range in the pixel values typed
                raise argparse.ArgumentTypeError(str(exc)) from None
            raise
    parse.__name__ = "radius" if name in RADIUS_PARAMS else type(default).__name__
    return parse


def method_options() -> list[tuple[str, str, dict]]:
    """One flag per parameter of the registered methods (flag, parameter, argparse kwargs): typed
    after its default, help text from the methods' documented parameters, defaults per method."""
    entries: dict[str, dict[str, tuple]] = {}  # parameter -> method -> (default, doc)
    for method in list_protections():
        docs = parameter_docs(method)
        for name, default in method_parameters(method).items():
            doc = docs.get(name, "").replace("``", "").replace("%", "%%").rstrip(".")
            entries.setdefault(name, {})[method] = (default, doc)
    options = []
    for name, by_method in entries.items():
        first = next(iter(by_method.values()))[0]
        groups: dict[tuple, list[str]] = {}
        for method, (default, doc) in by_method.items():
            groups.setdefault((shown(name, default), doc), []).append(method)
        every = len(by_method) == len(list_protections()) and len(groups) == 1
        parts = []
        for (default_text, doc), methods in groups.items():
            said = f"{doc} (default {default_text})" if not isinstance(first, bool) else doc
            parts.append(said if every else f"{', '.join(methods)}: {said}")
        help_text = ("pixel values. " if name in RADIUS_PARAMS else "") + "; ".join(parts)
        if isinstance(first, bool):
            flag = f"--{'no-' if first else ''}{name.replace('_', '-')}"
            help_text = f"{'off' if first else 'on'} (default {'on' if first else 'off'}): {help_text}"
            options.append((flag, name, {"action": "store_const", "const": not first, "help": help_text}))
        else:
            options.append((f"--{name.replace('_', '-')}", name, {"type": typed(name, first), "help": help_text}))
    return options


PROTECT_OPTIONS = method_options()

VICTIM_OPTIONS = [
    ("--recipe", "recipe_name", {"choices": list(RECIPES), "help": "named victim recipe: paper (SGD, 20,000 iterations), "
                                 "medmnist (official: Adam 1e-3, 100 epochs), cpu; default: the preset's. Options below override it"}),
    ("--arch", "arch", {"choices": list_models(), "help": "victim architecture (resnet18)"}),
    ("--width", "width", {"type": int, "help": "victim base width (64)"}),
    ("--epochs", "epochs", {"type": int}),
    ("--iterations", "iterations", {"type": int, "help": "paper preset: 20000"}),
    ("--batch-size", "batch_size", {"type": int}),
    ("--optimizer", "optimizer", {"choices": OPTIMIZERS}),
    ("--lr", "lr", {"type": float}),
    ("--weight-decay", "weight_decay", {"type": float}),
    ("--schedule", "schedule", {"choices": SCHEDULES}),
    ("--no-augment", "augment", {"action": "store_const", "const": False, "help": "no flip + crop"}),
]


def add_options(p, options):
    for flag, dest, kwargs in options:
        p.add_argument(flag, dest=dest, default=None, **kwargs)


def given(args, options) -> dict:
    return {dest: getattr(args, dest) for _, dest, _ in options if getattr(args, dest) is not None}
