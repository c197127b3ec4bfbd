"""The class legend (colour, name, share, show/hide) and the heat-map colour bar."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from fcn_viewer.classes import Color
from fcn_viewer.gui.panels import qimage_from_rgb
from fcn_viewer.gui.state import ViewState
from fcn_viewer.render import HEAT_LUT
from fcn_viewer.view.options import DisplayOptions

SWATCH_SIZE = 14


def swatch(color: Color, size: int = SWATCH_SIZE) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(*color))
    painter = QPainter(pixmap)
    painter.setPen(QColor(0, 0, 0, 120))
    painter.drawRect(0, 0, size - 1, size - 1)
    painter.end()
    return QIcon(pixmap)


class ColorBar(QWidget):
    """The heat-map scale from 0 to 100 %, under a heading that says what it measures and a line that explains it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._heading = QLabel()
        self._heading.setObjectName("colorbarHeading")
        self._heading.setStyleSheet("font-weight: 600;")
        self._heading.setWordWrap(True)
        self._detail = QLabel()
        self._detail.setWordWrap(True)
        for label in (self._heading, self._detail):  # wrapped to the legend's width, never widening it
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._bar = _HeatBar()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 4)
        layout.setSpacing(2)
        layout.addWidget(self._heading)
        layout.addWidget(self._detail)
        layout.addWidget(self._bar)

    def set_caption(self, heading: str, detail: str) -> None:
        self._heading.setText(heading)
        self._detail.setText(detail)

    def caption(self) -> str:
        return f"{self._heading.text()}\n{self._detail.text()}"


class _HeatBar(QWidget):
    """The colour ramp with 0 %, 50 % and 100 % marked under it."""

    def __init__(self) -> None:
        super().__init__()
        self._image = qimage_from_rgb(HEAT_LUT[None, :, :])
        self.setFixedHeight(16 + self.fontMetrics().height())

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        bar = QRectF(4, 0, self.width() - 8, 14)
        painter.drawImage(bar, self._image)
        labels = QRectF(4, bar.bottom() + 2, self.width() - 8, self.fontMetrics().height())
        painter.drawText(labels, Qt.AlignmentFlag.AlignLeft, "0 %")
        painter.drawText(labels, Qt.AlignmentFlag.AlignHCenter, "50 %")
        painter.drawText(labels, Qt.AlignmentFlag.AlignRight, "100 %")
        painter.end()


class ClassLegend(QWidget):
    """Every class of the model: a checkbox (show/hide) with its colour, its name and its share of the image."""

    def __init__(self, state: ViewState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._state = state
        self.checkboxes: list[QCheckBox] = []
        self.shares: list[QLabel] = []
        self._names: tuple[str, ...] = ()
        self.colorbar = ColorBar()
        self.colorbar.hide()
        show_all = QPushButton("Show all")
        hide_all = QPushButton("Hide all")
        show_all.clicked.connect(lambda: state.set_all_visible(True))
        hide_all.clicked.connect(lambda: state.set_all_visible(False))
        self._empty = QLabel("No model loaded.")
        self._empty.setWordWrap(True)
        self._rows = QWidget()
        self._grid = QGridLayout(self._rows)
        self._grid.setContentsMargins(2, 2, 2, 2)
        self._grid.setVerticalSpacing(2)
        self._grid.setColumnStretch(0, 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self._rows)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        buttons = QHBoxLayout()
        buttons.addWidget(show_all)
        buttons.addWidget(hide_all)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.colorbar)
        layout.addLayout(buttons)
        layout.addWidget(self._empty)
        layout.addWidget(scroll, 1)
        self.setToolTip("Untick a class to hide it in the Stages tab's panels (the photo shows through there); each "
                        "share is of the image shown in the Stages tab. The Sequence tab lists each frame's own.")
        state.optionsChanged.connect(self._sync)

    def set_classes(self, names: Sequence[str], palette: Sequence[Color]) -> None:
        """Rebuilds the rows for a model's classes, in its colours."""
        for checkbox, share in zip(self.checkboxes, self.shares, strict=True):
            checkbox.deleteLater()
            share.deleteLater()
        self.checkboxes, self.shares = [], []
        for index, name in enumerate(names):
            checkbox = QCheckBox(name)
            checkbox.setIcon(swatch(palette[index]))
            checkbox.setChecked(index not in self._state.options.hidden)
            checkbox.toggled.connect(lambda checked, i=index: self._state.set_class_visible(i, checked))
            share = QLabel("")
            share.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            share.setToolTip("share of the image in the finest prediction")
            self._grid.addWidget(checkbox, index, 0)
            self._grid.addWidget(share, index, 1)
            self.checkboxes.append(checkbox)
            self.shares.append(share)
        self._grid.setRowStretch(len(self._names), 0)
        self._grid.setRowStretch(len(names), 1)
        self._names = tuple(names)
        self._empty.setVisible(not names)
        self._show_colorbar(self._state.options)

    def set_palette(self, palette: Sequence[Color]) -> None:
        for index, checkbox in enumerate(self.checkboxes):
            checkbox.setIcon(swatch(palette[index]))

    def set_shares(self, shares: Sequence[float] | np.ndarray) -> None:
        """Each class's fraction of the image ('' when no result is shown)."""
        for index, label in enumerate(self.shares):
            label.setText(f"{shares[index]:.1%}" if index < len(shares) else "")

    def _show_colorbar(self, options: DisplayOptions) -> None:
        if options.mode == "confidence":
            self.colorbar.set_caption("Confidence", "the top class's probability at each pixel")
        elif options.mode == "class-probability" and options.chosen_class < len(self._names):
            self.colorbar.set_caption(f"Probability of {self._names[options.chosen_class]}",
                                      "at each pixel")
        self.colorbar.setVisible(options.mode != "classes")

    def _sync(self, options: DisplayOptions, previous: DisplayOptions) -> None:
        self._show_colorbar(options)
        if options.hidden != previous.hidden:
            for index, checkbox in enumerate(self.checkboxes):
                checkbox.blockSignals(True)
                checkbox.setChecked(index not in options.hidden)
                checkbox.blockSignals(False)
