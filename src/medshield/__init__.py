"""medshield: make medical images unlearnable for unauthorized training, and prove it."""
__version__ = "0.1.0"

from .errors import InputError  # noqa: E402

__all__ = ["InputError", "__version__", "create_protection", "list_protections"]


def __getattr__(name: str):
    """The protection registry imports torch (seconds): only on first use, so that the command line
    starts light and a Ctrl-C during its imports ends in one line (``__main__``)."""
    if name in ("create_protection", "list_protections"):
        from . import protect

        return getattr(protect, name)
    raise AttributeError(f"module 'medshield' has no attribute {name!r}")
