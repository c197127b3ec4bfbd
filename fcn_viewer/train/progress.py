"""A dependency-free progress line for training on stderr, redrawn at most a few times a second."""

from __future__ import annotations

import sys
import time


class ProgressLine:
    def __init__(self, total: int, prefix: str, enabled: bool = True, interval: float = 0.5) -> None:
        self.total = total
        self.prefix = prefix
        self.enabled = enabled
        self.interval = interval
        self.started = time.perf_counter()
        self._last = 0.0
        self._live = sys.stderr.isatty()

    def update(self, done: int, status: str) -> None:
        now = time.perf_counter()
        finished = done >= self.total
        if not self.enabled or (not finished and (not self._live or now - self._last < self.interval)):
            return
        self._last = now
        width = 24
        filled = width * done // max(self.total, 1)
        elapsed = now - self.started
        eta = elapsed / max(done, 1) * (self.total - done)
        bar = "#" * filled + "." * (width - filled)
        line = f"{self.prefix} [{bar}] {done}/{self.total} {status} {elapsed:.0f}s<{eta:.0f}s"
        print("\r" + line if self._live else line, end="\n" if finished else "", file=sys.stderr, flush=True)
