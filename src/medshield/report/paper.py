"""The SALM paper's published numbers (arXiv:2403.10573), gathered for every table that sets ours
beside them. A method's own numbers are on its class (``paper_accuracy``, ``paper_utility`` in
``protect/``), so no method is named here."""
from ..protect import DEFAULT_METHOD, PROTECTIONS

# Table 1's Clean column: the official MedMNIST v2 ResNet-18 (28 px) test accuracy %.
CLEAN_ACCURACY = {"bloodmnist": 95.8, "pneumoniamnist": 85.4, "breastmnist": 86.3, "retinamnist": 52.4}


def _published(attribute: str) -> dict[str, dict[str, float]]:
    """Method name -> its own published numbers (a subclass such as REM does not inherit EM's)."""
    methods = {name: PROTECTIONS.get(name) for name in PROTECTIONS.names()}
    return {name: vars(cls)[attribute] for name, cls in methods.items() if vars(cls).get(attribute)}


# Table 1 (ResNet-18 victims, 28 px MedMNIST): test accuracy % after training on each release.
TABLE1_ACCURACY = {flag: {"clean": clean, **{name: cells[flag] for name, cells in _published("paper_accuracy").items()}}
                   for flag, clean in CLEAN_ACCURACY.items()}

# Table 5 (dataset not stated): similarity of the release to the originals, % (SSIM, hashes, NMI).
TABLE5_UTILITY = _published("paper_utility")

#: the SSIM the paper's own method keeps (Table 5): the least similarity a recommended setting may have
PAPER_METHOD_SSIM = TABLE5_UTILITY[DEFAULT_METHOD]["ssim"]

# Section 7.1 and Appendix D.2 (DermaMNIST): an institution holding one class, with support classes.
SUPPORT = {"b": "melanoma alone: 9.9 % (PathMNIST support), 8.1 % (general images)", "a": "all classes merged: 10.3 %"}
