"""The dataset browser: per-image scores per stage in a sortable table with the dataset row pinned on top."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from fcn_viewer.model.stages import Stage
from fcn_viewer.teaching.dataset_table import TableRow, column_names
from fcn_viewer.teaching.ground_truth import percent

SORT_ROLE = Qt.ItemDataRole.UserRole
ROW_PADDING = 6  # pixels above and below a row's text: compact rows, so the dock shows many at once
ROOT = QModelIndex()
Index = QModelIndex | QPersistentModelIndex
DATASET_TIP = ("All scored images together, as `fcn-viewer evaluate` reports them: accuracy and mIoU over all their "
               "pixels, BF the mean of the images' BF")


class ScoreTableModel(QAbstractTableModel):
    """Rows of :class:`TableRow`: the image name, then pixel accuracy, mIoU and BF per stage (percent)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.rows: list[TableRow] = []
        self._columns = column_names(())
        self._where: dict[Path | None, int] = {}

    def set_images(self, paths: Sequence[Path], stages: Sequence[Stage]) -> None:
        """One row per image, not scored yet, with these stages' columns."""
        self.beginResetModel()
        self._columns = column_names(stages)
        self.rows = [TableRow(path.name, (math.nan,) * (len(self._columns) - 1), path) for path in paths]
        self._where = {row.path: number for number, row in enumerate(self.rows)}
        self.endResetModel()

    def put(self, row: TableRow) -> None:
        """Fills in an image's row (found by its path), or sets the dataset row."""
        number = self._where.get(row.path)
        if number is None:
            number = self._where[row.path] = len(self.rows)
            self.beginInsertRows(QModelIndex(), number, number)
            self.rows.append(row)
            self.endInsertRows()
            return
        self.rows[number] = row
        self.dataChanged.emit(self.index(number, 0), self.index(number, self.columnCount() - 1))

    def rowCount(self, parent: Index = ROOT) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = ROOT) -> int:
        return 0 if parent.isValid() else len(self._columns)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self._columns[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, column = self.rows[index.row()], index.column()
        value = row.values[column - 1] if column else None
        if role == Qt.ItemDataRole.DisplayRole:
            return row.name if value is None else percent(value)
        if role == SORT_ROLE:
            return row.name if value is None else value
        if role == Qt.ItemDataRole.TextAlignmentRole and column:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.FontRole and row.is_dataset:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            return DATASET_TIP if row.is_dataset else (row.error or str(row.path))
        return None


class PinnedSortProxy(QSortFilterProxyModel):
    """Sorts the images by the clicked column (undefined values lowest); the dataset row stays on top."""

    def lessThan(self, left: Index, right: Index) -> bool:
        rows = self.sourceModel().rows  # type: ignore[attr-defined]
        ascending = self.sortOrder() == Qt.SortOrder.AscendingOrder
        if rows[left.row()].is_dataset:
            return ascending
        if rows[right.row()].is_dataset:
            return not ascending
        a, b = left.data(SORT_ROLE), right.data(SORT_ROLE)
        if isinstance(a, float):
            return (-math.inf if math.isnan(a) else a) < (-math.inf if math.isnan(b) else b)
        return str(a) < str(b)


class DatasetView(QWidget):
    """Draws the table and the run's progress; forwards opening an image, scoring, stopping and the split choice."""

    openImage = Signal(object)  # Path
    scoreRequested = Signal()
    stopRequested = Signal()
    splitChanged = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.folder = QLabel("No dataset open: Teaching ▸ Open Dataset Folder…")
        self.split = QComboBox()
        self.split.setToolTip("Which split of the dataset to list")
        self.split.activated.connect(lambda: self.splitChanged.emit(self.split.currentText()))
        self.score = QPushButton("Score All Images")
        self.score.setToolTip("Run the net(s) on every image and score each against its label")
        self.stop = QPushButton("Stop")
        self.score.clicked.connect(self.scoreRequested)
        self.stop.clicked.connect(self.stopRequested)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m images")
        self.progress.setTextVisible(True)
        self.progress.setMinimumWidth(self.fontMetrics().horizontalAdvance("8888 / 8888 images") + 40)
        self.status = QLabel()
        self.model = ScoreTableModel(self)
        self.proxy = PinnedSortProxy(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)  # the order images are scored in: rows fill from the top
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + ROW_PADDING)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.clicked.connect(lambda index: self.open_row(index.row()))
        self.previous = QPushButton("◀ Previous")
        self.next = QPushButton("Next ▶")
        self.previous.setToolTip("Open the image above the selected one, in the table's order")
        self.next.setToolTip("Open the image below the selected one, in the table's order")
        self.previous.clicked.connect(lambda: self.step(-1))
        self.next.clicked.connect(lambda: self.step(1))
        top = QHBoxLayout()
        top.addWidget(self.folder, 1)
        top.addWidget(QLabel("Split"))
        top.addWidget(self.split)
        top.addWidget(self.score)
        top.addWidget(self.stop)
        top.addWidget(self.progress)
        bottom = QHBoxLayout()
        bottom.addWidget(self.previous)
        bottom.addWidget(self.next)
        bottom.addWidget(self.status, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addLayout(bottom)
        self.set_running(False)

    def set_dataset(self, root: Path, splits: Sequence[str], split: str) -> None:
        self.folder.setText(f"Dataset: {root}")
        self.split.clear()
        self.split.addItems(list(splits))
        self.split.setCurrentText(split)

    def set_running(self, running: bool) -> None:
        self.score.setEnabled(not running)
        self.stop.setEnabled(running)
        self.progress.setVisible(running)

    def list_images(self, paths: Sequence[Path], stages: Sequence[Stage], status: str) -> None:
        """A table of these images, unscored, with these stages' columns."""
        self.model.set_images(paths, stages)
        self.status.setText(status)

    def start(self, what: str) -> None:
        """A run begins: the dataset row, pinned on top, says so until :meth:`finish` fills it in."""
        self.progress.setRange(0, len(self.model.rows))
        self.progress.setValue(0)
        columns = self.model.columnCount() - 1
        self.model.put(TableRow(f"dataset (scoring {len(self.model.rows)} images…)", (math.nan,) * columns))
        self.status.setText(f"Scoring {what}…")
        self.set_running(True)

    def add_image(self, row: TableRow, done: int) -> None:
        self.model.put(row)
        self.progress.setValue(done)

    def finish(self, row: TableRow, what: str, scored: int | None = None) -> None:
        """A run ended: all images scored, or (``scored`` given) only that many before Stop."""
        self.model.put(row)
        self.set_running(False)
        images = sum(1 for image in self.model.rows if not image.is_dataset)
        done = f"Scored {what}" if scored is None else f"{scored} of {images} images scored; stopped"
        self.status.setText(f"{done}. Click a row to open its image; click a header to sort.")

    def select_path(self, path: Path) -> None:
        """Highlights the row of the image at ``path`` (the one the window shows), or none; opens nothing."""
        for proxy_row in range(self.proxy.rowCount()):
            row_path = self.row_path(proxy_row)
            if row_path is not None and row_path.absolute() == path.absolute():
                self.table.selectRow(proxy_row)
                self.table.scrollTo(self.proxy.index(proxy_row, 0))
                return
        self.table.clearSelection()

    def row_path(self, proxy_row: int) -> Path | None:
        source = self.proxy.mapToSource(self.proxy.index(proxy_row, 0))
        return self.model.rows[source.row()].path if source.isValid() else None

    def open_row(self, proxy_row: int) -> None:
        path = self.row_path(proxy_row)
        if path is not None:
            self.table.selectRow(proxy_row)
            self.openImage.emit(path)

    def step(self, delta: int) -> None:
        """Opens the next (or previous) image row in the table's current order, skipping the dataset row."""
        rows = [r for r in range(self.proxy.rowCount()) if self.row_path(r) is not None]
        if not rows:
            return
        selected = self.table.selectionModel().selectedRows()
        current = selected[0].row() if selected else None
        position = rows.index(current) + delta if current in rows else (0 if delta > 0 else len(rows) - 1)
        self.open_row(rows[position % len(rows)])
