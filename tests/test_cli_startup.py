"""The command answers help, listing and argument errors without importing torch or Qt (what made it slow to
start); benchmarks/bench_cli_startup.py measures the time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PROBE = """
import runpy, sys
sys.argv = ["fcn-viewer", *sys.argv[1:]]
try:
    runpy.run_module("fcn_viewer", run_name="__main__")
except SystemExit as exit:
    code = exit.code
print("HEAVY=" + ",".join(name for name in ("torch", "PySide6", "matplotlib") if name in sys.modules))
print("CODE=" + str(code))
"""


@pytest.mark.parametrize("args, code", [
    (["--help"], 0), (["models"], 0), (["segment"], 2), (["segment", "--help"], 0), (["evaluate", "--help"], 0),
    (["train", "--help"], 0), (["figure", "--help"], 0), (["gui", "--help"], 0), (["segment", "x.png"], 2),
    (["evaluate", "--data", "d", "--split", "val", "--tolerance", "-1"], 2),
])
def test_light_commands_import_no_heavy_library(args: list[str], code: int) -> None:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=REPO, timeout=60)
    lines = dict(line.split("=", 1) for line in done.stdout.splitlines() if line.startswith(("HEAVY=", "CODE=")))
    assert lines["HEAVY"] == "", f"{args}: imported {lines['HEAVY']}"
    assert lines["CODE"] == str(code), done.stderr
