"""Saves what the viewer shows (masks, the overlay as drawn, the score maps, a titled figure of all panels)
with the core's writers; only the figure is painted here, as it lays the panels out as the window does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, QSizeF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter

from fcn_viewer.classes import Color
from fcn_viewer.gui.panels import grid_positions, qimage_from_rgb, rgb_from_qimage
from fcn_viewer.outputs import write_rgb, write_scores, write_stage_masks
from fcn_viewer.render import HEAT_LUT
from fcn_viewer.view.options import DisplayOptions
from fcn_viewer.view.panel_content import PANELS_BY_KEY, ViewResult, render_panel

FIGURE_MARGIN = 20
FIGURE_GAP = 14
TITLE_PX = 20
LABEL_PX = 14
LINE_HEIGHT = LABEL_PX + 10
HEADER_HEIGHT = TITLE_PX + LINE_HEIGHT + 14
LEGEND_ITEM_WIDTH = 190
LEFT = Qt.AlignmentFlag.AlignLeft
MIN_CELL_WIDTH, MAX_CELL_WIDTH = 360, 640


def export_masks(target: Path, result: ViewResult, palette: Sequence[Color]) -> list[Path]:
    """Every stage's argmax classes as an indexed-palette PNG (pixel value = class index)."""
    assert result.segmentation is not None
    return write_stage_masks(target, result.segmentation, palette)


def export_overlay(target: Path, result: ViewResult, options: DisplayOptions, palette: Sequence[Color]) -> Path:
    """The finest mask panel as displayed (opacity, hidden classes, outline, display mode) as an RGB PNG."""
    return write_rgb(target, render_panel(result, PANELS_BY_KEY[f"mask-{result.final_stage}"], options, palette))


def export_scores(target: Path, result: ViewResult) -> Path:
    """Every stage tensor as a .npz named exactly as `fcn-viewer segment --save-scores` writes it."""
    assert result.segmentation is not None and result.meta is not None
    return write_scores(target, result.segmentation, result.meta)


def export_figure(target: Path, result: ViewResult, options: DisplayOptions, palette: Sequence[Color]) -> Path:
    return write_rgb(target, rgb_from_qimage(render_figure(result, options, palette)))


