"""Threads that use torch keep no idle OpenMP team, which would slow every other thread's passes (on libgomp, once
the teams outnumber the cores): the job queues hand theirs back when they run dry, the GUI thread keeps none."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from pytestqt.qtbot import QtBot

from fcn_viewer import cpu_threads
from fcn_viewer.cpu_threads import release_idle_workers, run_serially_here, uses_libgomp
from fcn_viewer.gui.jobs import Job, JobQueue

TASKS = Path("/proc/self/task")

needs_teams = pytest.mark.skipif(not (uses_libgomp() and TASKS.is_dir() and torch.get_num_threads() > 1),
                                 reason="libgomp's teams, counted on Linux with more than one torch thread")


def threads_named(name: str) -> int:
    """The process's threads called ``name``: a queue's QThread, and the OpenMP workers it started (they inherit its
    name)."""
    count = 0
    for task in TASKS.iterdir():
        try:
            count += (task / "comm").read_text().strip() == name[:15]
        except OSError:  # a thread that ended meanwhile
            continue
    return count


def parallel_op() -> None:
    torch.ones(4_000_000).mul_(2)  # far above torch's grain size: runs on the thread's team


def run_on_queue(qtbot: QtBot, name: str, work: Callable[[Job], object]) -> tuple[object, JobQueue]:
    queue = JobQueue(name)
    answers: list[object] = []
    queue.finished.connect(lambda _, value: answers.append(value))
    queue.submit(work)
    qtbot.waitUntil(lambda: bool(answers))
    return answers[0], queue


@needs_teams
def test_a_queue_hands_its_team_back_once_it_has_no_more_jobs(qtbot: QtBot) -> None:
    name = "omp team test"

    def work(_: Job) -> tuple[int, int]:
        parallel_op()
        return threads_named(name), torch.get_num_threads()

    answer, queue = run_on_queue(qtbot, name, work)
    assert isinstance(answer, tuple)
    during, width = answer
    assert during == width > 1  # the queue's thread and its workers, while the job ran
    qtbot.waitUntil(lambda: threads_named(name) == 1)  # the workers have ended; the queue's thread waits for jobs
    queue.shutdown()


@needs_teams
def test_a_serial_thread_runs_torch_alone_and_leaves_the_other_threads_width(qtbot: QtBot) -> None:
    name = "omp serial test"
    width = torch.get_num_threads()

    def work(_: Job) -> tuple[int, int]:
        parallel_op()
        assert threads_named(name) > 1
        run_serially_here()
        parallel_op()
        return torch.get_num_threads(), threads_named(name)

    answer, queue = run_on_queue(qtbot, name, work)
    assert answer == (1, 1)  # one thread, its own: no team started, the earlier one ended
    assert torch.get_num_threads() == width
    queue.shutdown()


def test_elsewhere_than_linux_both_calls_leave_the_threads_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")  # where ctypes.CDLL(None) would raise
    cpu_threads._loaded_libgomp.cache_clear()
    try:
        assert not uses_libgomp()
        width = torch.get_num_threads()
        release_idle_workers()
        run_serially_here()
        assert torch.get_num_threads() == width
    finally:
        monkeypatch.undo()
        cpu_threads._loaded_libgomp.cache_clear()
