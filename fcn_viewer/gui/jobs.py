"""The one way the viewer runs work off the GUI thread: a serial job queue on a QThread with numbered jobs,
newest-wins keys, cooperative cancelling, and every answer (errors too) delivered as a value by one signal.

Lifetimes: a queue's thread and the runner that lives on it belong to this module (``_workers``) until the thread
has stopped, never to the queue, because Qt aborts the process when a running QThread is destroyed. A queue that
dies without :meth:`JobQueue.shutdown` (its owner deleted, or dropped by Python) stops its thread as it goes, and
every thread still running at exit is stopped and waited for before Qt is torn down. Nothing on the queue's thread
touches the queue itself: its answers go through the runner's signals, which Qt drops once the queue is gone.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from fcn_viewer.cpu_threads import release_idle_workers
from fcn_viewer.gui.background import start_in_background
from fcn_viewer.view.outcome import JobCancelled, JobFailed, error_message

CLOSE_WAIT_S = 1.5  # the most a closing window waits on its workers, all together


class _Jobs:
    """A queue's jobs and state, shared by the queue (on the GUI thread) and its runner (on the queue's thread):
    plain Python, so the runner never needs the queue."""

    def __init__(self, on_error: Callable[[], None]) -> None:
        self.on_error = on_error
        self.lock = threading.RLock()  # re-entrant: a queue dropped by the GC on its own thread stops it
        self.queued: deque[Job] = deque()
        self.running: Job | None = None
        self.closed = False  # shut down: nothing more runs, and no answer is sent

    def take(self) -> Job | None:
        with self.lock:
            self.running = self.queued.popleft() if self.queued and not self.closed else None
            return self.running

    def cancel(self, key: str | None = None) -> None:
        with self.lock:
            for job in (*self.queued, *([self.running] if self.running is not None else [])):
                if key is None or job.key == key:
                    job.cancel()

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.queued.clear()


class Job:
    """A numbered piece of work on its way through a queue; the work reads ``cancelled`` and reports ``progress``."""

    def __init__(self, number: int, work: Callable[[Job], object], key: str | None,
                 describe: Callable[[Exception], str], jobs: _Jobs, report: Callable[[int, object], None]) -> None:
        self.number = number
        self.key = key
        self.work = work
        self.describe = describe
        self._jobs = jobs
        self._report = report
        self._cancel = threading.Event()

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        self._cancel.set()

    def progress(self, value: object) -> None:
        """Sends ``value`` to the GUI thread now (the job goes on); dropped once the queue was shut down."""
        if not self._jobs.closed:
            self._report(self.number, value)


class _Runner(QObject):
    """Lives on the queue's thread and runs the queued jobs in order; its signals reach the queue's."""

    finished = Signal(int, object)
    progress = Signal(int, object)

    def __init__(self, jobs: _Jobs) -> None:
        super().__init__()  # no parent: it lives on another thread than any parent could
        self._jobs = jobs

    @Slot()
    def run_pending(self) -> None:
        while (job := self._jobs.take()) is not None:
            if job.cancelled():
                value: object = JobCancelled("cancelled before it started")
            else:
                try:
                    value = job.work(job)
                except Exception as error:  # a hostile file or out of memory must never take the thread down
                    self._jobs.on_error()
                    value = JobFailed(job.describe(error))
            if not self._jobs.closed:
                self.finished.emit(job.number, value)
        release_idle_workers()  # an idle queue's OpenMP team would slow every other thread's passes


class _Worker:
    """A queue's thread, its runner and its jobs, kept in ``_workers`` until the thread has stopped."""

    def __init__(self, name: str, jobs: _Jobs) -> None:
        self.jobs = jobs
        self.thread = QThread()  # no parent: a parent's death must never destroy it while it runs
        self.thread.setObjectName(name)
        self.runner = _Runner(jobs)
        self.runner.moveToThread(self.thread)

    def stop(self) -> None:
        """Closes the queue and asks its thread to stop after the job in hand (which is asked to cancel); returns
        at once."""
        self.jobs.cancel()
        self.jobs.close()
        self.thread.quit()

    def queue_gone(self) -> None:
        """The queue died without a shutdown: its thread stops after the job in hand. (A worker no longer listed
        has stopped, and its thread may be gone: Qt's teardown deletes it before the queue.)"""
        if self in _workers:
            self.stop()

    def forget(self) -> None:
        """Drops the worker from ``_workers`` once its thread has stopped."""
        if self in _workers and self.thread.isFinished():
            _workers.remove(self)


