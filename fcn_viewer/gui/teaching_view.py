"""The fusion step-through: one step of the FCN path at a time, its real tensor at its own resolution, Back/Next."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QKeySequence, QPainterPath, QPen, QResizeEvent, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QApplication,
    QBoxLayout,
    QButtonGroup,
    QComboBox,
    QGraphicsPathItem,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from fcn_viewer.classes import Color
from fcn_viewer.gui.panels import Panel, PanelView, ViewLink, pixmap_from_rgb
from fcn_viewer.gui.tab import TabFrame, TabPage
from fcn_viewer.teaching.step_through import FusionStep, StepDisplay, scale_bar
from fcn_viewer.view.step_deck import StepDeck

CROP_PEN = QColor(255, 214, 0)
OUTSIDE_SHADE = QColor(0, 0, 0, 150)
STACK_GAIN = 1.05  # the photo goes above the map when that shows the map at least this much larger
DISPLAYS: tuple[tuple[StepDisplay, str], ...] = (("classes", "Argmax classes"), ("class-score", "Score of class"))


def stacked_is_larger(area: tuple[int, int], image_size: tuple[int, int], share: float) -> bool:
    """Whether the map, taking ``share`` of the ``area`` (width, height) beside the photo, shows an image of
    ``image_size`` (height, width) markedly larger with the photo above it than beside it (a wide panorama)."""
    width, height = (max(1, n) for n in area)
    image_height, image_width = (max(1, n) for n in image_size)
    beside = min(share * width / image_width, height / image_height)
    stacked = min(width / image_width, share * height / image_height)
    return stacked >= STACK_GAIN * beside


class MapsArea(QWidget):
    """The photo and the step's map: side by side, or the photo above the map for an image much wider than the
    area; neither wider (taller) than the image's aspect ratio fills, the space left over is the tab's, not a dark
    band in a view."""

    MAP_SHARE = 0.75

    def __init__(self, photo: Panel, view: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image_size = (1, 1)
        self.photo, self.view = photo, view
        self.photo_cell = QWidget()  # the photo at its top: beside a map, a photo is shorter than the area
        cell = QVBoxLayout(self.photo_cell)
        cell.setContentsMargins(0, 0, 0, 0)
        cell.addWidget(photo, 1)
        cell.addStretch(0)
        self.box = QBoxLayout(QBoxLayout.Direction.LeftToRight, self)
        self.box.setContentsMargins(0, 0, 0, 0)
        self.box.addWidget(self.photo_cell, 1)
        self.box.addWidget(view, 3)
        self.box.addStretch(0)

    @property
    def stacked(self) -> bool:
        return self.box.direction() == QBoxLayout.Direction.TopToBottom

    def set_image_size(self, image_size: tuple[int, int]) -> None:
        self.image_size = image_size
        self._arrange()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._arrange()

    def _arrange(self) -> None:
        stacked = stacked_is_larger((self.width(), self.height()), self.image_size, self.MAP_SHARE)
        direction = QBoxLayout.Direction.TopToBottom if stacked else QBoxLayout.Direction.LeftToRight
        if self.box.direction() != direction:
            self.box.setDirection(direction)
        height, width = (max(1, n) for n in self.image_size)
        title = self.photo.title.sizeHint().height() + self.photo.layout().spacing()  # type: ignore[union-attr]
        frame = 2 * self.photo.view.frameWidth() + 2
        unlimited = 16_777_215  # QWIDGETSIZE_MAX
        if stacked:
            self.photo.setMaximumSize(unlimited, unlimited)
            for widget, extra in ((self.photo_cell, title), (self.view, 0)):
                widget.setMaximumSize(unlimited, math.ceil(self.width() * height / width) + extra + frame)
            return
        # Beside: the map no wider than the area's height fills; the photo (the rest, at the top) no wider than the
        # area's height fills and no taller than its width fills.
        view_width = min(math.ceil(self.height() * width / height) + frame, round(self.MAP_SHARE * self.width()))
        photo_width = max(1, self.width() - view_width - self.box.spacing())
        self.view.setMaximumSize(view_width, unlimited)
        photo_width = min(photo_width, math.ceil((self.height() - title) * width / height) + frame)
        self.photo.setMaximumSize(photo_width, math.ceil(photo_width * height / width) + title + frame)
        self.photo_cell.setMaximumSize(photo_width, unlimited)  # what is left over lies after the map


def score_bar(parent: QWidget | None = None) -> QLabel:
    """The class-score display's colour bar, darkest on the left; its ends are written beside it."""
    bar = QLabel(parent)
    bar.setObjectName("scoreBar")
    bar.setPixmap(pixmap_from_rgb(np.repeat(scale_bar(160), 14, axis=0)))
    bar.setToolTip("The chosen class's score: one scale for every step, so brighter is higher on every map")
    return bar


