"""Lessons tab: the paper's three "why" lessons on the loaded net and the shown image — classifier → FCN (click a
conv7 cell), why scores are summed, learned vs bilinear upsampling (a switch between the masks) — each drawn from its
Qt-free model (``LessonsModel``), whose work runs on the classroom's job queue."""

from __future__ import annotations

import math
from collections.abc import Sequence

from PySide6.QtCore import QEvent, QObject, QRectF, Qt
from PySide6.QtGui import QColor, QKeySequence, QMouseEvent, QPen, QResizeEvent, QShortcut
from PySide6.QtWidgets import QButtonGroup, QCheckBox, QGraphicsRectItem, QHBoxLayout, QPushButton, QWidget

from fcn_viewer.classes import Color
from fcn_viewer.gui.fields_view import Rect
from fcn_viewer.gui.panels import SPACING, Panel, ViewLink
from fcn_viewer.gui.tab import TabFrame, TabPage, status_line
from fcn_viewer.options import LESSONS, Lesson
from fcn_viewer.render import colorize
from fcn_viewer.teaching.ground_truth import percent
from fcn_viewer.teaching.lessons.upsampling import KERNELS_SHOWN
from fcn_viewer.view.classroom_model import LessonsModel
from fcn_viewer.view.lesson_jobs import LESSON_TITLES, LessonResult

WINDOW_PEN = QColor(255, 214, 0)
SWITCH_KEY = "B"  # learned ↔ bilinear kernels in the upsampling lesson
HINTS: dict[Lesson, str] = {
    "classifier": "Click the photo: the conv7 cell whose classifier crop is centred there is compared with that crop "
                  "run alone.",
    "commute": "pool4's features concatenated with conv7's and classified by one 1×1 conv, against scoring each and "
               "summing.",
    "upsampling": f"The switch ({SWITCH_KEY}) shows the mask with every learned kernel replaced by bilinear, "
                  "recomputed from the stored score maps (no new forward pass).",
}


