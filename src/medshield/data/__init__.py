"""Reading, validating and writing datasets."""
from .medmnist import MedMNISTData, flags_2d, load, resolve
from .opening import open_dataset, original_of, read_release
from .release import Release, write_release

__all__ = ["MedMNISTData", "Release", "flags_2d", "load", "open_dataset", "original_of", "read_release", "resolve",
           "write_release"]