class Caption(QLabel):
    """A wrapped caption as tall as the tallest of the texts it may show (:meth:`reserve`) at its width, so the
    panels above it keep their place from one caption to the next."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self._reserved: list[str] = []

    def reserve(self, texts: Sequence[str]) -> None:
        self._reserved = list(texts)
        self._fit()

    def setText(self, text: str) -> None:
        super().setText(text)
        self._fit()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        self.ensurePolished()
        metrics = self.fontMetrics()
        width = max(self.contentsRect().width(), 1)
        flags = int(Qt.TextFlag.TextWordWrap | self.alignment())
        tallest = max([metrics.boundingRect(0, 0, width, 100_000, flags, text).height() for text in self._reserved]
                      + [self.heightForWidth(width), metrics.lineSpacing()])
        margins = self.contentsMargins()
        self.setFixedHeight(tallest + margins.top() + margins.bottom())


class StepThroughView(TabPage):
    """Draws the step list of :func:`fusion_steps` for the shown result from its :class:`StepDeck` (``deck``, which
    the presenter's slides share); it computes nothing about the net.

    The step is drawn while the view is visible, else when it is next shown; the deck keeps each map's argmax
    classes for the result, so a colour change only recolours and re-blends."""

    title = "Step-Through"
    menu_title = "Fusion &Step-Through"
    shortcut = "Ctrl+2"
    stepChanged = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.deck = StepDeck()
        self._palette: tuple[Color, ...] = ()
        self._opacity = 0.6
        self._refit = False  # the step needs fitting to the view, as it is another step

        self.heading = QLabel()
        self.heading.setObjectName("stepHeading")
        self.heading.setStyleSheet("font-size: 17px; font-weight: 600;")
        self.strip = QHBoxLayout()
        self.strip.setSpacing(2)
        self.strip_buttons = QButtonGroup(self)
        self.strip_buttons.setExclusive(True)
        self.strip_buttons.idClicked.connect(self.set_step)
        self.view = PanelView()
        self.link.add(self.view)
        self.photo_link = ViewLink(self)
        self.photo = self._panel("photo", self.photo_link)
        self.photo.setToolTip("The photo, for reference: every map above covers it")
        self.crop_rect = QGraphicsRectItem()
        pen = QPen(CROP_PEN, 3)
        pen.setCosmetic(True)
        self.crop_rect.setPen(pen)
        self.crop_rect.setZValue(2)
        self.outside = QGraphicsPathItem()
        self.outside.setBrush(OUTSIDE_SHADE)
        self.outside.setPen(QPen(Qt.PenStyle.NoPen))
        self.outside.setZValue(1)
        for item in (self.outside, self.crop_rect):
            item.hide()
            self.view.scene().addItem(item)
        self.caption = Caption()
        self.caption.setStyleSheet("font-size: 16px;")
        self.back = QPushButton("◀  Back")
        self.next = QPushButton("Next  ▶")
        self.back.clicked.connect(lambda: self.set_step(self.index - 1))
        self.next.clicked.connect(lambda: self.set_step(self.index + 1))
        self.display = QComboBox()
        for key, label in DISPLAYS:
            self.display.addItem(label, key)
        self.display.setToolTip("Draw each tensor as its argmax class colours, or one class's raw score")
        self.chosen_class = QComboBox()
        self.chosen_class.setMinimumContentsLength(10)
        self.display.currentIndexChanged.connect(self._display_chosen)
        self.chosen_class.currentIndexChanged.connect(self._class_chosen)
        self.bar = score_bar()
        self.bar_text = QLabel()
        self.bar_text.setObjectName("scoreBarText")
        for arrow, delta in ((Qt.Key.Key_Right, 1), (Qt.Key.Key_Left, -1)):
            shortcut = QShortcut(QKeySequence(arrow), self, context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(lambda d=delta: self.set_step(self.index + d))
        self.empty = QLabel("Open an image with a model loaded to walk through its fusion path.")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)

        controls = QHBoxLayout()
        controls.addWidget(self.back)
        controls.addWidget(self.next)
        controls.addStretch(1)
        controls.addWidget(QLabel("Draw tensors as"))
        controls.addWidget(self.display)
        controls.addWidget(self.chosen_class)
        controls.addWidget(self.bar)
        controls.addWidget(self.bar_text)
        self.maps = MapsArea(self.photo, self.view)
        self._arrange(self.strip, self.heading, (self.maps, 1), (self.empty, 1), self.caption, controls)
        self._show_empty(True)

    @property
    def steps(self) -> list[FusionStep]:
        return self.deck.steps

    @property
    def index(self) -> int:
        return self.deck.index

    @property
    def step(self) -> FusionStep | None:
        return self.deck.step

    def set_frame(self, frame: TabFrame) -> None:
        """Shows the result's path; stays at the same step when the new path has the same steps."""
        result = frame.result
        assert result.meta is not None
        self.deck.load(result)
        self._palette, self._opacity = frame.palette, frame.opacity
        height, width = result.image_size
        self.photo.set_title(f"photo · 3×{height}×{width}", "photo")
        self.maps.set_image_size((height, width))
        self.photo.view.set_pixels(result.image, result.image_size)
        self._sync_controls()
        self._build_strip()
        self._show_empty(False)
        self.set_step(self.deck.index)
        self.photo_link.fit()

    def clear(self) -> None:
        self.deck.clear()
        self._build_strip()
        self._show_empty(True)

    def deck_changed(self) -> None:
        """Another view of the deck (the presenter) moved it: the controls and the step follow."""
        if self.deck.result is None:
            return
        self._sync_controls()
        self.set_step(self.deck.index)

    def _sync_controls(self) -> None:
        """The display and class boxes as the deck has them (without asking the deck to change)."""
        names = self.deck.class_names
        for box in (self.chosen_class, self.display):
            box.blockSignals(True)
        if [self.chosen_class.itemText(i) for i in range(self.chosen_class.count())] != list(names):
            self.chosen_class.clear()
            self.chosen_class.addItems(list(names))
        self.chosen_class.setCurrentIndex(self.deck.chosen_class)
        self.display.setCurrentIndex(self.display.findData(self.deck.display))
        for box in (self.chosen_class, self.display):
            box.blockSignals(False)

    def _display_chosen(self) -> None:
        self.deck.set_display(self.display.currentData())
        self._refresh()

    def _class_chosen(self) -> None:
        self.deck.choose_class(self.chosen_class.currentIndex())
        self._refresh()

    def set_colors(self, palette: Sequence[Color], opacity: float) -> None:
        """Redraws with the viewer's palette and mask opacity."""
        self._palette, self._opacity = tuple(palette), opacity
        self._refresh()

    def set_step(self, index: int) -> None:
        if not self.steps:
            return
        self.deck.go(index)
        self._refit = True
        self._refresh()
        self.stepChanged.emit(self.index)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)  # draws a step that waited
        # After the tab switch settles, so ← / → step at once; with the view as context, a view deleted before
        # then is never called.
        QTimer.singleShot(0, self, self._take_focus)

    def _take_focus(self) -> None:
        """Gives the keyboard focus to the map (taking it from the tab bar, which would switch tabs on ← / →),
        unless a control of this view already has it."""
        focused = QApplication.focusWidget()
        if self.isVisible() and (focused is None or not self.isAncestorOf(focused)):
            self.view.setFocus(Qt.FocusReason.OtherFocusReason)

    def _show_empty(self, empty: bool) -> None:
        self.empty.setVisible(empty)
        widgets = (self.maps, self.view, self.photo, self.heading, self.caption, self.back, self.next, self.display,
                   self.chosen_class, self.bar, self.bar_text)
        for widget in widgets:
            widget.setVisible(not empty)

    def _build_strip(self) -> None:
        """One button per step; the buttons stay (relabelled) while the number of steps does."""
        if len(self.strip_buttons.buttons()) != len(self.steps):
            for button in self.strip_buttons.buttons():
                self.strip_buttons.removeButton(button)
                self.strip.removeWidget(button)
                button.deleteLater()
            for number in range(len(self.steps)):
                button = QToolButton()
                button.setCheckable(True)
                button.setAutoRaise(True)
                self.strip_buttons.addButton(button, number)
                self.strip.addWidget(button)
        for number, step in enumerate(self.steps):
            button = self.strip_buttons.button(number)
            button.setText(f"{number + 1} {step.short}")
            button.setToolTip(step.heading)

    def _redraw(self) -> None:
        deck, step = self.deck, self.step
        if step is None or deck.result is None:
            return
        display: StepDisplay = deck.display
        self.view.set_pixels(deck.pixels(self._palette, self._opacity), step.shape[1:])
        self._show_crop(step)
        scored = display == "class-score"
        self.chosen_class.setEnabled(scored)
        self.bar.setVisible(scored)
        self.bar_text.setVisible(scored)
        if scored:
            scale = deck.scale()
            self.bar_text.setText(f"{scale.low:.2f} … {scale.high:.2f}, every step")
        self.heading.setText(f"Step {self.index + 1} of {len(self.steps)}:  {step.heading}")
        caption = deck.caption()
        display_words = caption[len(step.caption):] if caption.startswith(step.caption) else ""  # alike at each step
        self.caption.reserve([other.caption + display_words for other in self.steps])
        self.caption.setText(caption)
        self.back.setEnabled(self.index > 0)
        self.next.setEnabled(self.index < len(self.steps) - 1)
        button = self.strip_buttons.button(self.index)
        if button is not None:
            button.setChecked(True)
        if self._refit:
            self._refit = False
            self.link.fit()

    def _show_crop(self, step: FusionStep) -> None:
        """The kept window as a rectangle on the larger map, the cut-off border shaded."""
        crop = step.crop
        self.crop_rect.setVisible(crop is not None)
        self.outside.setVisible(crop is not None)
        if crop is None:
            return
        kept = QRectF(crop.offset, crop.offset, crop.size[1], crop.size[0])
        self.crop_rect.setRect(kept)
        shade = QPainterPath()
        shade.addRect(QRectF(0, 0, crop.source_size[1], crop.source_size[0]))
        shade.addRect(kept)
        shade.setFillRule(Qt.FillRule.OddEvenFill)
        self.outside.setPath(shade)