def row_layout(sizes: Sequence[tuple[int, int]], area: tuple[int, int], title: int, spacing: int) -> list[Rect]:
    """Where panels go side by side in an ``area`` (width, height): each picture (a panel less its ``title`` line) at
    the aspect ratio of its (height, width) in ``sizes``, all as tall as fits, the row centred across and at the
    top, so no panel shows an empty band."""
    aspects = [max(1, width) / max(1, height) for height, width in sizes]
    width, height = area
    room = width - spacing * (len(sizes) - 1)
    picture_height = max(1, math.floor(min(height - title, room / sum(aspects))))
    widths = [max(1, math.floor(picture_height * aspect)) for aspect in aspects]
    x = max(0, (width - sum(widths) - spacing * (len(sizes) - 1)) // 2)
    rects = []
    for panel_width in widths:
        rects.append((x, 0, panel_width, picture_height + title))
        x += panel_width + spacing
    return rects


class PicturesRow(QWidget):
    """Lays its panels out by :func:`row_layout` as the tab resizes or the pictures change."""

    def __init__(self, panels: Sequence[Panel], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.panels = tuple(panels)
        self.sizes = [(3, 4)] * len(self.panels)
        for panel in self.panels:
            panel.setParent(self)

    def set_sizes(self, sizes: Sequence[tuple[int, int]]) -> None:
        self.sizes = list(sizes)
        self._place()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._place()

    def _place(self) -> None:
        first = self.panels[0]
        title = first.title.sizeHint().height() + first.layout().spacing()  # type: ignore[union-attr]
        for panel, rect in zip(self.panels, row_layout(self.sizes, (self.width(), self.height()), title, SPACING),
                               strict=True):
            panel.setGeometry(*rect)


class LessonsView(TabPage):
    """Draws the lesson its model shows: the photo (the classifier crop outlined on it, or the upsampling mask
    learned or bilinear) beside the lesson's slide, with its numbers in one line."""

    title = "Lessons"
    menu_title = "Paper &Lessons (classifier → FCN, sums, upsampling)"
    shortcut = "Ctrl+8"

    def __init__(self, lesson: LessonsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lesson = lesson
        lesson.listener = self

        def forget() -> None:  # deleted before the model, the view is told nothing more: no call to a dead widget
            if lesson.listener is self:
                lesson.listener = None

        self.destroyed.connect(forget)
        self._palette: tuple[Color, ...] = ()
        self.buttons = QButtonGroup(self)
        self.buttons.setExclusive(True)
        top = QHBoxLayout()
        for number, name in enumerate(LESSONS):
            button = QPushButton(f"{number + 1}  {LESSON_TITLES[name]}")
            button.setCheckable(True)
            button.setChecked(name == lesson.lesson)
            self.buttons.addButton(button, number)
            top.addWidget(button)
        self.buttons.idClicked.connect(lambda number: self.lesson.choose(LESSONS[number]))
        self.bilinear = QCheckBox(f"bilinear kernels ({SWITCH_KEY})")
        self.bilinear.setObjectName("bilinearSwitch")
        self.bilinear.setToolTip("Show the mask with every learned deconvolution kernel replaced by the bilinear one")
        self.bilinear.toggled.connect(lambda _: self._draw_photo())
        switch = QShortcut(QKeySequence(SWITCH_KEY), self, context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        switch.activated.connect(self.bilinear.toggle)
        top.addSpacing(16)
        top.addWidget(self.bilinear)
        top.addStretch(1)
        self.status = status_line(font_px=15)
        self.photo = self._panel("photo")
        self.slide_link = ViewLink(self)  # the slide zooms on its own: it is far larger than the photo
        self.slide = self._panel("slide", self.slide_link)
        self.photo.view.viewport().installEventFilter(self)
        self.window_rect = QGraphicsRectItem()
        pen = QPen(WINDOW_PEN, 3)
        pen.setCosmetic(True)
        self.window_rect.setPen(pen)
        self.window_rect.setZValue(2)
        self.window_rect.hide()
        self.photo.view.scene().addItem(self.window_rect)
        self.pictures = PicturesRow((self.photo, self.slide))
        self._arrange(top, self.status, (self.pictures, 1))
        self.clear()

    # ---- what to show ---------------------------------------------------------------------------

    def set_frame(self, frame: TabFrame) -> None:
        """Uses the result (the chosen lesson now if the tab is visible, else when it is next shown)."""
        self.lesson.show(frame.result, frame.ground_truth)
        self._palette = frame.palette
        self._refresh()

    def clear(self) -> None:
        self.lesson.clear()
        self.status.setText("Open an image with a model loaded for the paper's lessons on it.")
        self.bilinear.setVisible(False)
        for panel in (self.photo, self.slide):
            panel.hide()

    def set_colors(self, palette: Sequence[Color], opacity: float) -> None:
        self._palette = tuple(palette)
        self._draw_photo()

    def _redraw(self) -> None:
        self.lesson.compute()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (event.type() == QEvent.Type.MouseButtonPress and isinstance(event, QMouseEvent)
                and event.button() == Qt.MouseButton.LeftButton and watched is self.photo.view.viewport()):
            point = self.photo.view.mapToScene(event.position().toPoint())
            self.lesson.click(int(point.y()), int(point.x()))
        return super().eventFilter(watched, event)

    # ---- drawing (LessonsListener) --------------------------------------------------------------

    def lesson_started(self, lesson: Lesson) -> None:
        self.buttons.button(LESSONS.index(lesson)).setChecked(True)
        self.status.setText(f"{LESSON_TITLES[lesson]}: computing on the loaded net… {HINTS[lesson]}")

    def lesson_failed(self, message: str) -> None:
        self.status.setText(message)

    def lesson_shown(self, done: LessonResult) -> None:
        lesson = done.request.lesson
        self.status.setText(f"{LESSON_TITLES[lesson]}: {done.summary.rstrip('.')}.  {HINTS[lesson]}")
        height, width = done.slide.shape[:2]
        self.slide.set_title(f"{LESSON_TITLES[lesson]} · the lesson's slide", LESSON_TITLES[lesson])
        self.slide.view.set_pixels(done.slide, (height, width))
        self.pictures.set_sizes((done.request.result.image_size, (height, width)))
        self.bilinear.setVisible(lesson == "upsampling")
        for panel in (self.photo, self.slide):
            panel.show()
        self._draw_photo()
        self.link.fit()
        self.slide_link.fit()

    def _draw_photo(self) -> None:
        """The photo with the classifier crop outlined, or the upsampling lesson's mask (learned or bilinear)."""
        done = self.lesson.shown
        if done is None:
            return
        result = done.request.result
        height, width = result.image_size
        window = done.window
        self.window_rect.setVisible(window is not None)
        upsampling = done.upsampling
        if upsampling is not None and self._palette:
            bilinear = self.bilinear.isChecked()
            mask = upsampling.bilinear_mask if bilinear else upsampling.learned_mask
            which = "bilinear" if bilinear else "learned"
            scores = ""
            if upsampling.truth is not None:
                truth = upsampling.truth[which]
                scores = (f" · acc {percent(truth.pixel_accuracy)} · mIoU {percent(truth.mean_iou)} · "
                          f"BF {percent(truth.boundary_f1)}")
            self.photo.set_title(f"mask, {KERNELS_SHOWN[which]} · {upsampling.changed_pixels:,} px differ{scores}",
                                 f"mask, {KERNELS_SHOWN[which]}")
            self.photo.view.set_pixels(colorize(mask, self._palette), (height, width))
            return
        self.photo.view.set_pixels(result.image, (height, width))
        if window is None:
            self.photo.set_title("photo", "photo")
            return
        self.window_rect.setRect(QRectF(window.left, window.top, window.size, window.size))
        self.photo.set_title(f"photo · classifier crop of conv7 cell {window.cell}: {window.size} px (click to move)",
                             f"crop of cell {window.cell}")

