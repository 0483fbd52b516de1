"""Protection methods behind one interface: ``create_protection(name, **params)``."""
from . import salm  # noqa: F401  (registers the method)
from .base import PROTECTIONS, Protection, ProtectionResult, create_protection, list_protections

__all__ = ["PROTECTIONS", "Protection", "ProtectionResult", "create_protection", "list_protections"]