def render_figure(result: ViewResult, options: DisplayOptions, palette: Sequence[Color]) -> QImage:
    """All panels in the window's layout, each titled, under a header and above the class legend, on white."""
    height, width = result.image_size
    cell = QSizeF(min(max(width, MIN_CELL_WIDTH), MAX_CELL_WIDTH), 0)
    cell.setHeight(round(height * cell.width() / width))
    keys = [panel.key for panel in result.panels()] + ["info"]
    columns = len(result.stages) + 1
    positions = grid_positions(keys, result.stages, columns)
    rows = max(row for row, _ in positions.values()) + 1
    grid_width = columns * cell.width() + (columns - 1) * FIGURE_GAP
    legend_columns = max(1, int(grid_width // LEGEND_ITEM_WIDTH))
    legend_rows = -(-len(result.class_names) // legend_columns) + (2 if options.mode != "classes" else 0)
    grid_top = FIGURE_MARGIN + HEADER_HEIGHT
    grid_height = rows * (LINE_HEIGHT + cell.height()) + (rows - 1) * FIGURE_GAP
    legend_top = grid_top + grid_height + FIGURE_GAP
    figure = QImage(
        round(grid_width + 2 * FIGURE_MARGIN),
        round(legend_top + legend_rows * LINE_HEIGHT + FIGURE_MARGIN),
        QImage.Format.Format_RGB888,
    )
    figure.fill(QColor(255, 255, 255))
    painter = QPainter(figure)
    painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)  # score-map cells stay sharp
    painter.setPen(QColor(20, 20, 20))
    _draw_header(painter, result, options, grid_width)
    for key, (row, column) in positions.items():
        origin = QPointF(
            FIGURE_MARGIN + column * (cell.width() + FIGURE_GAP),
            grid_top + row * (LINE_HEIGHT + cell.height() + FIGURE_GAP),
        )
        _draw_cell(painter, result, key, QRectF(origin, cell), options, palette)
    _draw_legend(painter, result, options, palette, QPointF(FIGURE_MARGIN, legend_top), legend_columns)
    painter.end()
    return figure


def _shown(result: ViewResult, options: DisplayOptions) -> str:
    names = result.class_names
    if options.mode == "class-probability":
        return f"probability of {names[options.chosen_class] if options.chosen_class < len(names) else '?'}"
    return "confidence (max softmax)" if options.mode == "confidence" else "argmax classes"


def _draw_header(painter: QPainter, result: ViewResult, options: DisplayOptions, width: float) -> None:
    height, image_width = result.image_size
    model = result.meta.title if result.meta else "no model"
    painter.setFont(_font(TITLE_PX, bold=True))
    painter.drawText(QRectF(FIGURE_MARGIN, FIGURE_MARGIN, width, TITLE_PX + 6), LEFT, f"{result.path.name} — {model}")
    subtitle = (
        f"{image_width}×{height} px · {result.device} · {result.elapsed_ms:.0f} ms · "
        f"showing {_shown(result, options)}, masks at {options.opacity:.0%} opacity"
    )
    painter.setFont(_font(LABEL_PX))
    painter.drawText(QRectF(FIGURE_MARGIN, FIGURE_MARGIN + TITLE_PX + 8, width, LINE_HEIGHT), LEFT, subtitle)


def _draw_cell(
    painter: QPainter, result: ViewResult, key: str, image: QRectF, options: DisplayOptions, palette: Sequence[Color]
) -> None:
    """A panel's title with its picture below it (``image`` is the cell without the title line)."""
    image.translate(0, LINE_HEIGHT)
    if key == "info":
        painter.setFont(_font(LABEL_PX - 1))
        text = "\n".join(result.summary_lines()[1:])
        painter.drawText(image.adjusted(4, 0, -4, 0), LEFT | Qt.AlignmentFlag.AlignTop, text)
        return
    panel = PANELS_BY_KEY[key]
    painter.setFont(_font(LABEL_PX, bold=True))
    title = painter.fontMetrics().elidedText(result.title(panel), Qt.TextElideMode.ElideRight, int(image.width()))
    painter.drawText(QRectF(image.left(), image.top() - LINE_HEIGHT, image.width(), LINE_HEIGHT), LEFT, title)
    painter.drawImage(image, qimage_from_rgb(render_panel(result, panel, options, palette)))


def _draw_legend(
    painter: QPainter,
    result: ViewResult,
    options: DisplayOptions,
    palette: Sequence[Color],
    origin: QPointF,
    columns: int,
) -> None:
    """The heat scale (in the heat modes), then every class colour and name, hidden ones marked."""
    painter.setFont(_font(LABEL_PX))
    top = origin.y()
    if options.mode != "classes":
        bar = QRectF(origin.x(), top, 400, LINE_HEIGHT - 8)
        painter.drawImage(bar, qimage_from_rgb(HEAT_LUT[None, :, :]))
        painter.drawText(QPointF(bar.right() + 10, bar.bottom()), f"{_shown(result, options)}: 0 … 1")
        top += 2 * LINE_HEIGHT
    for index, name in enumerate(result.class_names):
        row, column = divmod(index, columns)
        x, y = origin.x() + column * LEGEND_ITEM_WIDTH, top + row * LINE_HEIGHT
        swatch = QRectF(x, y + 3, LABEL_PX, LABEL_PX)
        painter.fillRect(swatch, QColor(*palette[index]))
        painter.drawRect(swatch)
        label = f"{name} (hidden)" if index in options.hidden else name
        painter.drawText(QRectF(x + LABEL_PX + 6, y, LEGEND_ITEM_WIDTH - LABEL_PX - 8, LINE_HEIGHT), LEFT, label)


def _font(pixels: int, bold: bool = False) -> QFont:
    font = QFont()
    font.setPixelSize(pixels)
    font.setBold(bold)
    return font
