"""Helpers shared by the benchmark scripts: data location, machine line, result files."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

from medshield import machine, now_iso, write_json

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "medmnist"
RESULTS = Path(__file__).resolve().parent / "results"
__all__ = ["RESULTS", "SHARED", "context", "cpu_model", "data_root", "network_passes", "write_json", "write_markdown"]  # write_json: the library's one JSON writer


def data_root() -> Path:
    root = os.environ.get("MEDSHIELD_DATA_ROOT")
    if root:
        return Path(root)
    if SHARED.is_dir():
        return SHARED
    sys.exit(f"no data: set MEDSHIELD_DATA_ROOT or provide {SHARED}")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``): ``context()``'s machine line names only the architecture,
    and timings are compared only on one CPU."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def network_passes(model, x, y, transform, optimizer):
    """The two passes a generation is made of, as callables to time or count: one PGD step's input
    gradient (eval mode, through the transformation) and one training step of the source model."""
    import torch
    import torch.nn.functional as F

    delta = torch.zeros_like(x)

    def input_gradient():
        model.eval()
        d = delta.clone().requires_grad_(True)
        torch.autograd.grad(F.cross_entropy(model(transform(x + d)), y), d)

    def training_step():
        model.train()
        loss = F.cross_entropy(model(transform(x)), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return input_gradient, training_step


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=RESULTS).stdout.strip()
    except OSError:
        return "unknown"


STARTED_AT = _commit()  # the code this process loaded: the checkout may move on while it runs


def context() -> dict:
    return {"command": " ".join([Path(sys.executable).name] + sys.argv), "date": now_iso(), "commit": STARTED_AT,
            "machine": machine(), "cpu": platform.processor() or platform.machine()}


def kept_sections(path: Path, headings: tuple[str, ...]) -> str:
    """The sections of ``path`` under ``headings`` ("## Notes"), each up to the next "## " heading:
    what a results file says by hand about its runs (dated notes, history), which no record holds."""
    lines = path.read_text().splitlines() if path.exists() else []
    kept, keeping = [], False
    for line in lines:
        if line.startswith("## "):
            keeping = line in headings
        if keeping:
            kept.append(line)
    return "\n".join(kept).strip()


def write_markdown(path: Path, text: str, keep: tuple[str, ...] = ()) -> None:
    """A results table, replaced whole (two lanes rewriting it never leave half of one); the sections
    under ``keep`` headings are carried over from the file it replaces, at its end."""
    sections = kept_sections(path, keep)
    text = text.rstrip("\n") + ("\n\n" + sections if sections else "")
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    partial.write_text(text if text.endswith("\n") else text + "\n")
    os.replace(partial, path)
