"""The one way the viewer runs work off the GUI thread: a serial job queue on a QThread with numbered jobs,
newest-wins keys, cooperative cancelling, and every answer (errors too) delivered as a value by one signal."""

from __future__ import annotations

import atexit
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from fcn_viewer.gui.background import start_in_background
from fcn_viewer.view.outcome import JobCancelled, JobFailed, error_message

CLOSE_WAIT_S = 1.5  # the most a closing window waits on its workers, all together

# Queues whose thread was still busy when they were shut down, kept with their thread and runner, which must not be
# destroyed while the thread runs; the process waits for them at exit, once the window is gone.
_abandoned: list[tuple[JobQueue, QThread, QObject]] = []


class Job:
    """A numbered piece of work on its way through a queue; the work reads ``cancelled`` and reports ``progress``."""

    def __init__(self, number: int, work: Callable[[Job], object], key: str | None,
                 describe: Callable[[Exception], str], queue: JobQueue) -> None:
        self.number = number
        self.key = key
        self.work = work
        self.describe = describe
        self._queue = queue
        self._cancel = threading.Event()

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        self._cancel.set()

    def progress(self, value: object) -> None:
        """Sends ``value`` to the GUI thread now (the job goes on); dropped once the queue was shut down."""
        if not self._queue.closed:
            self._queue.progress.emit(self.number, value)


class _Runner(QObject):
    """Lives on the queue's thread and runs the queued jobs in order."""

    def __init__(self, queue: JobQueue) -> None:
        super().__init__()
        self._queue = queue

    @Slot()
    def run_pending(self) -> None:
        while (job := self._queue._take()) is not None:
            self._queue._run(job)


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
        self._on_error = on_error
        self._wake_later = wake_later
        self._lock = threading.Lock()
        self._queued: deque[Job] = deque()
        self._running: Job | None = None
        self._last_number = 0
        self.closed = False  # shut down: nothing more runs, and no answer is sent
        # With wake_later the thread is woken from the event loop's next pass: waking it hands it the GIL, which
        # then does not lengthen the caller's event (such as the window's handling of a result).
        self._wake_timer = QTimer(self, singleShot=True, interval=0)
        self._wake_timer.timeout.connect(self._wake)
        self._thread = QThread()
        self._thread.setObjectName(name)
        self._runner = _Runner(self)
        self._runner.moveToThread(self._thread)
        self._wake.connect(self._runner.run_pending)
        start_in_background(self._thread)

    def submit(self, work: Callable[[Job], object], *, key: str | None = None, number: int | None = None,
               describe: Callable[[Exception], str] = error_message) -> int:
        """Queues ``work`` and returns its job number (``number`` when the caller numbers its jobs)."""
        number = number if number is not None else self._last_number + 1
        self._last_number = max(self._last_number, number)
        if key is not None:
            self.cancel(key)
        with self._lock:
            self._queued.append(Job(number, work, key, describe, self))
        if self._wake_later:
            self._wake_timer.start()
        else:
            self._wake.emit()
        return number

    def cancel(self, key: str | None = None) -> None:
        """Cancels the jobs of ``key`` (all with None): queued ones are answered unrun, a running one is asked
        to stop (work that does not look at :meth:`Job.cancelled` finishes)."""
        with self._lock:
            for job in (*self._queued, *([self._running] if self._running is not None else [])):
                if key is None or job.key == key:
                    job.cancel()

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
        with self._lock:
            self.closed = True
            self._queued.clear()
        if not stopped:
            if not _abandoned:
                atexit.register(_wait_for_abandoned)
            _abandoned.append((self, self._thread, self._runner))

    def _take(self) -> Job | None:
        with self._lock:
            self._running = self._queued.popleft() if self._queued and not self.closed else None
            return self._running

    def _run(self, job: Job) -> None:
        if job.cancelled():
            value: object = JobCancelled("cancelled before it started")
        else:
            try:
                value = job.work(job)
            except Exception as error:  # a hostile file or out of memory must never take the thread down
                self._on_error()
                value = JobFailed(job.describe(error))
        if not self.closed:
            self.finished.emit(job.number, value)


def stop_all(queues: Iterable[JobQueue], within_s: float = CLOSE_WAIT_S) -> None:
    """Asks the jobs of every queue to stop at once, then shuts each queue down, waiting at most ``within_s`` in
    all: a job that does not stop in time is abandoned (see :meth:`JobQueue.shutdown`)."""
    queues = list(queues)
    for queue in queues:
        queue.cancel()
    deadline = time.monotonic() + within_s
    for queue in queues:
        queue.shutdown(max(0.0, deadline - time.monotonic()))


def _wait_for_abandoned() -> None:
    """At exit, before Qt is torn down: lets each abandoned job finish, since destroying a running QThread aborts."""
    for _, thread, _ in _abandoned:
        thread.wait()
