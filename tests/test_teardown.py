"""No crash at teardown (issue 21): each teaching tab's view on its own, and the main window, is built, given work,
closed and left to Python's teardown in a fresh child process, a few times over, and every run must end with rc 0
and neither a fatal error nor a QThread destroyed while running. The ``-orphaned`` cases close and shut down
nothing: the job queues' threads must still be stopped before Qt is torn down."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile import ROOT
from tests.teardown_child import CASES

RUNS = 2  # a crash at teardown can be a matter of timing: each case runs this many times, side by side
CHILD_TIMEOUT_S = 30
CRASH_SIGNS = ("Fatal Python error", "Segmentation fault", "QThread: Destroyed", "Traceback", "Aborted")


def start_child(case: str, folder: Path) -> subprocess.Popen[str]:
    (folder / "resources" / "models").mkdir(parents=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen", PYTHONFAULTHANDLER="1",
               FCN_VIEWER_SETTINGS=str(folder / "env-settings.ini"), FCN_VIEWER_RESOURCES=str(folder / "resources"),
               FCN_VIEWER_CACHE=str(folder / "cache"), OMP_NUM_THREADS="1")
    code = "from tests.teardown_child import main; main()"
    return subprocess.Popen([sys.executable, "-c", code, case, str(folder)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


@pytest.mark.parametrize("case", CASES)
def test_a_view_built_and_closed_on_its_own_tears_down_without_a_crash(case: str, tmp_path: Path) -> None:
    children = [start_child(case, tmp_path / f"run{run}") for run in range(RUNS)]  # side by side: timings vary
    try:
        for run, child in enumerate(children, 1):
            stdout, stderr = child.communicate(timeout=CHILD_TIMEOUT_S)
            said = f"run {run} of {case}: rc {child.returncode}\n{stdout}{stderr[-4000:]}"
            assert child.returncode == 0, said
            assert f"{case}: built and closed" in stdout, said
            assert not [sign for sign in CRASH_SIGNS if sign in stderr], said
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
