"""The image panels: zoomable views linked to show the same image region, in a grid that reflows."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QImage,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QPixmap,
    QResizeEvent,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QGridLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QStyle,
    QStyleOptionGraphicsItem,
    QVBoxLayout,
    QWidget,
)

ZOOM_STEP = 1.25
MIN_SCALE, MAX_SCALE = 1 / 32, 64.0
MARGIN, SPACING = 6, 8
VIEW_BACKGROUND = QColor(38, 38, 42)
MARKER_RADIUS = 7
TITLE_SHRINK = (1.0, 0.9)


def qimage_from_rgb(pixels: np.ndarray) -> QImage:
    """An H×W×3 uint8 array as a QImage that owns a copy of the pixels."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    height, width = pixels.shape[:2]
    return QImage(pixels.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def pixmap_from_rgb(pixels: np.ndarray) -> QPixmap:
    """An H×W×3 uint8 array as a QPixmap: one copy, the pixmap's own (the QImage only borrows ``pixels``)."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    height, width = pixels.shape[:2]
    return QPixmap.fromImage(QImage(pixels.data, width, height, 3 * width, QImage.Format.Format_RGB888))


def rgb_from_pixmap(pixmap: QPixmap) -> np.ndarray:
    """A QPixmap's pixels as an H×W×3 uint8 array."""
    return rgb_from_qimage(pixmap.toImage())


def rgb_from_qimage(image: QImage) -> np.ndarray:
    """A QImage's pixels as an H×W×3 uint8 array."""
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    width, height = image.width(), image.height()
    rows = np.frombuffer(image.constBits(), dtype=np.uint8).reshape(height, image.bytesPerLine())
    return rows[:, : 3 * width].reshape(height, width, 3).copy()


class PictureItem(QGraphicsPixmapItem):
    """A panel's picture: magnified, its pixels stay sharp squares (nearest neighbour), so a score map shows its
    cells; shown smaller than it is, each screen pixel is the average of the pixels it covers, so thin lines (outlines,
    class edges) stay continuous at fit zoom instead of breaking into dashes where nearest neighbour skips them."""

    def __init__(self) -> None:
        super().__init__()
        self.setTransformationMode(Qt.TransformationMode.FastTransformation)
        self._reduced: tuple[tuple[int, int, int], QPixmap] | None = None  # (pixmap key, width, height), copy

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        pixmap = self.pixmap()
        transform = painter.worldTransform()
        scale_x, scale_y = math.hypot(transform.m11(), transform.m12()), math.hypot(transform.m21(), transform.m22())
        if pixmap.isNull() or (scale_x >= 1 and scale_y >= 1):
            super().paint(painter, option, widget)  # type: ignore[arg-type]  # Qt takes a null widget
            return
        width = max(1, round(pixmap.width() * min(scale_x, 1.0)))
        height = max(1, round(pixmap.height() * min(scale_y, 1.0)))
        key = (pixmap.cacheKey(), width, height)
        if self._reduced is None or self._reduced[0] != key:  # once per picture and zoom, not per paint
            reduced = pixmap.scaled(width, height, Qt.AspectRatioMode.IgnoreAspectRatio,
                                    Qt.TransformationMode.SmoothTransformation)  # area average when shrinking
            self._reduced = (key, reduced)
        reduced = self._reduced[1]
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        painter.drawPixmap(QRectF(0, 0, pixmap.width(), pixmap.height()), reduced, QRectF(reduced.rect()))
        painter.restore()


class PanelView(QGraphicsView):
    """One panel's picture in image coordinates: whatever its resolution, it covers the whole image."""

    zoomRequested = Signal(object, float, QPointF)  # view, factor, scene point to keep under the cursor
    panned = Signal(object)
    hovered = Signal(QPointF)
    hoverLeft = Signal()
    resized = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.pixmap_item = PictureItem()
        self.scene().addItem(self.pixmap_item)
        self.marker = QGraphicsPathItem(_crosshair())
        self.marker.setPen(QPen(QColor(255, 255, 255), 1.5))
        self.marker.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.marker.setZValue(1)
        self.marker.hide()
        self.scene().addItem(self.marker)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setBackgroundBrush(VIEW_BACKGROUND)
        self.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setMouseTracking(True)
        self.setAcceptDrops(False)
        self.viewport().setAcceptDrops(False)
        self.setMinimumSize(80, 60)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)

    def set_pixels(self, pixels: np.ndarray, image_size: tuple[int, int]) -> None:
        """Shows ``pixels`` stretched over an image of ``image_size`` (height, width): see :class:`PictureItem`."""
        height, width = image_size
        self.pixmap_item.setPixmap(pixmap_from_rgb(pixels))
        scale_x, scale_y = width / pixels.shape[1], height / pixels.shape[0]
        self.pixmap_item.setTransform(QTransform.fromScale(scale_x, scale_y))
        self.scene().setSceneRect(QRectF(0, 0, width, height))

    def center(self) -> QPointF:
        """The scene point at the middle of the viewport."""
        inverse, _ = self.viewportTransform().inverted()
        size = self.viewport().size()
        return inverse.map(QPointF(size.width() / 2, size.height() / 2))

    def show_marker(self, point: QPointF | None) -> None:
        if point is None:
            self.marker.hide()
        else:
            self.marker.setPos(point)
            self.marker.show()

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoomRequested.emit(self, ZOOM_STEP**steps, self.mapToScene(event.position().toPoint()))
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        super().mouseMoveEvent(event)
        self.hovered.emit(self.mapToScene(event.position().toPoint()))

    def leaveEvent(self, event: object) -> None:
        super().leaveEvent(event)  # type: ignore[arg-type]
        self.hoverLeft.emit()

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        super().scrollContentsBy(dx, dy)
        self.panned.emit(self)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.resized.emit()


