"""Protection methods behind one interface: ``create_protection(name, **params)``."""
from . import em, random_noise, rem, salm, sp, tap  # noqa: F401  (each registers its method)
from .base import PROTECTIONS, Protection, ProtectionResult, create_protection, list_protections

__all__ = ["PROTECTIONS", "Protection", "ProtectionResult", "create_protection", "list_protections"]
