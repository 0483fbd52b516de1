"""Results that survive an interrupted run: one JSON line appended per finished cell.

The grid and every benchmark that resumes keep their cells in a :class:`Journal`; a cell whose
fields match one already there is not computed again, so a long run killed at any moment
continues where it stopped (the line being written when it died is the only loss).
"""
from __future__ import annotations

import json
from pathlib import Path


class Journal:
    """A JSON-lines file of records, appended one whole line at a time."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def records(self) -> list[dict]:
        if not self.path.exists():
            return []
        records = []
        for line in self.path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by a kill: that cell is simply computed again
        return records

    def matching(self, fields: dict) -> list[dict]:
        """Records whose values equal ``fields`` (a record without a field counts as None)."""
        return [r for r in self.records() if all(r.get(k) == v for k, v in fields.items())]

    def has(self, fields: dict) -> bool:
        return bool(self.matching(fields))

    def append(self, record: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+b") as handle:
            cut_short = False
            if handle.seek(0, 2) > 0:  # a line cut short by a kill must not swallow this one
                handle.seek(-1, 2)
                cut_short = handle.read(1) != b"\n"
            handle.write((("\n" if cut_short else "") + json.dumps(record) + "\n").encode())
