"""The fuzzed reader suite at length: many more mutated files than CI tries, and what became of each.

    python benchmarks/fuzz_readers.py [--examples 500]

Runs ``tests/data/test_fuzz_readers.py`` with ``--examples`` cases per fuzzed test (CI: 30) and
tallies the outcome every case logs: read and protected (the mutation was harmless), rejected
with exit 2 and one line, or a failure: a traceback (exit 1), several lines, an output left
behind. The cases include zip bombs (up to 537 MB of zeros deflated into kilobytes, refused under
a 64 MB ``--max-input-bytes``) and oversized ``.npy`` headers. Writes results/fuzz_readers.md/.json
with the command, machine, date and the suite process's peak memory.
"""
from __future__ import annotations

import argparse
import collections
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import RESULTS, context, write_json, write_markdown
from medshield import Journal
from medshield.report import markdown_table

SUITE = Path(__file__).resolve().parents[1] / "tests" / "data" / "test_fuzz_readers.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=500, help="cases per fuzzed test (CI runs 30)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "cases.jsonl"
        env = {**os.environ, "MEDSHIELD_FUZZ_EXAMPLES": str(args.examples), "MEDSHIELD_FUZZ_LOG": str(log)}
        start = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(SUITE)],
                             env=env, capture_output=True, text=True, cwd=SUITE.parents[2])
        seconds = time.perf_counter() - start
        cases = Journal(log).records()
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the pytest process's peak
    outcome = collections.Counter()
    by_input = collections.defaultdict(collections.Counter)
    for case in cases:
        outcome[_kind(case)] += 1
        by_input[case["input"]][_kind(case)] += 1
    messages = collections.Counter(re.sub(r"(/[^\s:/]+)+/", "", c["error"].removeprefix("medshield: error: "))[:100]
                                   for c in cases if c["exit"] == 2)  # temporary folders left out
    result = {**context(), "examples_per_test": args.examples, "cases": len(cases), "outcomes": dict(outcome),
              "by_input": {k: dict(v) for k, v in by_input.items()}, "pytest_exit": run.returncode,
              "seconds": round(seconds), "peak_memory_mb": round(peak_mb), "top_errors": messages.most_common(12)}
    write_json(RESULTS / "fuzz_readers.json", result)
    kinds = list(KINDS)
    rows = [[name, *(counts.get(k, 0) for k in kinds)] for name, counts in sorted(by_input.items())]
    rows.append(["all", *(outcome.get(k, 0) for k in kinds)])
    text = (f"# Fuzzed readers\n\n`{result['command']}` at commit {result['commit']}, {result['date']}, "
            f"{result['cpu']}: {len(cases)} mutated inputs ({args.examples} per fuzzed test) in {seconds:.0f} s; "
            f"pytest exit {run.returncode}; peak memory of the suite's process {peak_mb:.0f} MB (torch and the "
            f"suite included).\n\n" + markdown_table(["input", *kinds], rows) +
            "\n\nMost frequent rejections (one line each, exit 2):\n\n" +
            "\n".join(f"- {count} x {message}" for message, count in messages.most_common(12)) + "\n")
    if run.returncode:
        text += "\nFailures, as pytest reported them:\n\n```\n" + run.stdout[-4000:] + "\n```\n"
    write_markdown(RESULTS / "fuzz_readers.md", text)
    print(text)


KINDS = ("read and protected", "rejected, one line", "traceback (exit 1)", "several lines", "output left behind")


def _kind(case: dict) -> str:
    if case["exit"] == 0:
        return KINDS[0]
    if case["output_left"]:
        return KINDS[4]
    if case["exit"] != 2:
        return KINDS[2]
    return KINDS[1] if case["lines"] == 1 else KINDS[3]


if __name__ == "__main__":
    main()
