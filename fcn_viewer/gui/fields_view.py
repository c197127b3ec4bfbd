"""Receptive-fields tab: click a pixel in any panel to see the conv7, pool4-fused and pool3-fused cells that feed it
highlighted in their own panels, and on the photo each cell's stride footprint and theoretical receptive field."""

from __future__ import annotations

import math
from collections.abc import Sequence

from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QMouseEvent, QPen, QResizeEvent, QTransform
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsItem,
    QGraphicsRectItem,
    QGraphicsSimpleTextItem,
    QLabel,
    QScrollArea,
    QWidget,
)

from fcn_viewer.classes import Color
from fcn_viewer.gui.panels import SPACING, Panel, ViewLink
from fcn_viewer.gui.tab import TabFrame, TabPage
from fcn_viewer.render import colorize
from fcn_viewer.teaching.contributions import LAYER_INPUTS, fusion_path
from fcn_viewer.teaching.receptive_field import MAP_TITLES, MAP_TRUNK_LAYERS, Geometry, feeding_cells, map_geometry
from fcn_viewer.view.panel_content import ViewResult

MAPS = ("score_fr", "fuse_pool4", "fuse_pool3")
MAP_COLORS = {"score_fr": QColor(255, 60, 60), "fuse_pool4": QColor(255, 176, 0), "fuse_pool3": QColor(0, 220, 255)}
HEADER_FONT_PX = 13
HEADER_LINES = 4  # the clicked pixel, then one line per map
LABEL_POINTS = (9.5, 8.5, 7.5, 6.5)  # the photo's labels: the first size whose lines fit the photo
LABEL_INSET = 6
CLICK_HINT = "Click a pixel in any panel: the cells that feed it light up, and on the photo their footprints (solid) " \
             "and receptive fields (dashed)."


Rect = tuple[int, int, int, int]  # x, y, width, height


