"""The user documentation stays true: its commands parse, and its generated tables are current."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from medshield.cli import build_parser
from medshield.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PLACEHOLDER = re.compile(r"[\[\]<>|]|\.\.\.")  # a usage synopsis, not a command to run


def documented_commands() -> list[tuple[str, str]]:
    """Every `medshield VERB ...` in a bash block or an inline code span of the docs."""
    found = []
    for page in PAGES:
        text = page.read_text()
        blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
        spans = re.findall(r"`(medshield [^`]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
        pieces = [part.strip() for block in blocks for part in re.split(r"&&|\n", block)] + spans
        for piece in pieces:
            bare_verb = len(piece.split()) == 2 and piece != "medshield methods"  # a mention, not a command
            if piece.startswith("medshield ") and not PLACEHOLDER.search(piece) and not bare_verb:
                found.append((page.name, piece))
    return found


COMMANDS = documented_commands()


def test_the_docs_show_commands():
    verbs = {shlex.split(cmd)[1] for _, cmd in COMMANDS}
    assert {"protect", "evaluate", "grid", "utility", "compare", "report", "verify", "restore", "methods"} <= verbs


@pytest.mark.parametrize("page,command", COMMANDS, ids=[f"{p}:{c[:60]}" for p, c in COMMANDS])
def test_documented_command_parses(page, command, capsys):
    try:
        build_parser().parse_args(shlex.split(command, comments=True)[1:])
    except InputError as error:  # the parser's one-line refusal
        pytest.fail(f"{page}: `{command}` does not parse: {error}")
    except SystemExit as exit_:
        assert exit_.code == 0, f"{page}: `{command}` exits {exit_.code}"  # 0: --help or --version


def test_generated_tables_are_current():
    result = subprocess.run([sys.executable, str(ROOT / "docs" / "tables.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
