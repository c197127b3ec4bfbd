"""The presenter's mode: the Step-Through's steps as full-screen slides in large type, for a projector.

It draws the slides of its Qt-free :class:`~fcn_viewer.view.presenter.PresenterModel` and forwards keys to it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import (
    QCloseEvent,
    QColor,
    QImage,
    QKeyEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QResizeEvent,
)
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from fcn_viewer.classes import Color
from fcn_viewer.gui.panels import pixmap_from_rgb, qimage_from_rgb
from fcn_viewer.model.outputs import Crop
from fcn_viewer.teaching.step_through import scale_bar
from fcn_viewer.view.presenter import KEYS_HELP, PresenterKey, PresenterModel
from fcn_viewer.view.step_deck import Slide

BACKGROUND = "#15151a"
CROP_PEN = QColor(255, 214, 0)
OUTSIDE_SHADE = QColor(0, 0, 0, 150)
# Type sizes in pixels on a 1080-pixel-high screen; smaller screens scale them down.
CHAPTER_PX, HEADING_PX, TITLE_PX, CAPTION_PX, KEYS_PX = 26, 44, 26, 30, 20
DESIGN_HEIGHT = 1080
KEYS: dict[Qt.Key, PresenterKey] = {
    Qt.Key.Key_Right: "next", Qt.Key.Key_Space: "next", Qt.Key.Key_PageDown: "next", Qt.Key.Key_Down: "class-down",
    Qt.Key.Key_Left: "back", Qt.Key.Key_Backspace: "back", Qt.Key.Key_PageUp: "back", Qt.Key.Key_Up: "class-up",
    Qt.Key.Key_Home: "first", Qt.Key.Key_End: "last", Qt.Key.Key_Escape: "leave", Qt.Key.Key_F5: "leave",
}


class Picture(QWidget):
    """One picture scaled to fit at the top, keeping its aspect (its height follows its width, so what comes below
    it sits right under it); a coarse map keeps its cells sharp; an optional crop window is outlined and the border it
    cuts off shaded."""

    def __init__(self, smooth: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.smooth = smooth
        self.image = QImage()
        self.crop: Crop | None = None
        self.setMinimumSize(120, 90)
        policy = QSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        if self.image.isNull():
            return round(width * 3 / 4)
        return round(width * self.image.height() / self.image.width())

    def set_picture(self, pixels: np.ndarray, crop: Crop | None = None) -> None:
        shape_changed = self.image.isNull() or self.image.size().toTuple() != (pixels.shape[1], pixels.shape[0])
        self.image, self.crop = qimage_from_rgb(pixels), crop
        if shape_changed:
            self.updateGeometry()
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        if self.image.isNull():
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.smooth)
        scale = min(self.width() / self.image.width(), self.height() / self.image.height())
        width, height = self.image.width() * scale, self.image.height() * scale
        target = QRectF((self.width() - width) / 2, 0, width, height)
        painter.drawImage(target, self.image)
        if self.crop is not None:
            top, left = target.top(), target.left()
            offset = self.crop.offset * scale
            kept = QRectF(left + offset, top + offset, self.crop.size[1] * scale, self.crop.size[0] * scale)
            shade = QPainterPath()
            shade.addRect(target)
            shade.addRect(kept)
            shade.setFillRule(Qt.FillRule.OddEvenFill)
            painter.fillPath(shade, OUTSIDE_SHADE)
            painter.setPen(QPen(CROP_PEN, 3))
            painter.drawRect(kept)
        painter.end()


class PresenterView(QWidget):
    """A full-screen window of slides: chapter and heading, the photo, the step's argmax classes and the chosen
    class's score with the colour bar of its held scale, the caption, and the keys. Esc (or F5) leaves."""

    left = Signal()  # the presenter left: the Step-Through shows the step it ended on

    def __init__(self, model: PresenterModel, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.model = model
        self.setObjectName("presenter")
        self.setWindowTitle("fcn-viewer — presenting")
        self.setStyleSheet(f"#presenter {{ background: {BACKGROUND}; }} QLabel {{ color: #f0f0f0; }}")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._palette: tuple[Color, ...] = ()
        self._opacity = 0.6

        self.chapter = self._label("presenterChapter")
        self.heading = self._label("presenterHeading")
        self.photo, self.classes, self.score = Picture(True), Picture(False), Picture(False)
        self.titles = [self._label(f"presenterTitle{n}") for n in range(3)]
        self.bar = QLabel()
        self.bar.setObjectName("presenterBar")
        self.bar.setScaledContents(True)
        self.bar_low, self.bar_high = self._label("presenterBarLow"), self._label("presenterBarHigh")
        self.caption = self._label("presenterCaption")
        self.caption.setWordWrap(True)
        self.keys = self._label("presenterKeys")
        self.keys.setText(KEYS_HELP)

        pictures = QHBoxLayout()
        pictures.setSpacing(24)
        for title, picture, extra in zip(self.titles, (self.photo, self.classes, self.score), (None, None, True),
                                         strict=True):
            column = QVBoxLayout()
            column.addWidget(title)
            column.addWidget(picture)
            if extra:
                bar_row = QHBoxLayout()
                bar_row.addWidget(self.bar_low)
                bar_row.addWidget(self.bar, 1)
                bar_row.addWidget(self.bar_high)
                column.addLayout(bar_row)
            column.addStretch(1)
            pictures.addLayout(column, 1)
        page = QVBoxLayout(self)
        page.setContentsMargins(40, 24, 40, 20)
        page.addWidget(self.chapter)
        page.addWidget(self.heading)
        page.addLayout(pictures, 1)
        page.addWidget(self.caption)
        page.addWidget(self.keys)
        self._set_bar()
        self._set_type_size()

    def _label(self, name: str) -> QLabel:
        label = QLabel()
        label.setObjectName(name)
        return label

    def _set_bar(self) -> None:
        self.bar.setPixmap(pixmap_from_rgb(np.repeat(scale_bar(256), 8, axis=0)))
        self.bar.setFixedHeight(28)

    def present(self, palette: Sequence[Color], opacity: float) -> str:
        """Enters full screen at the deck's step; "" when on, else why not (nothing is shown then)."""
        reason = self.model.enter()
        if reason:
            return reason
        self._palette, self._opacity = tuple(palette), opacity
        self.draw()
        self.showFullScreen()
        self.raise_()
        self.activateWindow()
        self.setFocus(Qt.FocusReason.OtherFocusReason)
        return ""

    def draw(self) -> None:
        """Draws the model's slide."""
        if not self.model.active:
            return
        self.draw_slide(self.model.slide(self._palette, self._opacity))

    def draw_slide(self, slide: Slide) -> None:
        step = slide.step
        self.chapter.setText(f"Chapter: {slide.chapter}")
        self.heading.setText(slide.heading)
        height, width = slide.classes.shape[:2]
        image = self.model.deck.result.image if self.model.deck.result is not None else None
        if image is not None:
            self.photo.set_picture(image)
            self.titles[0].setText(f"photo · 3×{image.shape[0]}×{image.shape[1]}")
        self.classes.set_picture(slide.classes, step.crop)
        self.score.set_picture(slide.score, step.crop)
        kind = "mask over the photo" if step.kind == "mask" else "argmax classes"
        self.titles[1].setText(f"{kind} · {height}×{width}")
        self.titles[2].setText(f"score of {slide.class_name} (↑ / ↓: another class)")
        self.bar_low.setText(f"{slide.scale.low:.1f}")
        self.bar_high.setText(f"{slide.scale.high:.1f}")
        self.bar.setToolTip(slide.scale_text)
        self.caption.setText(f"{step.caption}  Colour bar: {slide.scale_text}.")

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = KEYS.get(Qt.Key(event.key()))
        if key is None:
            super().keyPressEvent(event)
            return
        if self.model.press(key):
            if key == "leave":
                self.close()
            else:
                self.draw()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.model.leave()
        super().closeEvent(event)
        self.left.emit()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._set_type_size()

    def _set_type_size(self) -> None:
        """Large type, in proportion to the window's height (its sizes are for a 1080-pixel-high projector)."""
        ratio = max(self.height(), 400) / DESIGN_HEIGHT
        sizes = ((self.chapter, CHAPTER_PX, "color: #9ab;"), (self.heading, HEADING_PX, "font-weight: 700;"),
                 (self.caption, CAPTION_PX, ""), (self.keys, KEYS_PX, "color: #999;"),
                 (self.bar_low, TITLE_PX, ""), (self.bar_high, TITLE_PX, ""),
                 *((title, TITLE_PX, "") for title in self.titles))
        for label, px, extra in sizes:
            label.setStyleSheet(f"font-size: {round(px * ratio)}px; {extra}")
