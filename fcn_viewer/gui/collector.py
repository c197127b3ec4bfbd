"""Python's cycle collector runs on the GUI thread only: a cycle holding Qt objects that is collected on a
worker thread deletes them there, and PySide crashes (a segfault seen in CI while a worker loaded a model)."""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

COLLECT_EVERY_MS = 250


class GuiThreadCollector(QObject):
    """Turns off automatic collection and collects from a timer on the thread it lives on (the GUI thread), each
    generation when its count passes Python's own threshold, so garbage is collected as often as before."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = COLLECT_EVERY_MS) -> None:
        super().__init__(parent)
        gc.disable()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.collect)
        self._timer.start(interval_ms)

    @staticmethod
    def collect() -> None:
        counts, thresholds = gc.get_count(), gc.get_threshold()
        if counts[0] <= thresholds[0]:
            return
        generation = 2 if counts[2] > thresholds[2] else 1 if counts[1] > thresholds[1] else 0
        gc.collect(generation)


def collect_on_gui_thread(app: QObject) -> GuiThreadCollector:
    """The application's one collector (created once, a child of ``app``)."""
    existing = app.findChild(GuiThreadCollector)
    return existing if existing is not None else GuiThreadCollector(app)
