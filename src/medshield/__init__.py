"""medshield: make medical images unlearnable for unauthorized training, and prove it."""
__version__ = "0.1.0"

from .errors import InputError  # noqa: E402
from .protect import create_protection, list_protections  # noqa: E402

__all__ = ["InputError", "__version__", "create_protection", "list_protections"]
