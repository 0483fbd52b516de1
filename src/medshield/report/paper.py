"""The SALM paper's published numbers (arXiv:2403.10573), kept once for every table that sets ours beside them."""

# Table 1 (ResNet-18 victims, 28 px MedMNIST): test accuracy % after training on each release.
TABLE1_ACCURACY = {
    "bloodmnist": {"clean": 95.8, "tap": 19.6, "em": 30.5, "sp": 30.5, "salm": 7.1},
    "pneumoniamnist": {"clean": 85.4, "tap": 66.9, "em": 65.8, "sp": 70.1, "salm": 63.9},
    "breastmnist": {"clean": 86.3, "tap": 44.9, "em": 46.2, "sp": 50.0, "salm": 53.2},
    "retinamnist": {"clean": 52.4, "tap": 39.5, "em": 13.0, "sp": 8.3, "salm": 12.2},
}

# Table 5 (dataset not stated): similarity of the release to the originals, % (SSIM, hashes, NMI).
TABLE5_UTILITY = {
    "tap": {"ssim": 94.6, "ahash": 75.1, "phash": 88.8, "dhash": 77.2, "nmi": 42.7},
    "em": {"ssim": 92.7, "ahash": 77.7, "phash": 89.1, "dhash": 77.4, "nmi": 42.9},
    "sp": {"ssim": 99.9, "ahash": 95.4, "phash": 99.9, "dhash": 99.3, "nmi": 99.9},
    "salm": {"ssim": 94.4, "ahash": 77.9, "phash": 89.4, "dhash": 77.2, "nmi": 44.7},
}

# Section 7.1 and Appendix D.2 (DermaMNIST): an institution holding one class, with support classes.
SUPPORT = {"b": "melanoma alone: 9.9 % (PathMNIST support), 8.1 % (general images)", "a": "all classes merged: 10.3 %"}
