"""A text cell for the teaching tabs' panel grids."""

from __future__ import annotations

from PySide6.QtWidgets import QSizePolicy, QWidget


class TextCell(QWidget):
    """A cell of a :class:`~fcn_viewer.gui.panels.PanelGrid` holding text (a key, counts, a table): it takes the
    image-sized cell it is given and never grows its row to fit its wrapped text."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.setMinimumSize(1, 1)

    def hasHeightForWidth(self) -> bool:
        return False

