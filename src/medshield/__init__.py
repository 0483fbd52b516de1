"""medshield: make medical images unlearnable for unauthorized training, and prove it.

The names below are what a script uses (the benchmarks import only these and ``medshield.report``).
They load on first use: the registries import torch (seconds), and the command line should start
light, so that a Ctrl-C during its imports ends in one line (``__main__``).

The jobs of the command line are ``medshield.pipeline.protect``, ``.evaluate``, ``.grid`` and
``.restore``: exported as the module, because ``protect`` and ``evaluate`` also name subpackages,
and importing a subpackage binds its name on this package over a function exported here.
"""
__version__ = "0.1.0"

import importlib  # noqa: E402

from .errors import InputError  # noqa: E402

# public name -> the module (under this package) that defines it
_EXPORTS = {
    **dict.fromkeys(("DEFAULT_METHOD", "create_protection", "list_protections", "method_parameters"), "protect"),
    "load": "data.medmnist",
    **dict.fromkeys(("open_dataset", "original_of", "read_release"), "release"),
    "read_image": "data.folder",
    **dict.fromkeys(("Recipe", "train_victim"), "evaluate.train"),
    "parse_defense": "evaluate.defenses",
    "detectability_gap": "evaluate.detection",
    "Journal": "evaluate.journal",
    "run_grid": "evaluate.grid",
    "split_by_classes": "evaluate.workflow",
    **dict.fromkeys(("release_utility", "utility_report"), "evaluate.utility"),
    "pixel_change": "bounds",
    "select_for_protection": "run_plan",
    **dict.fromkeys(("machine", "now_iso", "write_json"), "_runtime"),
}

__all__ = ["InputError", "__version__", "pipeline", *sorted(_EXPORTS)]


def __getattr__(name: str):
    if name == "pipeline":
        return importlib.import_module(".pipeline", __name__)
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'medshield' has no attribute {name!r}")
