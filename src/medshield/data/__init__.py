"""Reading and validating datasets (MedMNIST files, image and DICOM folders); releases are :mod:`medshield.release`'s."""
from .medmnist import MedMNISTData, flags_2d, load, resolve

__all__ = ["MedMNISTData", "flags_2d", "load", "resolve"]
