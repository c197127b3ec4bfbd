"""The job queue behind every viewer worker: one answer per job, in order, newest wins, errors as values."""

from __future__ import annotations

import threading
import time

from PySide6.QtCore import QObject
from pytestqt.qtbot import QtBot

from fcn_viewer.errors import ImageLoadError
from fcn_viewer.gui import jobs
from fcn_viewer.gui.jobs import Job, JobQueue, stop_all
from fcn_viewer.view.outcome import JobCancelled, JobFailed


def answers_of(queue: JobQueue) -> list[tuple[int, object]]:
    answers: list[tuple[int, object]] = []
    queue.finished.connect(lambda number, value: answers.append((number, value)))
    return answers


def test_jobs_run_in_order_off_the_gui_thread_and_errors_come_back_as_values(qtbot: QtBot) -> None:
    queue = JobQueue("test jobs")
    answers = answers_of(queue)
    threads: list[threading.Thread] = []

    def boom(_: Job) -> object:
        raise ImageLoadError("x.png: not an image")

    def divide(_: Job) -> object:
        return 1 / 0

    first = queue.submit(lambda _: threads.append(threading.current_thread()) or 1)
    second = queue.submit(boom)
    third = queue.submit(divide, describe=lambda error: f"third: {error}")
    qtbot.waitUntil(lambda: len(answers) == 3)
    queue.shutdown()
    assert [number for number, _ in answers] == [first, second, third] == [1, 2, 3]
    assert answers[0][1] == 1 and threads[0] is not threading.main_thread()
    assert answers[1][1] == JobFailed("x.png: not an image")
    assert answers[2][1] == JobFailed("third: division by zero")


def test_a_newer_job_of_a_key_cancels_the_queued_ones_and_asks_the_running_one_to_stop(qtbot: QtBot) -> None:
    queue = JobQueue("test jobs")
    answers = answers_of(queue)
    started, stopped = threading.Event(), []

    def long_running(job: Job) -> object:
        started.set()
        while not job.cancelled():
            threading.Event().wait(0.005)
        stopped.append(job.number)
        return "stopped early"

    running = queue.submit(long_running, key="image")
    assert started.wait(10)
    queued = queue.submit(lambda _: "never run", key="image")
    other = queue.submit(lambda _: "other key", key="model")
    newest = queue.submit(lambda _: "newest", key="image", number=40)  # the caller may number its own jobs
    qtbot.waitUntil(lambda: len(answers) == 4)
    queue.shutdown()
    assert dict(answers) == {
        running: "stopped early",
        queued: JobCancelled("cancelled before it started"),
        other: "other key",
        40: "newest",
    }
    assert stopped == [running] and newest == 40


def test_progress_reaches_the_gui_thread_while_the_job_runs(qtbot: QtBot) -> None:
    queue = JobQueue("test jobs")
    progress: list[tuple[int, object]] = []
    queue.progress.connect(lambda number, value: progress.append((number, value)))
    with qtbot.waitSignal(queue.finished):
        number = queue.submit(lambda job: [job.progress(step) for step in range(3)] and "done")
    queue.shutdown()
    assert progress == [(number, 0), (number, 1), (number, 2)]


def test_stop_all_waits_at_most_its_limit_and_drops_the_answer_of_a_job_it_abandons(qtbot: QtBot) -> None:
    stubborn, willing = JobQueue("test stubborn"), JobQueue("test willing")
    stubborn_answers, willing_answers = answers_of(stubborn), answers_of(willing)
    started, willing_started, release = threading.Event(), threading.Event(), threading.Event()

    def ignores_cancel(job: Job) -> object:
        started.set()
        release.wait(10)
        job.progress("late progress")
        return "late answer"

    def stops_when_asked(job: Job) -> object:
        willing_started.set()
        while not job.cancelled():
            threading.Event().wait(0.005)
        return "stopped"

    stubborn.submit(ignores_cancel)
    number = willing.submit(stops_when_asked)
    assert started.wait(10) and willing_started.wait(10)
    began = time.monotonic()
    stop_all([stubborn, willing], within_s=0.5)
    assert time.monotonic() - began < 1.5
    qtbot.waitUntil(lambda: bool(willing_answers))
    assert willing_answers == [(number, "stopped")]
    release.set()  # the abandoned job ends on its own; its answer goes nowhere
    assert stubborn._thread.wait(5000)
    qtbot.wait(50)
    assert stubborn_answers == [] and stubborn.closed
    stubborn.shutdown()  # a second shutdown returns at once


def test_a_queue_deleted_with_its_owner_mid_job_stops_its_thread_and_drops_the_answer(qtbot: QtBot) -> None:
    owner = QObject()
    queue = JobQueue("test orphan", owner)
    answers = answers_of(queue)
    started, release = threading.Event(), threading.Event()
    queue.submit(lambda job: started.set() or release.wait(10) or "late answer")
    assert started.wait(10)
    thread = queue._thread
    del owner  # the owner dies without a shutdown: the queue goes with it, its thread must not (it runs a job)
    assert queue.closed and not thread.isFinished()
    assert any(worker.thread is thread for worker in jobs._workers)  # kept until it stops
    release.set()
    assert thread.wait(5000)  # the thread stops after the job in hand
    qtbot.wait(50)
    assert answers == []
    JobQueue("test next").shutdown()  # a new queue forgets the workers whose thread has stopped
    assert not any(worker.thread is thread for worker in jobs._workers)
