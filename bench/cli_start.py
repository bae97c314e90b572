"""How fast the ``hybridir`` command answers when it has nothing heavy to do: ``--help`` and argument errors.

Each command runs ``--runs`` times (default 5) in a fresh interpreter, as a user's shell starts it
(``python -m hybridir.cli``, which is what the ``hybridir`` script runs); the table shows the median and the
slowest wall-clock time against the target (under 1 s on a 2-core CPU: no torch, transformers,
sentence-transformers or faiss import before a command needs them) and a verdict per row.

Usage::

    .venv/bin/python bench/cli_start.py            # median of 5 runs each
    .venv/bin/python bench/cli_start.py --runs 9
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 1.0
#: (what, argv, expected exit code): --help, and argument errors each command reports before any model loads
COMMANDS = [
    ("hybridir --help", ["--help"], 0),
    ("argument error: search --k many", ["search", "{tmp}/idx", "hallo", "--k", "many"], 2),
    ("argument error: search --k 0", ["search", "{tmp}/idx", "hallo", "--k", "0"], 2),
    ("argument error: train --alpha 1.5", ["train", "--alpha", "1.5", "--out", "{tmp}/run"], 2),
    ("argument error: evaluate --precision fp64", ["evaluate", "--precision", "fp64"], 2),
    ("argument error: serve --port 99999", ["serve", "{tmp}/idx", "--port", "99999"], 2),
    ("input error: index of an empty corpus", ["index", "--corpus", "{tmp}/empty.jsonl", "--out", "{tmp}/i"], 2),
]


def time_command(argv: list[str], expected: int, runs: int) -> list[float]:
    src = Path(__file__).resolve().parents[1] / "src"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")])))
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "hybridir.cli", *argv], capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - start)
        if done.returncode != expected:
            sys.exit(f"{' '.join(argv)}: exit code {done.returncode}, expected {expected}\n{done.stderr[-2000:]}")
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=5, help="fresh interpreter starts per command (default 5)")
    args = p.parse_args()
    rows = ["| command | median (s) | slowest (s) | target | verdict |", "|---|---|---|---|---|"]
    missed = 0
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "empty.jsonl").write_text("")
        for what, argv, expected in COMMANDS:
            times = time_command([a.format(tmp=tmp) for a in argv], expected, args.runs)
            median = statistics.median(times)
            missed += median >= TARGET_S
            verdict = "met" if median < TARGET_S else "MISSED"
            rows.append(f"| {what} | {median:.2f} | {max(times):.2f} | < {TARGET_S:.0f} s | {verdict} |")
    print(f"hybridir start-up, median of {args.runs} fresh runs ({os.cpu_count()} CPU cores, {sys.executable})\n")
    print("\n".join(rows))
    print(f"\ntarget < {TARGET_S:.0f} s: {'met by every command' if not missed else f'missed by {missed} command(s)'}")


if __name__ == "__main__":
    main()
