"""The one exception type the CLI turns into a single-line message and exit code 2."""


class InputError(ValueError):
    """Bad input or arguments: the message says what is wrong and how to fix it."""
