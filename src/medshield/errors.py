"""The one exception type the CLI turns into a single-line message and exit code 2, and the write
errors it treats alike: the machine refused a write (disk full, quota, I/O error, read-only)."""
import errno

REFUSED_WRITES = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS)


class InputError(ValueError):
    """Bad input or arguments: the message says what is wrong and how to fix it."""