# The workers whose thread may still run: a queue shut down in time leaves at once; one whose job was abandoned,
# or whose queue died without a shutdown, stays until its thread has ended (at the latest at exit).
_workers: list[_Worker] = []


class JobQueue(QObject):
    """Runs jobs one at a time on its own low-priority thread and answers each on the GUI thread.

    Every job is answered once, in order: ``finished`` carries the work's return value, a :class:`JobFailed`
    when it raised (after ``on_error`` ran on the queue's thread), or a :class:`JobCancelled` when it was
    cancelled before it started. A job submitted with a ``key`` supersedes the earlier jobs of that key: the
    queued ones are cancelled (answered unrun), a running one is asked to stop.
    """

    finished = Signal(int, object)  # job number, the work's value (JobFailed / JobCancelled when it has none)
    progress = Signal(int, object)  # job number, what the work reported on its way
    _wake = Signal()

    def __init__(self, name: str, parent: QObject | None = None,
                 on_error: Callable[[], None] = lambda: None, wake_later: bool = False) -> None:
        super().__init__(parent)
        self._wake_later = wake_later
        self._jobs = _Jobs(on_error)
        self._last_number = 0
        # With wake_later the thread is woken from the event loop's next pass: waking it hands it the GIL, which
        # then does not lengthen the caller's event (such as the window's handling of a result).
        self._wake_timer = QTimer(self, singleShot=True, interval=0)
        self._wake_timer.timeout.connect(self._wake)
        for worker in [worker for worker in _workers if worker.thread.isFinished()]:
            worker.forget()  # threads that ended since are no longer kept (a dead queue's go here, on this thread)
        self._worker = worker = _Worker(name, self._jobs)
        _workers.append(worker)
        self._thread = worker.thread
        self._wake.connect(worker.runner.run_pending)
        worker.runner.finished.connect(self.finished)  # queued: the queue's owner hears on the GUI thread
        worker.runner.progress.connect(self.progress)
        self.destroyed.connect(worker.queue_gone)
        start_in_background(worker.thread)

    @property
    def closed(self) -> bool:
        """Shut down: nothing more runs, and no answer is sent."""
        return self._jobs.closed

    def submit(self, work: Callable[[Job], object], *, key: str | None = None, number: int | None = None,
               describe: Callable[[Exception], str] = error_message) -> int:
        """Queues ``work`` and returns its job number (``number`` when the caller numbers its jobs)."""
        number = number if number is not None else self._last_number + 1
        self._last_number = max(self._last_number, number)
        if key is not None:
            self.cancel(key)
        with self._jobs.lock:
            self._jobs.queued.append(Job(number, work, key, describe, self._jobs, self._worker.runner.progress.emit))
        if self._wake_later:
            self._wake_timer.start()
        else:
            self._wake.emit()
        return number

    def cancel(self, key: str | None = None) -> None:
        """Cancels the jobs of ``key`` (all with None): queued ones are answered unrun, a running one is asked
        to stop (work that does not look at :meth:`Job.cancelled` finishes)."""
        self._jobs.cancel(key)

    def shutdown(self, wait_s: float | None = None) -> None:
        """Stops the thread after the job in hand (which is asked to cancel); queued jobs are dropped.

        Waits for good, or at most ``wait_s`` seconds: a job still running then is abandoned. Its answer and
        progress are dropped, and its thread ends when the job does (the process waits for it at exit).
        """
        if self.closed:
            return
        self._wake_timer.stop()
        self.cancel()
        self._thread.quit()
        stopped = self._thread.wait() if wait_s is None else self._thread.wait(max(0, round(wait_s * 1000)))
        self._jobs.close()
        if stopped:
            self._worker.forget()


def stop_all(queues: Iterable[JobQueue], within_s: float = CLOSE_WAIT_S) -> None:
    """Asks the jobs of every queue to stop at once, then shuts each queue down, waiting at most ``within_s`` in
    all: a job that does not stop in time is abandoned (see :meth:`JobQueue.shutdown`)."""
    queues = list(queues)
    for queue in queues:
        queue.cancel()
    deadline = time.monotonic() + within_s
    for queue in queues:
        queue.shutdown(max(0.0, deadline - time.monotonic()))


@atexit.register  # atexit handlers run before PySide6 destroys the QApplication and the Qt objects Python owns
def _stop_workers() -> None:
    """At exit: stops every thread still running (an abandoned job, a queue never shut down) and waits for each,
    since destroying a running QThread aborts the process."""
    workers = list(_workers)
    for worker in workers:
        worker.stop()
    for worker in workers:
        worker.thread.wait()
    _workers.clear()
