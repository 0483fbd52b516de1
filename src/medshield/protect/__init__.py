"""Protection methods behind one interface: ``create_protection(name, **params)``."""
from . import class_conv, em, random_noise, rem, salm, sp, tap  # noqa: F401  (each registers its method)
from ._checkpoint import Checkpoint, work_folder
from .base import PROTECTIONS, Protection, ProtectionResult, list_protections
from .params import create_protection, method_parameters, parameter_docs
from .run import RunContext, Storage

#: the paper's method: what ``protect`` runs when no method is named
DEFAULT_METHOD = "salm"

__all__ = ["DEFAULT_METHOD", "PROTECTIONS", "Checkpoint", "Protection", "ProtectionResult", "RunContext", "Storage", "create_protection",
           "list_protections", "method_parameters", "parameter_docs", "work_folder"]
