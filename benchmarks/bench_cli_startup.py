"""How long the `fcn-viewer` command takes to answer when it has no real work to do. Prints numbers; it is
not a pass/fail test.

    python benchmarks/bench_cli_startup.py [--runs 5]

(from the repository root, with the project installed or PYTHONPATH=.). Each case starts a fresh Python
process (`python -m fcn_viewer ...`), so imports are paid every time, as they are for a user; the table
gives the median and the slowest of the runs, and which heavy libraries the command imported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

CASES: dict[str, list[str]] = {
    "--help": ["--help"],
    "models": ["models"],
    "argument error": ["segment"],
    "segment --help": ["segment", "--help"],
}
HEAVY = ("torch", "PySide6", "matplotlib")
PROBE = (
    "import runpy, sys; sys.argv = ['fcn-viewer', *sys.argv[1:]];\n"
    "try:\n    runpy.run_module('fcn_viewer', run_name='__main__')\n"
    "except SystemExit:\n    pass\n"
    f"finally:\n    print('HEAVY:' + ','.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
)


def time_case(args: list[str], runs: int) -> tuple[list[float], str]:
    seconds = []
    heavy = ""
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                              env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        seconds.append(time.perf_counter() - start)
        heavy = next((line[6:] for line in done.stderr.splitlines() if line.startswith("HEAVY:")), "?")
    return seconds, heavy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    time_case(["--version"], 1)  # warm the file cache
    print(f"{'command':<18} {'median s':>9} {'max s':>7}  heavy imports")
    for name, args in CASES.items():
        seconds, heavy = time_case(args, options.runs)
        print(f"{name:<18} {statistics.median(seconds):9.2f} {max(seconds):7.2f}  {heavy or '-'}")


if __name__ == "__main__":
    main()
