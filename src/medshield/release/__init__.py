"""Writing a release and reading it back: the protected dataset, its signed manifest and the
sealed data that restores the originals, for every output format (:mod:`.format`)."""
from . import dicom, folder, npz  # noqa: F401  (each registers its format)
from .format import FORMATS, Release, ReleaseFormat, register_format
from .npz import dataset_file
from .reading import is_release, open_dataset, original_of, read_release
from .restore import restore_release
from .sealing import check_key_path, default_key_path
from .signing import owner_key
from .verification import verify_release
from .writer import check_output_dir, check_writable, write_release

__all__ = ["FORMATS", "Release", "ReleaseFormat", "check_key_path", "check_output_dir", "check_writable", "dataset_file",
           "default_key_path", "is_release", "open_dataset", "original_of", "owner_key", "read_release",
           "register_format", "restore_release", "verify_release", "write_release"]
