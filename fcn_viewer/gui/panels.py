"""The image panels: zoomable views linked to show the same image region, in a grid that reflows."""

from __future__ import annotations

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
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

ZOOM_STEP = 1.25
MIN_SCALE, MAX_SCALE = 1 / 32, 64.0
MIN_PANEL_WIDTH = 240
VIEW_BACKGROUND = QColor(38, 38, 42)
MARKER_RADIUS = 7
TITLE_SHRINK = (1.0, 0.9)


def qimage_from_rgb(pixels: np.ndarray) -> QImage:
    """An H×W×3 uint8 array as a QImage that owns a copy of the pixels."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    height, width = pixels.shape[:2]
    return QImage(pixels.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def pixmap_from_rgb(pixels: np.ndarray) -> QPixmap:
    return QPixmap.fromImage(qimage_from_rgb(pixels))


def rgb_from_pixmap(pixmap: QPixmap) -> np.ndarray:
    """A QPixmap's pixels as an H×W×3 uint8 array."""
    return rgb_from_qimage(pixmap.toImage())


def rgb_from_qimage(image: QImage) -> np.ndarray:
    """A QImage's pixels as an H×W×3 uint8 array."""
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    width, height = image.width(), image.height()
    rows = np.frombuffer(image.constBits(), dtype=np.uint8).reshape(height, image.bytesPerLine())
    return rows[:, : 3 * width].reshape(height, width, 3).copy()


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
        self.pixmap_item = QGraphicsPixmapItem()
        self.pixmap_item.setTransformationMode(Qt.TransformationMode.FastTransformation)
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
        """Shows ``pixels`` stretched (nearest neighbour) over an image of ``image_size`` (height, width)."""
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


class InfoPanel(QLabel):
    """Facts about the shown result: model, device, timing, alignment crops, upsampling layers."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("infoPanel")
        self.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)

    def set_lines(self, lines: list[str]) -> None:
        self.setText("\n".join(lines))


def grid_positions(keys: list[str], stages: tuple[str, ...], columns: int) -> dict[str, tuple[int, int]]:
    """Where each panel goes: stage-aligned rows when there is room (score maps above their masks), else a flow."""
    if stages and columns >= len(stages) + 1:
        positions = {"input": (0, 0), "info": (1, 0)}
        for column, stage in enumerate(stages, start=1):
            positions[f"scores-{stage}"] = (0, column)
            positions[f"mask-{stage}"] = (1, column)
        return {key: positions[key] for key in keys}
    return {key: divmod(index, columns) for index, key in enumerate(keys)}


class PanelGrid(QWidget):
    """Lays the shown panels out: one column per stage plus the input when wide enough, else the
    column count that shows the image largest."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QGridLayout(self)
        self._layout.setContentsMargins(6, 6, 6, 6)
        self._layout.setSpacing(8)
        self._widgets: dict[str, QWidget] = {}
        self._keys: list[str] = []
        self._stages: tuple[str, ...] = ()
        self._image_size = (1, 1)
        self._columns = 0

    @property
    def columns(self) -> int:
        return self._columns

    def add(self, key: str, widget: QWidget) -> None:
        self._widgets[key] = widget
        widget.hide()

    def show_panels(self, keys: list[str], stages: tuple[str, ...], image_size: tuple[int, int]) -> None:
        """Shows these panels (in this order) for an image of ``image_size`` (height, width); hides the rest."""
        self._keys, self._stages, self._image_size = list(keys), stages, image_size
        self._relayout()

    def columns_for(self, width: int, height: int) -> int:
        aligned = len(self._stages) + 1 if self._stages else max(len(self._keys), 1)
        if width >= aligned * MIN_PANEL_WIDTH:
            return aligned
        image_height, image_width = self._image_size
        title = self.fontMetrics().height() + 6

        def image_scale(columns: int) -> float:
            rows = -(-len(self._keys) // columns)
            return min(width / columns / image_width, (height / rows - title) / image_height)

        return max(range(1, aligned), key=image_scale, default=1)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self.columns_for(self.width(), self.height()) != self._columns:
            self._relayout()

    def _relayout(self) -> None:
        self._columns = self.columns_for(self.width(), self.height())
        for widget in self._widgets.values():
            self._layout.removeWidget(widget)
        for index in range(self._layout.columnCount()):
            self._layout.setColumnStretch(index, 0)
        for index in range(self._layout.rowCount()):
            self._layout.setRowStretch(index, 0)
        positions = grid_positions(self._keys, self._stages, self._columns)
        for key, widget in self._widgets.items():
            if key in positions:
                row, column = positions[key]
                self._layout.addWidget(widget, row, column)
                self._layout.setRowStretch(row, 1)
                self._layout.setColumnStretch(column, 1)
                widget.show()
            else:
                widget.hide()
