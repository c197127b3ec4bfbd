"""Contributions tab: each score map's exact additive share of the final logits, where each skip flipped the class,
and switches that drop a skip from the mask, with the changed pixels and (with a label) the scores of each setting."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, Qt, QTimer
from PySide6.QtGui import QColor, QKeySequence, QResizeEvent, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QGraphicsColorizeEffect,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from fcn_viewer.classes import Color
from fcn_viewer.gui.panels import Panel, PanelGrid, ViewLink, pixmap_from_rgb
from fcn_viewer.gui.tab import TabFrame, TabPage, drops_line, status_line
from fcn_viewer.render import colorize
from fcn_viewer.teaching.contributions import (
    FLIP_COLORS,
    SKIP_TITLES,
    TERM_TITLES,
    BilinearStage,
    ContributionAnalysis,
    SkipVariant,
    TermScale,
    describe_flip,
    diverging_bar,
)
from fcn_viewer.teaching.ground_truth import percent
from fcn_viewer.view.classroom_jobs import ContributionResult
from fcn_viewer.view.classroom_model import ContributionsModel

TERMS = ("score_fr", "score_pool4", "score_pool3")
PREDICTED = "predicted class at each pixel"
VARIANT_COLUMNS = ("changed px", "pixel acc", "mIoU", "BF")
OFF_GREY = QColor(150, 150, 150)  # a switched-off skip's term panel is drawn in shades of this grey
SCALE_KEY = "T"  # switches the term maps between one shared scale and a scale each
HOVER_HINT = "Hover over a panel to read the terms of one pixel."


def off_cover(panel: Panel) -> QLabel:
    """A dimming cover over a switched-off skip's term map, saying so: laid out in the same cell as the map's view
    (on top of it), so it always has the view's size."""
    cover = QLabel("OFF\nleft out of the mask")
    cover.setObjectName("skipOff")
    cover.setAlignment(Qt.AlignmentFlag.AlignCenter)
    cover.setStyleSheet("background: rgba(60, 60, 60, 150); color: white; font-size: 20px; font-weight: 600;")
    cover.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)  # hovering still reads the pixel
    cover.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
    cover.hide()
    column = panel.layout()
    assert isinstance(column, QVBoxLayout)
    index = column.indexOf(panel.view)
    column.removeWidget(panel.view)
    cell = QGridLayout()
    cell.setContentsMargins(0, 0, 0, 0)
    cell.addWidget(panel.view, 0, 0)
    cell.addWidget(cover, 0, 0)  # added last: drawn over the view
    column.insertLayout(index, cell, 1)
    return cover


def flip_key_text() -> str:
    """The skip-flips panel's key, in the colours :func:`~fcn_viewer.teaching.contributions.flip_picture` draws."""
    return "skip flips:  " + "   ".join(f"<span style='color: rgb{tuple(FLIP_COLORS[name])}; font-size: 16px'>■</span> "
                                         f"{SKIP_TITLES[name]}" for name in FLIP_COLORS)


