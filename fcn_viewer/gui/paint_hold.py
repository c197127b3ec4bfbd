"""Holds back the paints of a window while it draws a frame, so a nested event loop never shows half of one.

A frame is drawn by several widget updates in a row. Nothing normally paints between them, but a nested event
loop (a dialog, a test waiting for a signal) would paint the widgets already updated beside those not yet. While
held, such paints are dropped and the widgets repainted once the frame is whole; when nothing paints mid-frame,
holding costs nothing (unlike pausing the widgets' updates, which repaints them all afterwards).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication, QWidget

HELD = (QEvent.Type.Paint, QEvent.Type.UpdateRequest, QEvent.Type.UpdateLater)


class PaintHold(QObject):
    """While active, drops the paint events of ``window`` and its children, remembering whom to repaint."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self._window = window
        self._held: set[QWidget] = set()

    def __enter__(self) -> PaintHold:
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)
        return self

    def __exit__(self, *_: object) -> None:
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
        held, self._held = self._held, set()
        for widget in held:
            widget.update()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in HELD and isinstance(watched, QWidget) and self._belongs(watched):
            self._held.add(watched)
            return True
        return False

    def _belongs(self, widget: QWidget) -> bool:
        return widget is self._window or self._window.isAncestorOf(widget)