def _crosshair() -> QPainterPath:
    path = QPainterPath()
    path.moveTo(-MARKER_RADIUS, 0)
    path.lineTo(MARKER_RADIUS, 0)
    path.moveTo(0, -MARKER_RADIUS)
    path.lineTo(0, MARKER_RADIUS)
    return path


class ViewLink(QObject):
    """Keeps every linked view at one zoom and one centre, so all panels show the same image region."""

    scaleChanged = Signal(float)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._views: list[PanelView] = []
        self._scale = 1.0
        self._center = QPointF()
        self._fitting = True
        self._syncing = False
        self._refit = QTimer(self, singleShot=True, interval=0)
        self._refit.timeout.connect(self._follow_resize)

    @property
    def scale(self) -> float:
        return self._scale

    @property
    def fitting(self) -> bool:
        """Whether the views follow the window size (fit) rather than a zoom the user chose."""
        return self._fitting

    def add(self, view: PanelView) -> None:
        self._views.append(view)
        view.zoomRequested.connect(self._zoom_at)
        view.panned.connect(self._follow_pan)
        view.resized.connect(self._refit.start)

    def refresh(self) -> None:
        """Refits (or re-centres) the views once pending layouts are done, e.g. when they are shown again."""
        self._refit.start()

    def zoom_by(self, factor: float) -> None:
        """Zooms every view about the common centre."""
        self._zoom_at(None, factor, self._center)

    def set_scale(self, scale: float) -> None:
        """Screen pixels per image pixel (1.0 is 100 %), about the common centre."""
        self._fitting = False
        self._apply(scale, self._center)

    def fit(self) -> None:
        """Shows the whole image in every view, and keeps doing so as the views resize."""
        views = self._shown_views()
        if not views:
            return
        rect = views[0].sceneRect()
        if rect.isEmpty():
            return
        scale = min(
            min(view.viewport().width() / rect.width(), view.viewport().height() / rect.height()) for view in views
        )
        self._fitting = True
        self._apply(scale, rect.center())

    def _shown_views(self) -> list[PanelView]:
        shown = [view for view in self._views if view.isVisible()]
        return shown or [view for view in self._views if not view.isHidden()]

    def _zoom_at(self, source: PanelView | None, factor: float, anchor: QPointF) -> None:
        scale = min(max(self._scale * factor, MIN_SCALE), MAX_SCALE)
        center = source.center() if source is not None else self._center
        center = anchor + (center - anchor) * (self._scale / scale)
        self._fitting = False
        self._apply(scale, center)

    def _apply(self, scale: float, center: QPointF) -> None:
        self._scale, self._center = scale, center
        self._syncing = True
        try:
            for view in self._views:
                view.setTransform(QTransform.fromScale(scale, scale))
                view.centerOn(center)
        finally:
            self._syncing = False
        self.scaleChanged.emit(scale)

    def _follow_pan(self, source: PanelView) -> None:
        if self._syncing:
            return
        self._center = source.center()
        self._syncing = True
        try:
            for view in self._views:
                if view is not source:
                    view.centerOn(self._center)
        finally:
            self._syncing = False

    def _follow_resize(self) -> None:
        if self._fitting:
            self.fit()
        else:
            self._apply(self._scale, self._center)