class ContributionsView(TabPage):
    """Draws the split of the shown result, which its model (``lesson``) asks for only while the tab is visible (a
    hidden tab asks when next shown) and shows only for the newest request."""

    title = "Contributions"
    menu_title = "Skip &Contributions and Switches"
    shortcut = "Ctrl+5"

    def __init__(self, lesson: ContributionsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lesson = lesson
        lesson.listener = self

        def forget() -> None:  # deleted before the model, the view is told nothing more: no call to a dead widget
            if lesson.listener is self:
                lesson.listener = None

        self.destroyed.connect(forget)
        self._palette: tuple[Color, ...] = ()
        self._classes: tuple[str, ...] = ()

        self.classes = QComboBox()
        self.classes.setToolTip("Whose logit each term map shows: one class, or the class the net predicts per pixel")
        self.classes.currentIndexChanged.connect(lambda _: self._refresh())
        self.switches = {name: QCheckBox(f"use the {title}") for name, title in SKIP_TITLES.items()}
        for name, box in self.switches.items():
            box.setChecked(True)
            box.setToolTip(f"Switch the {SKIP_TITLES[name]} off: the mask becomes the argmax of the other terms "
                           "(no new forward pass)")
            box.toggled.connect(self._switched)
        self.own_scale = QCheckBox(f"own scales ({SCALE_KEY})")
        self.own_scale.setObjectName("ownScale")
        self.own_scale.setToolTip(f"Draw each term map on its own colour scale, so a small term (often pool3's) is "
                                  f"readable; off: one shared scale, so the terms compare. Key: {SCALE_KEY}")
        self.own_scale.toggled.connect(lambda _: self._refresh())
        toggle = QShortcut(QKeySequence(SCALE_KEY), self, context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        toggle.activated.connect(self.own_scale.toggle)
        self.bar = QLabel()
        self.bar.setToolTip("The diverging scale of the term maps: white is zero, red adds to the class, blue takes away")
        self.bar_text = QLabel()
        self.readout = QLabel(HOVER_HINT)
        self.readout.setStyleSheet("font-size: 15px;")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status = status_line(font_px=15)
        self.photo = self._panel("photo")
        self.terms = {name: self._panel(name) for name in TERMS}
        self.off_covers = {name: off_cover(self.terms[name]) for name in SKIP_TITLES}
        self.mask_panel = self._panel("mask")
        self.flips = self._panel("flips")
        self.flip_key = QLabel(flip_key_text())
        self.flip_key.setObjectName("flipKey")
        self.flip_key.setToolTip("Grey: the photo. Coloured: pixels whose class that skip changed (pool3 drawn on top)")
        self.table = QTableWidget(0, len(VARIANT_COLUMNS))
        self.table.setHorizontalHeaderLabels(list(VARIANT_COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setStyleSheet("font-size: 15px;")
        self.table.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.table.setToolTip("What each skip buys on this photo: every switch setting against all skips on")
        self.drops = drops_line()  # beside the table: where switching a skip on lowers one of its numbers
        self.conv7_note = QLabel()  # beside the table: why "conv7 only" is not the 32s stage
        self.conv7_note.setObjectName("conv7Note")
        self.conv7_note.setWordWrap(True)
        self.conv7_note.setStyleSheet("font-size: 14px;")
        self.conv7_note.hide()

        # The image panels in a grid of the image's aspect ratio; the table below it, as large as its text.
        self.grid = PanelGrid()
        for panel in self._image_panels():
            self.grid.add(panel.key, panel)
        below = QHBoxLayout()
        below.addWidget(self.table, 0, Qt.AlignmentFlag.AlignTop)
        below.addSpacing(16)
        notes = QVBoxLayout()
        notes.addWidget(self.flip_key)  # below the grid: the flips panel keeps its size
        notes.addWidget(self.conv7_note)
        notes.addWidget(self.drops)
        notes.addStretch(1)
        below.addLayout(notes, 1)
        top = QHBoxLayout()
        top.addWidget(QLabel("Class:"))
        top.addWidget(self.classes)
        top.addSpacing(16)
        for box in self.switches.values():
            top.addWidget(box)
        top.addSpacing(16)
        top.addWidget(self.own_scale)
        top.addWidget(self.bar)
        top.addWidget(self.bar_text)
        top.addStretch(1)
        # The grid only as tall as its panels (see _fit_grid): the table right under them, the room left over below.
        self.spare = QWidget()
        self.spare.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        self._arrange(top, self.readout, self.status, (self.grid, 1), below, self.spare)
        for watched in (self.grid, self.spare):
            watched.installEventFilter(self)
        self.clear("Open an image with a model loaded to split its logits into conv7, pool4 and pool3 terms.")

    def _image_panels(self) -> list[Panel]:
        return [self.photo, *self.terms.values(), self.mask_panel, self.flips]

    def _panel(self, key: str, link: ViewLink | None = None) -> Panel:
        panel = super()._panel(key, link)
        panel.view.hovered.connect(self._hover)
        panel.view.hoverLeft.connect(lambda: self._mark(None))
        return panel

    # ---- what to show ---------------------------------------------------------------------------

    @property
    def _shown(self) -> ContributionResult | None:
        return self.lesson.shown

    def clear(self, message: str = "Load a model to split its logits into conv7, pool4 and pool3 terms.") -> None:
        self.lesson.clear()
        self._show_empty(message)

    def _show_empty(self, message: str) -> None:
        self.status.setText(message)
        self._forget_pixel()
        self.grid.show_panels([], (), (1, 1))
        self.table.hide()
        self.flip_key.hide()
        self.conv7_note.hide()
        self.drops.hide()
        self._fit_grid()

    def _forget_pixel(self) -> None:
        """The readout back to its hint, the markers gone: the pixel read belonged to another image or model."""
        self.readout.setText(HOVER_HINT)
        self._mark(None)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize and watched in (self.grid, self.spare):
            QTimer.singleShot(0, self, self._fit_grid)  # after the layout is done
        return super().eventFilter(watched, event)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_grid()

    def _fit_grid(self) -> None:
        """Caps the grid at the height its panels take in the room it and the spare space below the table share."""
        room = self.grid.height() + self.spare.height()
        height = self.grid.used_height(self.grid.width(), room)
        if height != self.grid.maximumHeight():
            self.grid.setMaximumHeight(height)
            page = self.layout()
            if page is not None:
                page.activate()  # the grid and its panels take their new size now, before an image is fitted to them
            self.grid.settle()

    def set_frame(self, frame: TabFrame) -> None:
        """Splits the result's logits, scored against the frame's label (now if the tab is visible, else when it is
        next shown)."""
        result = frame.result
        assert result.meta is not None
        shown = self.lesson.result
        classes_changed = shown is None or shown.meta != result.meta
        if shown is not result:  # a new image or model: the terms read out were another result's
            self._forget_pixel()
        self.lesson.show(result, frame.ground_truth)
        self._palette = frame.palette
        self._classes = tuple(result.meta.classes)
        if classes_changed:
            self.classes.blockSignals(True)
            self.classes.clear()
            self.classes.addItem(PREDICTED)
            self.classes.addItems(list(result.meta.classes))
            self.classes.blockSignals(False)
        self._refresh()

    def set_colors(self, palette: Sequence[Color], opacity: float) -> None:
        """Redraws the mask in ``palette`` (opaque: ``opacity`` is the Stages tab's); the term maps have their own
        scale."""
        self._palette = tuple(palette)
        self._draw_mask()

    def class_index(self) -> int | None:
        index = self.classes.currentIndex()
        return None if index <= 0 else index - 1

    def term_scale(self) -> TermScale:
        return "own" if self.own_scale.isChecked() else "shared"

    def switched_off(self) -> tuple[str, ...]:
        return tuple(name for name, box in self.switches.items() if not box.isChecked())

    def _redraw(self) -> None:
        """Asks for the split of the shown result (the one already shown is reused when only the class changed)."""
        self.lesson.compute(self.class_index(), self.term_scale())

    # ---- drawing (ContributionsListener) ------------------------------------------------------

    def split_started(self) -> None:
        self.status.setText("Splitting the logits…")

    def split_failed(self, message: str) -> None:
        self._show_empty(f"Could not split the logits: {message}")

    def split_shown(self, done: ContributionResult) -> None:
        self._show(done)

    def _show(self, done: ContributionResult) -> None:
        result, analysis, pictures = done.request.result, done.analysis, done.pictures
        height, width = result.image.shape[:2]
        self.photo.set_title(f"photo · 3×{height}×{width}", "photo")
        self.photo.view.set_pixels(result.image, (height, width))
        for name, panel in self.terms.items():
            values = pictures.maps.get(name)
            if values is not None:
                panel.view.set_pixels(pictures.pictures[name], (height, width))
        bar = diverging_bar(pictures.limit, 160)
        self.bar.setPixmap(pixmap_from_rgb(np.repeat(bar, 14, axis=0)))
        if pictures.scale == "own":
            self.bar_text.setText("±each term's own limit (its title)")
        else:
            self.bar_text.setText(f"±{pictures.limit:.1f} logit, all terms")
        for name, box in self.switches.items():
            box.setEnabled(name in analysis.contributions.skips)
        keys = ["photo", *(name for name in TERMS if name in pictures.maps), "mask"]
        self.grid.show_panels(keys + (["flips"] if analysis.flips else []), (), (height, width))
        self.flip_key.setVisible(bool(analysis.flips))
        if analysis.flips:
            self.flips.set_title("where adding each skip flipped the class (pool4 orange, pool3 pink)",
                                 "skip flips", "\n".join(describe_flip(n, c) for n, c in analysis.flips.items()))
            self.flips.view.set_pixels(analysis.flip_picture, (height, width))
        lines = [describe_flip(name, change) for name, change in analysis.flips.items()]
        note = analysis.contributions.sum_note()
        if note is not None:
            lines.append(f"{note[0].upper()}{note[1:]}.")
        if done.truth_error is not None:
            lines.append(f"No scores: {done.truth_error}")
        if not analysis.flips:
            lines.append("FCN-32s fuses no skips: its logits are the conv7 term alone.")
        self.status.setText("  ·  ".join(lines))
        self._fill_table(analysis)
        self._draw_mask()
        self._title_terms()
        self._fit_grid()
        self.link.fit()

    def _title_terms(self) -> None:
        """The term panels' titles, and a switched-off skip's panel greyed and marked "OFF"."""
        shown = self._shown
        if shown is None:
            return
        pictures = shown.pictures
        which = "predicted class" if pictures.class_index is None else self._classes[pictures.class_index]
        off = self.switched_off()
        for name, panel in self.terms.items():
            values = pictures.maps.get(name)
            if values is None:
                continue
            title, tip = f"{TERM_TITLES[name]} · {which} · mean {values.mean():+.2f}", TERM_TITLES[name]
            if pictures.scale == "own":
                title += f" · own scale ±{pictures.limit_of(name):.2f}"
                tip += f" · ±{pictures.limit_of(name):.2f}"
            if name in off:
                panel.set_title(f"OFF · {title} · left out of the mask", f"OFF · {tip}",
                                "Switched off: the mask is the argmax of the other terms")
            else:
                panel.set_title(title, tip, "Exact additive share of the final logit: the terms sum to it")
            self._grey(panel, name in off)
            if name in self.off_covers:
                self.off_covers[name].setVisible(name in off)

    @staticmethod
    def _grey(panel: Panel, grey: bool) -> None:
        """The map in greys (it still reads on hover) and its title grey, or in colour again."""
        viewport = panel.view.viewport()  # the picture is drawn there, not on the scroll area
        if not grey:
            viewport.setGraphicsEffect(None)  # type: ignore[arg-type]
            panel.title.setStyleSheet("")
            return
        effect = QGraphicsColorizeEffect(viewport)
        effect.setColor(OFF_GREY)
        effect.setStrength(1.0)
        viewport.setGraphicsEffect(effect)
        panel.title.setStyleSheet("color: grey;")

    def _fill_table(self, analysis: ContributionAnalysis) -> None:
        """A row per switch setting, then (for a net with skips) its 32s stage, which "conv7 only" is not."""
        rows: list[SkipVariant | BilinearStage] = [*analysis.variants]
        bilinear = analysis.bilinear
        note = bilinear.note(analysis.variant(analysis.contributions.skips)) if bilinear is not None else ""
        if bilinear is not None:
            rows.append(bilinear)
        self.table.setRowCount(len(rows))
        for row, shown in enumerate(rows):
            header = QTableWidgetItem(shown.title)
            truth = shown.truth
            cells = [f"{shown.changed:,}"] + (
                [percent(truth.pixel_accuracy), percent(truth.mean_iou), percent(truth.boundary_f1)]
                if truth is not None else ["no label"] * 3)
            items = [header] + [QTableWidgetItem(text) for text in cells]
            for item in items[1:]:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if isinstance(shown, BilinearStage):  # not a switch setting: in italics, explained
                for item in items:
                    font = item.font()
                    font.setItalic(True)
                    item.setFont(font)
                    item.setToolTip(note)
            self.table.setVerticalHeaderItem(row, header)
            for column, item in enumerate(items[1:]):
                self.table.setItem(row, column, item)
        self.conv7_note.setText(note)
        self.conv7_note.setVisible(bool(note))
        self.table.show()
        self._fit_table()
        drops = analysis.drops()
        self.drops.setText(" ".join(drops))
        self.drops.setVisible(bool(drops))

    def _fit_table(self) -> None:
        """The table exactly as large as its text: every column header and row readable, no scrolling."""
        table = self.table
        table.resizeColumnsToContents()
        table.resizeRowsToContents()
        header, rows = table.horizontalHeader(), table.verticalHeader()
        width = max(rows.sizeHint().width(), rows.minimumWidth()) + header.length() + 2 * table.frameWidth()
        height = header.height() + rows.length() + 2 * table.frameWidth()
        table.setFixedSize(width, height)

    def _switched(self) -> None:
        self._draw_mask()
        self._title_terms()

    def _draw_mask(self) -> None:
        shown = self._shown
        if shown is None or not self._palette:
            return
        variant = shown.analysis.variant(self.switched_off())
        height, width = variant.mask.shape
        scores = ""
        if variant.truth is not None:
            scores = f" · mIoU {percent(variant.truth.mean_iou)} · BF {percent(variant.truth.boundary_f1)}"
        self.mask_panel.set_title(f"mask, {variant.title} · {variant.changed:,} px changed{scores}", variant.title)
        self.mask_panel.view.set_pixels(colorize(variant.mask, self._palette), (height, width))
        current = shown.analysis.variants.index(variant)
        for row in range(len(shown.analysis.variants)):  # the switch settings' rows (the 32s stage's is not one)
            header = self.table.verticalHeaderItem(row)
            if header is not None:
                font = header.font()
                font.setBold(row == current)
                header.setFont(font)
                header.setText(("▶ " if row == current else "") + shown.analysis.variants[row].title)
        titles = [v.title for v in shown.analysis.variants] + ([BilinearStage.title] if shown.analysis.bilinear else [])
        longest = max(self.table.fontMetrics().horizontalAdvance("▶ " + title) for title in titles)
        self.table.verticalHeader().setMinimumWidth(longest + 24)
        self._fit_table()

    def _hover(self, point: QPointF) -> None:
        shown = self._shown
        if shown is None:
            return
        self._mark(point)
        height, width = shown.analysis.contributions.logits.shape[-2:]
        row, column = math.floor(point.y()), math.floor(point.x())
        if not (0 <= row < height and 0 <= column < width):
            return
        values = shown.pictures.readout(row, column)
        index = shown.pictures.class_index
        if index is None:
            index = int(shown.analysis.variants[0].mask[row, column])  # all skips on: the net's own mask
        classes = self._classes
        terms = " + ".join(f"{TERM_TITLES[name].split(' (')[0]} {value:+.2f}" for name, value in values.items())
        kept = sum(value for name, value in values.items() if name not in self.switched_off())
        self.readout.setText(f"pixel ({column}, {row}) · {classes[index]}: {terms} = {sum(values.values()):+.2f}"
                             + (f"  (switched: {kept:+.2f})" if self.switched_off() else ""))

    def _mark(self, point: QPointF | None) -> None:
        for panel in self._image_panels():
            panel.view.show_marker(point)

