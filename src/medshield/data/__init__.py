"""Reading, validating and writing datasets."""
from .medmnist import MedMNISTData, flags_2d, load, resolve
from .release import Release, read_release, write_release

__all__ = ["MedMNISTData", "Release", "flags_2d", "load", "read_release", "resolve", "write_release"]
