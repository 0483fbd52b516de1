"""One small registry mechanism for methods and models (after timm's model registry)."""
from __future__ import annotations

import fnmatch
from typing import Callable, Generic, TypeVar

from .errors import InputError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories; ``create`` builds one with its defaults or given parameters."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(factory: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = factory
            return factory

        return decorator

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise InputError(
                f"unknown {self.kind} {name!r}; available: {', '.join(self.names())}"
            )
        return self._entries[name]

    def names(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: str) -> bool:
        return name in self._entries
