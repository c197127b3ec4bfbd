"""What a teaching tab is to the classroom (TabView, TabFrame) and the scaffold the tabs share (TabPage)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import QLabel, QLayout, QVBoxLayout, QWidget

from fcn_viewer.classes import Color
from fcn_viewer.gui.panels import Panel, ViewLink
from fcn_viewer.teaching.image_analysis import GroundTruth
from fcn_viewer.view.panel_content import ViewResult

PAGE_MARGINS = (8, 6, 8, 6)  # left, top, right, bottom
Row = QWidget | QLayout | tuple[QWidget | QLayout, int]


@dataclass(frozen=True)
class TabFrame:
    """What the tabs draw: the shown result of a loaded model, the viewer's colours, and the image's label, if any."""

    result: ViewResult
    palette: tuple[Color, ...]
    opacity: float
    ground_truth: GroundTruth | None = None


class TabView(Protocol):
    """A teaching tab as the classroom drives it; a new tab is a module with one, and one entry in ``Classroom.tabs``.

    A hidden tab draws what it was given when it is next shown."""

    title: str  # on the tab
    menu_title: str  # in the Teaching menu, "&" before its mnemonic
    shortcut: str  # the menu entry's key, e.g. "Ctrl+2"

    def widget(self) -> QWidget:
        """The page the window puts in the tab."""
        ...

    def set_frame(self, frame: TabFrame) -> None:
        """A newly shown result with a model."""
        ...

    def set_colors(self, palette: Sequence[Color], opacity: float) -> None:
        """The viewer's palette or mask opacity changed."""
        ...

    def clear(self) -> None:
        """No model: nothing to draw, and the tab says what it needs."""
        ...

    def shutdown(self) -> None:
        """The window closes: any thread of the tab stops."""
        ...


class TabPage(QWidget):
    """A tab's page: its panels zoom and pan together (``link``), its rows sit at the tabs' margins, and drawing
    waits while the tab is hidden (:meth:`_refresh` draws by :meth:`_redraw` now, or when the tab is next shown)."""

    shownChanged = Signal(bool)  # the page became visible (True) or hidden (False)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.link = ViewLink(self)
        self._stale = False  # drawing waits for the tab to be shown

    def widget(self) -> QWidget:
        return self

    def shutdown(self) -> None:
        """Nothing to stop; a tab with a thread of its own stops it here."""

    def _panel(self, key: str, link: ViewLink | None = None) -> Panel:
        """A picture panel that zooms and pans with the others of ``link`` (the tab's own by default)."""
        panel = Panel(key)
        (link or self.link).add(panel.view)
        return panel

    def _arrange(self, *rows: Row) -> None:
        """Lays the page out top to bottom at the tabs' margins; a ``(row, stretch)`` pair shares the spare height."""
        page = QVBoxLayout(self)
        page.setContentsMargins(*PAGE_MARGINS)
        for row in rows:
            item, stretch = row if isinstance(row, tuple) else (row, 0)
            if isinstance(item, QLayout):
                page.addLayout(item, stretch)
            else:
                page.addWidget(item, stretch)

    def _refresh(self) -> None:
        """Draws now if the tab is visible, else when it is next shown."""
        self._stale = True
        if self.isVisible():
            self._stale = False
            self._redraw()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._stale:
            self._stale = False
            self._redraw()
        self.shownChanged.emit(True)

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self.shownChanged.emit(False)

    def _redraw(self) -> None:
        """What :meth:`_refresh` draws: nothing here, the tab's own drawing where it defers any."""


def status_line(text: str = "", font_px: int | None = None) -> QLabel:
    """The tab's line of news under its top bar, wrapped."""
    status = QLabel(text)
    status.setWordWrap(True)
    if font_px is not None:
        status.setStyleSheet(f"font-size: {font_px}px;")
    return status


def drops_line() -> QLabel:
    """Hidden until, with a label, a finer stage or a switched-on skip scores lower on this image: then it says so."""
    drops = QLabel()
    drops.setObjectName("skipDrops")
    drops.setWordWrap(True)
    drops.setStyleSheet("font-size: 15px;")
    drops.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    drops.hide()
    return drops
