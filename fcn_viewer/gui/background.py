"""Worker threads run below the window's priority, so the event loop gets a core first even while
inference keeps every core busy (a 2-core laptop running the net on both)."""

from __future__ import annotations

import os
import sys
import threading

from PySide6.QtCore import Qt, QThread

# Linux nice value of the worker threads (and of the BLAS/OpenMP threads they start): 0 is the window's.
BACKGROUND_NICE = 10


def start_in_background(thread: QThread) -> None:
    """Starts ``thread`` at low priority: Qt's on Windows and macOS, a higher nice value on Linux, where
    Qt's priorities do not apply to ordinary threads."""
    thread.started.connect(lower_current_thread_priority, Qt.ConnectionType.DirectConnection)
    thread.start(QThread.Priority.LowPriority)


def lower_current_thread_priority() -> None:
    """Raises the calling thread's nice value to at least BACKGROUND_NICE on Linux; threads it starts
    later inherit it."""
    if sys.platform.startswith("linux"):
        thread = threading.get_native_id()
        try:
            os.setpriority(os.PRIO_PROCESS, thread, max(BACKGROUND_NICE, os.getpriority(os.PRIO_PROCESS, thread)))
        except OSError:  # not permitted in some sandboxes: the thread keeps the default priority
            pass
