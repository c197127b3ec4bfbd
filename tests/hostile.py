"""Limits for the hostile-input tests: a hang fails after HANG_LIMIT_S, a memory bomb in a memory-capped child."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HANG_LIMIT_S = 10.0
MEMORY_LIMIT_BYTES = 1 << 30  # address space of a capped child: far above what it needs, far below a bomb


def within(call: Callable[[], object], seconds: float = HANG_LIMIT_S) -> object:
    """``call()``'s result or the exception it raised; fails the test if it has not returned within ``seconds``
    (the call goes on in a daemon thread, which the test process abandons)."""
    outcome: list[object] = []

    def attempt() -> None:
        try:
            outcome.append(call())
        except Exception as error:  # the caller's assertions look at its type
            outcome.append(error)

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"still running after {seconds} s"
    return outcome[0]


def run_capped(code: str, memory_bytes: int = MEMORY_LIMIT_BYTES,
               seconds: float = 60.0, preload: str = "") -> subprocess.CompletedProcess[str]:
    """Runs ``code`` in a child Python whose address space is capped at ``memory_bytes`` (RLIMIT_AS), so a memory
    bomb fails the child (MemoryError) instead of the machine; returns its exit status and output.

    ``preload`` (imports, fixtures) runs first, uncapped, and the cap is then ``memory_bytes`` above the address space
    it left mapped: torch alone maps more than 3 GB of address space it never touches."""
    limit = f"{memory_bytes}" if not preload else (
        f"int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize() + {memory_bytes}")
    prelude = (
        textwrap.dedent(preload) + "\n"
        "import resource\n"
        f"_cap = {limit}\n"
        "resource.setrlimit(resource.RLIMIT_AS, (_cap, _cap))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=seconds, env=env, cwd=ROOT)


memory_capped = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS is enforced on Linux only")