class FittedLabel(QLabel):
    """A one-line label that, when too narrow, shrinks its font a little, then shows its shorter
    alternative, and only then ends in …; text() stays the full text."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._shorter = ""

    def set_texts(self, text: str, shorter: str) -> None:
        self._shorter = shorter
        self.setText(text)
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        rect = self.contentsRect()
        font, text = self._fitting_font_and_text(rect.width())
        painter.setFont(font)
        text = QFontMetrics(font).elidedText(text, Qt.TextElideMode.ElideRight, rect.width())
        painter.drawText(rect, int(self.alignment() | Qt.AlignmentFlag.AlignVCenter), text)
        painter.end()

    def _fitting_font_and_text(self, width: int) -> tuple[QFont, str]:
        candidates = [self.text(), self._shorter] if self._shorter else [self.text()]
        font = self.font()
        for text in candidates:
            for scale in TITLE_SHRINK:
                font = QFont(self.font())
                font.setPointSizeF(self.font().pointSizeF() * scale)
                if QFontMetrics(font).horizontalAdvance(text) <= width:
                    return font, text
        return font, candidates[-1]


class Panel(QFrame):
    """A titled view: the title names the stage, its stride and its tensor's shape."""

    def __init__(self, key: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.key = key
        self.setObjectName("panel")
        self.title = FittedLabel()
        self.title.setObjectName("panelTitle")
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.view = PanelView()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        layout.addWidget(self.view, 1)

    def set_title(self, text: str, shorter: str, tooltip: str = "") -> None:
        self.title.set_texts(text, shorter)
        self.title.setToolTip(f"{text}\n{tooltip}" if tooltip else text)
        self.view.setToolTip(tooltip)


class InfoPanel(QScrollArea):
    """Facts about the shown result: model, device, timing, alignment crops, upsampling layers. Its cell is an
    image's size (or more: :class:`PanelGrid` gives it the free cells below it); text that does not fit scrolls."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel()
        self.label.setObjectName("infoPanel")
        self.label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setWidget(self.label)
        self.setWidgetResizable(True)
        self.label.setAutoFillBackground(False)
        self.viewport().setAutoFillBackground(False)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)  # never cut silently
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.setMinimumSize(1, 1)  # its cell is an image's size: the text never stretches its row

    def text(self) -> str:
        return self.label.text()

    def set_lines(self, lines: list[str]) -> None:
        self.label.setText("\n".join(lines))
        self.setToolTip(self.text())  # all of it, also while it scrolls

    def text_height(self, width: int) -> int:
        """How tall the whole text is at ``width``."""
        return max(self.label.heightForWidth(width), 0)

    def cut(self) -> bool:
        """Whether some of the text lies outside the panel (then its scroll bar shows)."""
        return self.verticalScrollBar().maximum() > 0


def grid_positions(keys: list[str], stages: tuple[str, ...], columns: int) -> dict[str, tuple[int, int]]:
    """Where each panel goes: stage-aligned rows when there is room (score maps above their masks), else a flow."""
    if stages and columns >= len(stages) + 1:
        positions = {"input": (0, 0), "info": (1, 0)}
        for column, stage in enumerate(stages, start=1):
            positions[f"scores-{stage}"] = (0, column)
            positions[f"mask-{stage}"] = (1, column)
        return {key: positions[key] for key in keys}
    return {key: divmod(index, columns) for index, key in enumerate(keys)}


def stage_row_positions(keys: list[str], stages: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """Stage-aligned the other way round: one row per stage (score map, then its mask), the input and the info in
    the first column."""
    positions = {"input": (0, 0), "info": (1, 0)}
    for row, stage in enumerate(stages):
        positions[f"scores-{stage}"] = (row, 1)
        positions[f"mask-{stage}"] = (row, 2)
    return {key: positions[key] for key in keys}


LayoutMode = Literal["grid", "rows", "columns"]
STRIP_ASPECT = 2.5  # images this much wider than tall (or taller than wide) may get a strip of panels
STRIP_GAIN = 1.25  # ... when the strip shows them at least this much larger than the best grid
ALIGNED_SHARE = 0.9  # a stage-aligned grid is kept while it shows the image at least this large relative to the best


@dataclass(frozen=True)
class PanelLayout:
    """Where each panel goes and how large its picture is. ``mode`` "grid": a grid, stage-aligned when that is nearly
    as large as the best; "rows": a strip with one panel per row (very wide images), "columns": one per column (very
    tall ones), that scrolls. Every picture has the image's aspect ratio."""

    mode: LayoutMode
    positions: dict[str, tuple[int, int]]
    scale: float  # screen pixels per image pixel when fitted
    cell: tuple[int, int]  # (width, height) of one panel's picture, without its title

    @property
    def columns(self) -> int:
        return max((column for _, column in self.positions.values()), default=-1) + 1

    @property
    def rows(self) -> int:
        return max((row for row, _ in self.positions.values()), default=-1) + 1


def plan_layout(
    keys: list[str],
    stages: tuple[str, ...],
    image_size: tuple[int, int],
    area: tuple[float, float],
    title: float,
    spacing: float,
    scrollbar: float = 0.0,
) -> PanelLayout:
    """The layout that shows the panels ``keys`` of an image of ``image_size`` (height, width) largest in ``area``
    (width, height); each panel has a ``title`` line above its picture.

    Candidates: every flowing grid, and the two stage-aligned grids (a column per stage with the score map above its
    mask, or a row per stage), which win when nearly as large as the best. A very wide (tall) image gets one panel per
    row (column), as wide (tall) as the area, in a strip that scrolls, when that shows it markedly larger."""
    image_height, image_width = (max(1, n) for n in image_size)
    width, height = (max(1.0, n) for n in area)
    count = max(len(keys), 1)

    def scale_of(positions: dict[str, tuple[int, int]]) -> float:
        columns = max(column for _, column in positions.values()) + 1
        rows = max(row for row, _ in positions.values()) + 1
        cell_width = (width - (columns - 1) * spacing) / columns
        cell_height = (height - (rows - 1) * spacing) / rows - title
        return max(min(cell_width / image_width, cell_height / image_height), 1e-6)

    flows = [grid_positions(keys, (), columns) for columns in range(1, count + 1)] if keys else [{"": (0, 0)}]
    best_scale, positions = max(((scale_of(p), p) for p in flows), key=lambda pair: pair[0])
    if stages:
        aligned = [grid_positions(keys, stages, len(stages) + 1), stage_row_positions(keys, stages)]
        aligned_scale, aligned_positions = max(((scale_of(p), p) for p in aligned), key=lambda pair: pair[0])
        if aligned_scale >= ALIGNED_SHARE * best_scale:
            best_scale, positions = aligned_scale, aligned_positions
    mode: LayoutMode = "grid"
    scale = best_scale
    if image_width >= STRIP_ASPECT * image_height:
        strip = min((width - scrollbar) / image_width, (height - title) / image_height)
        if strip >= STRIP_GAIN * best_scale:
            mode, scale, positions = "rows", strip, {key: (index, 0) for index, key in enumerate(keys)}
    elif image_height >= STRIP_ASPECT * image_width:
        strip = min(width / image_width, (height - scrollbar - title) / image_height)
        if strip >= STRIP_GAIN * best_scale:
            mode, scale, positions = "columns", strip, {key: (0, index) for index, key in enumerate(keys)}
    cell = (max(1, math.floor(image_width * scale)), max(1, math.floor(image_height * scale)))
    return PanelLayout(mode, positions if keys else {}, scale, cell)


class PanelGrid(QWidget):
    """Lays the shown panels out by :func:`plan_layout`: each panel sized to the image's aspect ratio, the grid centred;
    a very wide or tall image gets a strip of full-width (full-height) panels that scrolls."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.scroll_area = QScrollArea()
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll_area.setWidgetResizable(True)
        self.inner = QWidget()
        self.scroll_area.setWidget(self.inner)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll_area)
        self._layout = QGridLayout(self.inner)
        self._layout.setContentsMargins(MARGIN, MARGIN, MARGIN, MARGIN)
        self._layout.setSpacing(SPACING)
        self._widgets: dict[str, QWidget] = {}
        self._keys: list[str] = []
        self._stages: tuple[str, ...] = ()
        self._image_size = (1, 1)
        self._positions: dict[str, tuple[int, int]] = {}
        self._info_rows = 1
        self.layout_plan = PanelLayout("grid", {}, 1.0, (1, 1))

    @property
    def columns(self) -> int:
        return self.layout_plan.columns

    def add(self, key: str, widget: QWidget) -> None:
        self._widgets[key] = widget
        widget.hide()

    def show_panels(self, keys: list[str], stages: tuple[str, ...], image_size: tuple[int, int]) -> None:
        """Shows these panels (in this order) for an image of ``image_size`` (height, width); hides the rest."""
        self._keys, self._stages, self._image_size = list(keys), stages, image_size
        self._relayout()
        self._layout.activate()  # the panels have their sizes now, before anyone fits the image into them

    def plan(self, width: float, height: float) -> PanelLayout:
        """The layout for an area of ``width`` × ``height`` (the grid's own size)."""
        scrollbar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        area = (width - 2 * MARGIN, height - 2 * MARGIN)
        return plan_layout(self._keys, self._stages, self._image_size, area, self._title_height(), SPACING, scrollbar)

    def _title_height(self) -> int:
        return self.fontMetrics().height() + 6

    def settle(self) -> None:
        """Lays the panels out now for the grid's current size, not when Qt next gets round to it."""
        self._relayout()
        self._layout.activate()

    def used_height(self, width: int, height: int) -> int:
        """How tall the grid's panels and margins are when it is ``width`` × ``height``: less than ``height`` when the
        width limits them (all of it for a strip, which scrolls)."""
        plan = self.plan(width, height)
        if plan.mode != "grid" or not plan.positions:
            return max(height, 0) if plan.positions else 2 * MARGIN
        used = plan.rows * (plan.cell[1] + self._title_height()) + (plan.rows - 1) * SPACING + 2 * MARGIN
        return min(used, max(height, 0))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._relayout()

    def _relayout(self) -> None:
        plan = self.layout_plan = self.plan(self.width(), self.height())
        spare_width, spare_height = self._spare(plan)
        info_rows = self._info_rows_of(plan, spare_height)
        if plan.positions != self._positions:
            self._place(plan.positions, info_rows)
        elif info_rows != self._info_rows:  # only the info panel's span: the image panels stay where they are
            self._info_rows = info_rows
            info = self._widgets.get("info")
            if info is not None and "info" in plan.positions:
                self._layout.removeWidget(info)
                self._layout.addWidget(info, *plan.positions["info"], info_rows, 1)
        self._size_cells(plan, spare_width, spare_height)

    def _spare(self, plan: PanelLayout) -> tuple[int, int]:
        """The room a centred grid leaves beside and below its cells (none for a strip)."""
        if plan.mode != "grid":
            return 0, 0
        cell_width, cell_height = plan.cell[0], plan.cell[1] + self._title_height()
        spare_width = self.width() - 2 * MARGIN - plan.columns * cell_width - (plan.columns - 1) * SPACING
        spare_height = self.height() - 2 * MARGIN - plan.rows * cell_height - (plan.rows - 1) * SPACING
        return max(spare_width, 0), max(spare_height, 0)

    @staticmethod
    def _info_rows_of(plan: PanelLayout, spare_height: int) -> int:
        """How many grid rows the info panel spans: down through the empty cells of its column, and into the room
        below the grid (one more row) when it reaches the last row; 1 in a strip."""
        if plan.mode != "grid" or "info" not in plan.positions:
            return 1
        row, column = plan.positions["info"]
        taken = {position for key, position in plan.positions.items() if key != "info"}
        rows = 1
        while row + rows < plan.rows and (row + rows, column) not in taken:
            rows += 1
        if row + rows == plan.rows and spare_height > SPACING:
            rows += 1
        return rows

    def _place(self, positions: dict[str, tuple[int, int]], info_rows: int) -> None:
        self._positions, self._info_rows = positions, info_rows
        for widget in self._widgets.values():
            self._layout.removeWidget(widget)
        for key, widget in self._widgets.items():
            if key in positions:
                self._layout.addWidget(widget, *positions[key], info_rows if key == "info" else 1, 1)
                widget.show()
            else:
                widget.hide()

    def _size_cells(self, plan: PanelLayout, spare_width: int, spare_height: int) -> None:
        """Cells of the image's aspect ratio: the grid centred (margins take the rest, but the room below goes to the
        info panel when it reaches the last row), or a strip that scrolls."""
        cell_width, cell_height = plan.cell[0], plan.cell[1] + self._title_height()
        layout = self._layout
        for index in range(layout.rowCount()):
            layout.setRowMinimumHeight(index, 0)
            layout.setRowStretch(index, 1 if index < plan.rows else 0)
        for index in range(layout.columnCount()):
            layout.setColumnMinimumWidth(index, 0)
            layout.setColumnStretch(index, 1 if index < plan.columns else 0)
        rows_strip, columns_strip = plan.mode == "rows", plan.mode == "columns"
        always, off = Qt.ScrollBarPolicy.ScrollBarAlwaysOn, Qt.ScrollBarPolicy.ScrollBarAlwaysOff
        self.scroll_area.setVerticalScrollBarPolicy(always if rows_strip else off)
        self.scroll_area.setHorizontalScrollBarPolicy(always if columns_strip else off)
        if rows_strip:
            heights = [max(cell_height, self._text_height(key, cell_width)) for key in plan.positions]
            for row, row_height in enumerate(heights):
                layout.setRowMinimumHeight(row, row_height)
            layout.setContentsMargins(MARGIN, MARGIN, MARGIN, MARGIN)
            self.inner.setMinimumSize(0, sum(heights) + SPACING * (len(heights) - 1) + 2 * MARGIN)
            return
        if columns_strip:
            for column in range(len(self._keys)):
                layout.setColumnMinimumWidth(column, cell_width)
            layout.setContentsMargins(MARGIN, MARGIN, MARGIN, MARGIN)
            self.inner.setMinimumSize(len(self._keys) * (cell_width + SPACING) - SPACING + 2 * MARGIN, 0)
            return
        self.inner.setMinimumSize(0, 0)
        side = MARGIN + spare_width // 2
        row, _ = plan.positions.get("info", (0, 0))
        if row + self._info_rows > plan.rows:  # the info panel reaches into the room below the grid
            layout.setRowMinimumHeight(plan.rows, spare_height - SPACING)
            layout.setRowStretch(plan.rows, 0)
            layout.setContentsMargins(side, MARGIN, side, MARGIN)
        else:
            layout.setContentsMargins(side, MARGIN, side, MARGIN + spare_height)

    def _text_height(self, key: str, width: int) -> int:
        """How tall a text panel (the info panel) wants to be at ``width``; 0 for an image panel."""
        widget = self._widgets.get(key)
        return widget.text_height(width) if isinstance(widget, InfoPanel) else 0
