"""Ground-truth tab: the label beside the photo, each stage's pixel accuracy, mIoU and BF, and its wrong pixels."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from fcn_viewer.classes import Color
from fcn_viewer.gui.cells import TextCell
from fcn_viewer.gui.compare_view import STAGES, ModeToggle
from fcn_viewer.gui.panels import PanelGrid
from fcn_viewer.gui.tab import TabFrame, TabPage, status_line
from fcn_viewer.teaching.compare import CompareMode
from fcn_viewer.teaching.ground_truth import TruthPictures, percent
from fcn_viewer.teaching.image_analysis import GroundTruth, ImageAnalysis

METRIC_COLUMNS = (("pixel acc", "pixel_accuracy"), ("mIoU", "mean_iou"), ("BF", "boundary_f1"))
NO_MODEL = "Load a model to score it against the ground truth."


class TruthView(TabPage):
    """Draws an analysis's label, scores and error maps; asks the window for a label file through ``pickLabel``.

    It shows pictures made off the GUI thread (the classroom's analysis of the frame, :meth:`set_analysis`); a
    palette change recolours the label only while the tab is visible (else when it is next shown)."""

    title = "Ground Truth"
    menu_title = "&Ground Truth"
    shortcut = "Ctrl+4"
    pickLabel = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pictures: TruthPictures | None = None
        self._palette: tuple[Color, ...] = ()  # the palette to show the label in
        self.toggle = ModeToggle()
        self.label_path = QLabel()
        self.label_path.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.pick = QPushButton("Open Label…")
        self.pick.setToolTip("Choose the ground-truth label image (class indices, CamVid or VOC palette PNG)")
        self.pick.clicked.connect(self.pickLabel)
        self.status = status_line()
        self.photo = self._panel("photo")
        self.truth = self._panel("truth")
        self.table = QTableWidget(0, len(METRIC_COLUMNS))
        self.table.setHorizontalHeaderLabels([title for title, _ in METRIC_COLUMNS])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setStyleSheet("font-size: 15px;")
        self.table.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.table.setToolTip("This image alone, scored as `fcn-viewer evaluate` scores a split (void ignored)")
        self.table_cell = TextCell()  # the table at the top of its image-sized cell, only as tall as its rows
        cell = QVBoxLayout(self.table_cell)
        cell.setContentsMargins(0, 0, 0, 0)
        cell.addWidget(self.table)
        cell.addStretch(1)
        self.errors = {stage: self._panel(f"errors-{stage}") for stage in STAGES}
        # The photo, the label and the scores, then the error maps: every picture at the image's aspect ratio.
        self.grid = PanelGrid()
        for panel in [self.photo, self.truth]:
            self.grid.add(panel.key, panel)
        self.grid.add("table", self.table_cell)
        for panel in self.errors.values():
            self.grid.add(panel.key, panel)
        top = QHBoxLayout()
        top.addWidget(self.toggle)
        top.addSpacing(20)
        top.addWidget(self.label_path, 1)
        top.addWidget(self.pick)
        self._arrange(top, self.status, (self.grid, 1))
        self.clear(None, "Open an image with a model loaded; its label is found next to it or picked here.")

    def set_frame(self, frame: TabFrame) -> None:
        """Nothing yet: the classroom's analysis of the frame fills this tab (:meth:`set_analysis`)."""

    def clear(self, label: Path | None = None, message: str = NO_MODEL) -> None:
        """Nothing scored (yet): the label file in use (if any) and ``message``."""
        self._pictures = None
        self.label_path.setText(f"Label: {label}" if label is not None else "Label: none")
        self.status.setText(message)
        self.grid.show_panels([], (), (1, 1))

    def set_analysis(
        self,
        analysis: ImageAnalysis,
        ground_truth: GroundTruth,
        pictures: TruthPictures | None,
        image: np.ndarray,
        palette: Sequence[Color],
        mode: CompareMode,
    ) -> None:
        """Shows ``analysis``'s scores and ``pictures`` (none: the label was not usable), recoloured if they were
        made with another palette."""
        self.label_path.setText(f"Label: {ground_truth.path}")
        if pictures is None or analysis.label is None or analysis.valid is None:
            self.clear(ground_truth.path, analysis.truth_error or "The label could not be used.")
            return
        self._pictures, self._palette = pictures, tuple(palette)
        height, width = analysis.label.shape
        self.photo.set_title(f"photo · 3×{height}×{width}", "photo")
        self.photo.view.set_pixels(image, (height, width))
        void = int((~analysis.valid).sum())
        self.truth.set_title(f"ground truth · {height}×{width} · {void:,} void px (black)",
                             f"ground truth · {height}×{width}")
        self.truth.view.set_pixels(pictures.colored, (height, width))
        self.table.setRowCount(len(analysis.truth))
        for row, (stage, scored) in enumerate(analysis.truth.items()):
            heading = QTableWidgetItem(stage)
            heading.setToolTip(analysis.titles[stage])
            self.table.setVerticalHeaderItem(row, heading)
            for column, (_, key) in enumerate(METRIC_COLUMNS):
                item = QTableWidgetItem(percent(float(scored.summary[key])))
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                item.setToolTip(analysis.titles[stage])
                self.table.setItem(row, column, item)
        self._fit_table_height()
        scored_pixels = int(analysis.valid.sum())
        errors = [f"errors-{stage}" for stage in STAGES if stage in analysis.truth]
        self.grid.show_panels(["photo", "truth", "table", *errors], (), (height, width))
        for stage, panel in self.errors.items():
            truth = analysis.truth.get(stage)
            if truth is not None:
                wrong = int(truth.errors.sum()) / scored_pixels if scored_pixels else math.nan
                title = f"{stage} errors · {height}×{width} · {percent(wrong)} of scored px wrong"
                panel.set_title(title, f"{stage} errors · {height}×{width} · {percent(wrong)} wrong",
                                f"{analysis.titles[stage]}: its wrong pixels in red (void pixels are not scored)")
                panel.view.set_pixels(pictures.errors[stage], (height, width))
        which = "the loaded net's stages" if mode == "stages" else "the separately trained nets"
        missing = f" Not installed: {', '.join(analysis.missing)}." if analysis.missing else ""
        self.status.setText(
            f"Scoring {which} against the label, void ignored; BF tolerance {ground_truth.tolerance:g} px.{missing}"
        )
        self._refresh()
        self.link.fit()

    def _fit_table_height(self) -> None:
        """The table exactly as tall as its header and rows: no empty white area under the last stage."""
        table = self.table
        table.resizeRowsToContents()
        header = table.horizontalHeader()
        table.setFixedHeight(header.sizeHint().height() + table.verticalHeader().length() + 2 * table.frameWidth())

    def set_colors(self, palette: Sequence[Color], opacity: float) -> None:
        """Shows the label in ``palette`` (opaque: ``opacity`` is the masks'): now if the tab is visible, else when it
        is next shown."""
        self._palette = tuple(palette)
        self._refresh()

    def _redraw(self) -> None:
        """Recolours the label if it is not in the chosen palette."""
        pictures = self._pictures
        if pictures is None or pictures.palette == self._palette:
            return
        self._pictures = pictures.recolored(self._palette)
        self.truth.view.set_pixels(self._pictures.colored, pictures.label.shape)
