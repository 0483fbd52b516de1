"""One unit for every radius, and one way to read a parameter someone typed.

Inside medshield a radius or step (``eps``, ``step_size``) is a fraction of the pixel range:
8/255, for methods and defenses alike. People write pixel values: ``--eps 8``,
``adversarial:eps=8``, ``--param step_size=1.6``, or explicitly ``8/255``; :func:`radius` is the
one place that converts them.
"""
from __future__ import annotations

from .errors import InputError

RADIUS_PARAMS = ("eps", "step_size", "adv_eps", "adv_step_size")
TRUE, FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def radius(text: str | float) -> float:
    """Pixel values of a 0..255 range ("8", "1.6", "8/255") -> a fraction of the range."""
    value = str(text).strip()
    try:
        if value.endswith("/255"):
            return float(value[:-4]) / 255.0
        return float(value) / 255.0
    except ValueError:
        raise InputError(f"a radius is in pixel values (8 = 8/255), got {text!r}") from None


def parse_value(name: str, text: str, default):
    """``text`` as the type of ``default`` (radii via :func:`radius`); one error line when it is not."""
    if name in RADIUS_PARAMS:
        value = radius(text)
        if not 0 < value <= 1:  # said here, in the pixel values the person typed, not in fractions
            raise InputError(f"{name} is in pixel values of a 0..255 range, above 0 and at most 255 (8 = 8/255), "
                             f"got {text!r}")
        return value
    try:
        if isinstance(default, bool):
            if text.lower() not in TRUE + FALSE:
                raise ValueError
            return text.lower() in TRUE
        if isinstance(default, tuple):
            return tuple(float(part) for part in text.split(","))
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if default is None:  # an optional number (patch_size, stop_accuracy): the narrowest type that reads it
            for kind in (int, float):
                try:
                    return kind(text)
                except ValueError:
                    pass
        return text
    except ValueError:
        if isinstance(default, bool):
            raise InputError(f"{name}: expected true or false, got {text!r}") from None
        raise InputError(f"{name} needs a number ({type(default).__name__}), got {text!r}") from None


def parse_assignments(items: list[str], defaults: dict, what: str) -> dict:
    """``["k=0.2", "sparse=true"]`` -> parameters typed after ``defaults`` (unknown names: one error line)."""
    params = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise InputError(f"{what}: write KEY=VALUE, got {item!r}")
        if name not in defaults:
            raise InputError(f"{what}: no parameter {name!r}; it takes: {', '.join(defaults)}")
        params[name] = parse_value(name, text.strip(), defaults[name])
    return params
