"""Runs only the newest request on one background thread: a request overtaken before it starts is dropped, so what
is shown never lags behind its input (sequence playback, re-analysis after every change). No Qt."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

Request = TypeVar("Request")
Result = TypeVar("Result")


class LatestOnly(Generic[Request, Result]):
    """``submit`` hands a request to the worker thread, replacing any request still waiting; ``deliver(ticket,
    result)`` or ``failed(ticket, error)`` is called on the worker thread when one is done. Tickets count up."""

    def __init__(
        self,
        work: Callable[[Request], Result],
        deliver: Callable[[int, Result], None],
        failed: Callable[[int, Exception], None],
        name: str = "latest-only",
    ) -> None:
        self._work, self._deliver, self._failed = work, deliver, failed
        self._condition = threading.Condition()
        self._pending: tuple[int, Request] | None = None
        self._busy = False
        self._closed = False
        self.ticket = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, request: Request) -> int:
        with self._condition:
            self.ticket += 1
            if self._pending is not None:
                self.dropped += 1
            self._pending = (self.ticket, request)
            self._condition.notify_all()
            return self.ticket

    @property
    def idle(self) -> bool:
        with self._condition:
            return self._pending is None and not self._busy

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Blocks until nothing is waiting or running; False on timeout."""
        with self._condition:
            return self._condition.wait_for(lambda: self._pending is None and not self._busy, timeout)

    def close(self) -> None:
        """Drops what waits, lets a running request finish, and ends the thread."""
        with self._condition:
            self._closed = True
            self._pending = None
            self._condition.notify_all()
        self._thread.join()

    def _loop(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._pending is not None or self._closed)
                if self._closed:
                    return
                assert self._pending is not None
                (ticket, request), self._pending = self._pending, None
                self._busy = True
            try:
                result = self._work(request)
            except Exception as error:  # reported, never fatal to the thread
                self._failed(ticket, error)
            else:
                self._deliver(ticket, result)
            finally:
                with self._condition:
                    self._busy = False
                    self._condition.notify_all()
