"""``python -m medshield`` and the ``medshield`` command.

The command line imports torch, which takes seconds: a Ctrl-C in that time ends quietly, in one
line, as it does once the command runs (:func:`medshield.cli.main`)."""
import sys


def run() -> int:
    try:
        from .cli import main
    except KeyboardInterrupt:
        print("medshield: interrupted; nothing was written", file=sys.stderr)
        return 130
    return main()


if __name__ == "__main__":
    sys.exit(run())