def fields_layout(image_size: tuple[int, int], area: tuple[int, int], title: int, spacing: int) -> list[Rect]:
    """Where the photo and the four map panels go (photo, then the maps row by row) in an ``area`` (width, height):
    the maps in two rows of two, the photo beside them as tall as both rows; every picture (a panel less its
    ``title`` line) at the aspect ratio of ``image_size`` (height, width), as large as fits, the block centred
    across and at the top, so no view shows an empty band."""
    image_height, image_width = (max(1, n) for n in image_size)
    aspect = image_width / image_height
    width, height = area
    # A map picture p wide is p / aspect tall; the photo's picture is as tall as two map panels less one title.
    by_width = (width - 2 * spacing - (title + spacing) * aspect) / 4
    by_height = (height - spacing - 2 * title) / 2 * aspect
    map_width = max(1, math.floor(min(by_width, by_height)))
    map_height = max(1, math.floor(map_width / aspect))
    map_width = max(1, math.floor(map_height * aspect))  # whole pixels both ways: no band from rounding either
    photo_height = 2 * map_height + title + spacing
    photo_width = max(1, math.floor(photo_height * aspect))
    block = photo_width + 2 * (spacing + map_width)
    left = max(0, (width - block) // 2)
    column = left + photo_width + spacing
    row = map_height + title + spacing
    maps = [(column + c * (map_width + spacing), r * row, map_width, map_height + title)
            for r in range(2) for c in range(2)]
    return [(left, 0, photo_width, photo_height + title), *maps]


class FieldsArea(QWidget):
    """Lays out the photo and the map panels by :func:`fields_layout` as the tab resizes or the image changes."""

    def __init__(self, photo: Panel, maps: Sequence[Panel], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image_size = (1, 1)
        self.panels = [photo, *maps]
        for panel in self.panels:
            panel.setParent(self)

    def set_image_size(self, image_size: tuple[int, int]) -> None:
        self.image_size = image_size
        self._place()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._place()

    def _place(self) -> None:
        photo = self.panels[0]
        title = photo.title.sizeHint().height() + photo.layout().spacing()  # type: ignore[union-attr]
        rects = fields_layout(self.image_size, (self.width(), self.height()), title, SPACING)
        for panel, rect in zip(self.panels, rects, strict=True):
            panel.setGeometry(*rect)


class ReceptiveFieldView(TabPage):
    """Draws a result's coarse maps and final mask; a click marks the cells that feed that output pixel."""

    title = "Receptive Fields"
    menu_title = "&Receptive Fields"
    shortcut = "Ctrl+6"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._result: ViewResult | None = None
        self._pending: tuple[ViewResult, tuple[Color, ...]] | None = None
        self._geometry: dict[str, Geometry] = {}
        self._marks: dict[str, list[QGraphicsItem]] = {}
        self.clicked_pixel: tuple[int, int] | None = None
        self.cells: dict[str, tuple[range, range]] = {}
        self.photo_link = ViewLink(self)  # the photo zooms on its own: it is drawn larger than the maps
        self.photo = self._panel("photo", self.photo_link)
        self.maps = {name: self._panel(name) for name in MAPS}
        self.mask_panel = self._panel("mask")
        self.info = QLabel(CLICK_HINT)
        self.info.setWordWrap(True)
        self.info.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.info.setStyleSheet(f"font-size: {HEADER_FONT_PX}px;")
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.header = QScrollArea()  # a fixed height: the panels never move when a click fills it in
        self.header.setWidget(self.info)
        self.header.setWidgetResizable(True)
        self.header.setFrameShape(QFrame.Shape.NoFrame)
        self.header.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.header.viewport().setAutoFillBackground(False)
        self.info.setAutoFillBackground(False)
        self.header.setFixedHeight(HEADER_LINES * self.info.fontMetrics().lineSpacing() + 4)
        self.area = FieldsArea(self.photo, [*self.maps.values(), self.mask_panel])
        self._arrange(self.header, (self.area, 1))
        for relabel in (self.photo.view.resized, self.photo.view.panned, self.photo_link.scaleChanged):
            relabel.connect(self._stack_labels)

    def _panel(self, key: str, link: ViewLink | None = None) -> Panel:
        panel = super()._panel(key, link)
        panel.view.viewport().installEventFilter(self)
        self._marks[key] = []
        return panel

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.MouseButtonPress and isinstance(event, QMouseEvent) and \
                event.button() == Qt.MouseButton.LeftButton:
            for panel in [self.photo, *self.maps.values(), self.mask_panel]:
                if panel.view.viewport() is watched:
                    point = panel.view.mapToScene(event.position().toPoint())
                    self._clicked(point)
        return super().eventFilter(watched, event)

    def clear(self) -> None:
        self._result, self._pending, self.clicked_pixel, self.cells = None, None, None, {}
        self.info.setText(CLICK_HINT)
        self._unmark()

    def set_frame(self, frame: TabFrame) -> None:
        """Shows the result now if the tab is visible, else when it is next shown."""
        self._pending = (frame.result, frame.palette)
        self._refresh()

    def set_colors(self, palette: Sequence[Color], opacity: float) -> None:
        """Redraws the maps and mask in ``palette`` (opaque: ``opacity`` is the Stages tab's), as :meth:`set_frame`."""
        result = self._pending[0] if self._pending is not None else self._result
        if result is not None:
            self._pending = (result, tuple(palette))
            self._refresh()

    def _redraw(self) -> None:
        if self._pending is None:  # cleared while hidden
            return
        (result, palette), self._pending = self._pending, None
        segmentation = result.segmentation
        assert segmentation is not None and result.meta is not None
        self._result = result
        outputs = segmentation.outputs
        self._geometry = map_geometry(result.meta.config, outputs)
        height, width = result.image.shape[:2]
        self.area.set_image_size((height, width))
        self.photo.set_title(f"photo · 3×{height}×{width}", "photo")
        self.photo.view.set_pixels(result.image, (height, width))
        for name, panel in self.maps.items():
            present = name in outputs.tensors
            panel.setVisible(present)
            if present:
                scores = outputs.tensors[name][0]
                geometry = self._geometry[name]
                shape = "×".join(str(n) for n in scores.shape)
                panel.set_title(f"{MAP_TITLES[name]} · stride {geometry.stride} · {shape}",
                                f"{MAP_TITLES[name]} · {shape}")
                panel.view.set_pixels(colorize(scores.argmax(0).numpy().astype("uint8"), palette), (height, width))
        logits = "×".join(str(n) for n in outputs.logits()[0].shape)
        self.mask_panel.set_title(f"FCN-{outputs.final_stage} mask · {logits}", f"mask · {logits}",
                                  "The argmax of the net's final logits, whose shape the title gives")
        self.mask_panel.view.set_pixels(colorize(segmentation.mask(), palette), (height, width))
        self.link.fit()
        self.photo_link.fit()
        if self.clicked_pixel is not None and self.clicked_pixel[0] < height and self.clicked_pixel[1] < width:
            self.click_pixel(*self.clicked_pixel)
        else:
            self.clicked_pixel = None
            self._unmark()
            self.info.setText(CLICK_HINT)

    def _clicked(self, point: QPointF) -> None:
        if self._result is not None:
            self.click_pixel(int(point.y()), int(point.x()))

    def click_pixel(self, row: int, column: int) -> None:
        """Marks what feeds final-logit pixel (``row``, ``column``), as a click there would."""
        result = self._result
        if result is None or result.segmentation is None:
            return
        height, width = result.image.shape[:2]
        if not (0 <= row < height and 0 <= column < width):
            return
        outputs = result.segmentation.outputs
        self.clicked_pixel = (row, column)
        self.cells = feeding_cells(outputs, row, column)
        self._unmark()
        marker = QPointF(column + 0.5, row + 0.5)
        for panel in [self.photo, *self.maps.values(), self.mask_panel]:
            panel.view.show_marker(marker)
        kernels = {LAYER_INPUTS[layer]: layer for layer, _ in fusion_path(outputs)}
        lines = [f"<b>output pixel (x {column}, y {row})</b> of the FCN-{outputs.final_stage} logits is fed by:"]
        for name in reversed(list(self.cells)):
            rows, columns = self.cells[name]
            self._mark_cells(name, rows, columns, outputs.tensors[name].shape[-2:], (height, width))
            geometry = self._geometry[name]
            nearest_row = min(rows, key=lambda r: abs(geometry.center(r) - row))
            nearest_column = min(columns, key=lambda c: abs(geometry.center(c) - column))
            self._mark_photo(name, geometry, rows, columns, nearest_row, nearest_column)
            color = MAP_COLORS[name].name()
            deconv = outputs.deconvolutions[kernels[name]]
            kernel = deconv.weight.shape[-1]
            lines.append(
                f"<span style='color:{color}'>■</span> <b>{MAP_TITLES[name]}</b> rows {_span(rows)} × cols "
                f"{_span(columns)} via {kernels[name]} ×{deconv.stride} ({kernel}×{kernel}) · footprint "
                f"{geometry.stride} px · receptive field {geometry.size} px ({MAP_TRUNK_LAYERS[name]}) · nearest "
                f"centre ({geometry.center(nearest_column):g}, {geometry.center(nearest_row):g})")
        self.info.setText("<br>".join(lines))
        self.header.setToolTip(self.info.text())

    def _mark_cells(self, name: str, rows: range, columns: range, shape: Sequence[int],
                    image_size: tuple[int, int]) -> None:
        """Outlines the feeding cells in the map's own panel (each cell stretched over the image as shown)."""
        panel = self.maps[name]
        scale_y, scale_x = image_size[0] / shape[0], image_size[1] / shape[1]
        pen = QPen(MAP_COLORS[name], 2.5)
        pen.setCosmetic(True)
        for r in rows:
            for c in columns:
                item = panel.view.scene().addRect(QRectF(c * scale_x, r * scale_y, scale_x, scale_y), pen)
                item.setZValue(2)
                self._marks[name].append(item)

    def _mark_photo(self, name: str, geometry: Geometry, rows: range, columns: range, nearest_row: int,
                    nearest_column: int) -> None:
        """On the photo: every feeding cell's stride footprint (solid) and the nearest one's receptive field (dashed)."""
        scene = self.photo.view.scene()
        color = MAP_COLORS[name]
        solid = QPen(color, 2.0)
        solid.setCosmetic(True)
        dashed = QPen(color, 2.5, Qt.PenStyle.DashLine)
        dashed.setCosmetic(True)
        items: list[QGraphicsItem] = []
        for r in rows:
            for c in columns:
                (left, right), (top, bottom) = geometry.footprint(c), geometry.footprint(r)
                items.append(scene.addRect(QRectF(left + 0.5, top + 0.5, right - left, bottom - top), solid))
        (left, right), (top, bottom) = geometry.field(nearest_column), geometry.field(nearest_row)
        field = scene.addRect(QRectF(left + 0.5, top + 0.5, right - left, bottom - top), dashed)
        items.append(field)
        text = QGraphicsSimpleTextItem(f"{MAP_TITLES[name]} · footprint {geometry.stride} px · "
                                       f"field {geometry.size} px")
        text.setBrush(QBrush(color))
        label = QGraphicsRectItem()  # a dark plate behind the text
        label.setBrush(QColor(0, 0, 0, 190))
        label.setPen(Qt.PenStyle.NoPen)
        text.setParentItem(label)
        label.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        label.setData(0, MAPS.index(name))
        scene.addItem(label)
        items.append(label)
        for item in items:
            item.setZValue(2)
        self._marks["photo"].extend(items)
        self._stack_labels()

    def photo_labels(self) -> list[QGraphicsRectItem]:
        """The photo's label plates (one per map, conv7 first)."""
        labels = [item for item in self._marks["photo"] if isinstance(item, QGraphicsRectItem) and
                  item.data(0) is not None]
        return sorted(labels, key=lambda item: item.data(0))

    def _stack_labels(self) -> None:
        """One line per map, the same size at every zoom, in a corner of the photo as shown: the top left, or the
        top right (then bottom left, bottom right) when the clicked pixel is under it; in the largest font whose
        lines fit the photo's width."""
        labels = self.photo_labels()
        if not labels:
            return
        view = self.photo.view
        shown = view.mapFromScene(view.sceneRect()).boundingRect().intersected(view.viewport().rect())
        for points in LABEL_POINTS:
            font = QFont()
            font.setPointSizeF(points)
            font.setBold(True)
            for label in labels:
                text = label.childItems()[0]
                assert isinstance(text, QGraphicsSimpleTextItem)
                text.setFont(font)
                label.setRect(text.boundingRect().adjusted(-4, -1, 4, 1))
            width = max(label.rect().width() for label in labels)
            if width + 2 * LABEL_INSET <= shown.width():
                break
        line = labels[0].rect().height() + 2
        block = QRectF(0, 0, width, line * len(labels) - 2)
        inset = LABEL_INSET
        corners = [
            QPointF(shown.left() + inset, shown.top() + inset),
            QPointF(shown.right() - inset - width, shown.top() + inset),
            QPointF(shown.left() + inset, shown.bottom() - inset - block.height()),
            QPointF(shown.right() - inset - width, shown.bottom() - inset - block.height()),
        ]
        corner = corners[0]
        if self.clicked_pixel is not None:
            click = view.mapFromScene(QPointF(self.clicked_pixel[1] + 0.5, self.clicked_pixel[0] + 0.5))
            for candidate in corners:
                if not block.translated(candidate).adjusted(-inset, -inset, inset, inset).contains(QPointF(click)):
                    corner = candidate
                    break
        for number, label in enumerate(labels):
            top_left = corner + QPointF(0, number * line) - label.rect().topLeft()
            label.setTransform(QTransform())
            label.setPos(view.mapToScene(top_left.toPoint()))

    def _unmark(self) -> None:
        for items in self._marks.values():
            for item in items:
                if item.scene() is not None:
                    item.scene().removeItem(item)
            items.clear()


def _span(values: range) -> str:
    return f"{values.start}" if len(values) == 1 else f"{values.start}–{values[-1]}"
