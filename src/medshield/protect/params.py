"""What a method takes: its parameters with their defaults, their documentation, and the one place
a method is built from a preset and the user's settings (``create_protection``).

Parameters and documentation come from the classes themselves (signatures and numpy-style "Parameters" sections of the
docstrings, walking the class hierarchy), so ``medshield methods``, the ``protect`` flags and
their help text cannot drift from the code.
"""
from __future__ import annotations

import inspect
import re

from ..errors import InputError
from ..presets import preset as preset_settings
from ._source import SourceModel
from .base import PROTECTIONS, Protection

ENTRY = re.compile(r"^    (\w+) : (.+)$")


def _owners(method: str) -> list[type]:
    """The classes whose ``__init__`` defines the method's parameters, base first (and ``SourceModel``
    where a class takes ``**source``)."""
    owners = []
    for cls in reversed(PROTECTIONS.get(method).__mro__):
        if "__init__" in vars(cls):
            owners.append(cls)
            if any(p.kind is p.VAR_KEYWORD and name == "source"
                   for name, p in inspect.signature(cls.__init__).parameters.items()):
                owners.append(SourceModel)
    return owners


def method_parameters(method: str) -> dict:
    """Every parameter of a method with its default."""
    cls, params = PROTECTIONS.get(method), {}
    for owner in _owners(method):
        if owner is SourceModel:
            params.update({**SourceModel().settings(), **cls.source_defaults})
            continue
        params.update({name: p.default for name, p in inspect.signature(owner.__init__).parameters.items()
                       if p.kind is p.KEYWORD_ONLY})
    return params


def parameter_docs(method: str) -> dict[str, str]:
    """One line per documented parameter: its description (the most derived class's wins)."""
    docs = {}
    for owner in _owners(method):
        lines = ["    " + line for line in (inspect.getdoc(owner) or "").splitlines()]  # as written in a class body
        name, fresh = None, False
        for line in lines:
            entry = ENTRY.match(line)
            if entry:  # an entry without a description keeps what a base class said
                name, fresh = entry.group(1), True
                docs.setdefault(name, "")
            elif name and line.startswith("        "):
                docs[name] = line.strip() if fresh else f"{docs[name]} {line.strip()}"
                fresh = False
            else:
                name = None
    return docs


def create_protection(name: str, preset: str | None = None, **params) -> Protection:
    """Build a method by name: its published defaults, then the named ``preset``'s settings that it
    takes (the preset's common ones, then the method's own), then ``params``. A parameter the method
    does not take is refused in one line that lists those it does."""
    accepted = method_parameters(name)
    unknown = [key for key in params if key not in accepted]
    if unknown:
        raise InputError(f"method {name!r} has no parameter {unknown[0]!r}; it takes: {', '.join(accepted)}")
    settings = {}
    if preset is not None:
        common = preset_settings(preset, "protect")
        settings = {key: value for key, value in common.items() if key in accepted}
        settings |= PROTECTIONS.get(name).presets.get(preset, {})
    return PROTECTIONS.get(name)(**(settings | params))
