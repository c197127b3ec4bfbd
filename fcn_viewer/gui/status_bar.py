"""A status bar whose messages never run under its permanent labels: a long message ends in … and its tooltip
holds the whole text."""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import QStatusBar, QStyle, QStyleOption, QWidget

MESSAGE_LEFT = 6  # where Qt's own status bar starts a message
MESSAGE_GAP = 16  # between a message's last character and the first permanent label, so the two never read as one


class ElidingStatusBar(QStatusBar):
    """Draws a temporary message as Qt does, but elided to the room left of the permanent widgets."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.messageChanged.connect(self.setToolTip)  # the full text; an empty message clears it

    def message_rect(self) -> QRect:
        """From the left edge to MESSAGE_GAP before the first visible permanent widget (or the size grip)."""
        right = self.width() - 12
        for child in self.findChildren(QWidget, options=Qt.FindChildOption.FindDirectChildrenOnly):
            if child.isVisible() and child.x() > MESSAGE_LEFT:
                right = min(right, child.x() - MESSAGE_GAP)
        return QRect(MESSAGE_LEFT, 0, max(right - MESSAGE_LEFT, 0), self.height())

    def shown_message(self) -> str:
        """The message as drawn: elided when wider than :meth:`message_rect`."""
        return self.fontMetrics().elidedText(self.currentMessage(), Qt.TextElideMode.ElideRight,
                                             self.message_rect().width())

    def paintEvent(self, event: QPaintEvent) -> None:
        if not self.currentMessage():
            super().paintEvent(event)
            return
        painter = QPainter(self)
        option = QStyleOption()
        option.initFrom(self)
        self.style().drawPrimitive(QStyle.PrimitiveElement.PE_PanelStatusBar, option, painter, self)
        painter.setPen(self.palette().windowText().color())
        flags = Qt.AlignmentFlag.AlignLeading | Qt.AlignmentFlag.AlignVCenter | Qt.TextFlag.TextSingleLine
        painter.drawText(self.message_rect(), int(flags), self.shown_message())
        painter.end()
