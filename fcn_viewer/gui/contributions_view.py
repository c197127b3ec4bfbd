"""Contributions tab: each score map's exact additive share of the final logits, where each skip flipped the class,
and switches that drop a skip from the mask, with the changed pixels and (with a label) the scores of each setting."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor
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
from fcn_viewer.errors import FCNViewerError
from fcn_viewer.gui.jobs import JobQueue
from fcn_viewer.gui.panels import Panel, PanelGrid, ViewLink, pixmap_from_rgb
from fcn_viewer.gui.tab import TabFrame, TabPage, drops_line, status_line
from fcn_viewer.inference import release_device_memory
from fcn_viewer.render import colorize
from fcn_viewer.teaching.contributions import (
    FLIP_COLORS,
    SKIP_TITLES,
    TERM_TITLES,
    ContributionAnalysis,
    TermPictures,
    analyse_contributions,
    describe_flip,
    diverging_bar,
    split_logits,
    term_pictures,
)
from fcn_viewer.teaching.ground_truth import load_truth, percent
from fcn_viewer.teaching.image_analysis import GroundTruth
from fcn_viewer.view.outcome import JobFailed
from fcn_viewer.view.panel_content import ViewResult

TERMS = ("score_fr", "score_pool4", "score_pool3")
PREDICTED = "predicted class at each pixel"
VARIANT_COLUMNS = ("changed px", "pixel acc", "mIoU", "BF")
OFF_GREY = QColor(150, 150, 150)  # a switched-off skip's term panel is drawn in shades of this grey


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


@dataclass(frozen=True)
class ContributionRequest:
    """One image's split to compute (``base`` when only the class changed) and the class to draw."""

    result: ViewResult
    ground_truth: GroundTruth | None
    class_index: int | None
    base: ContributionAnalysis | None


@dataclass(frozen=True)
class ContributionResult:
    request: ContributionRequest
    analysis: ContributionAnalysis
    pictures: TermPictures
    truth_error: str | None = None


def compute(request: ContributionRequest) -> ContributionResult:
    """Off the GUI thread: the split (no forward pass), flips and switch variants, and the class's term pictures."""
    analysis = request.base
    truth_error = None
    if analysis is None:
        segmentation = request.result.segmentation
        assert segmentation is not None
        contributions = split_logits(segmentation.outputs)
        gt = request.ground_truth
        try:
            label = load_truth(gt.path, segmentation.image_size) if gt is not None else None
        except FCNViewerError as error:  # the split is still worth showing; the table says why it has no scores
            label, gt = None, None
            truth_error = str(error)
        analysis = analyse_contributions(contributions, segmentation.image, label, gt.num_classes if gt else 0,
                                         gt.ignore_index if gt else 255, gt.tolerance if gt else 2.0)
    return ContributionResult(request, analysis, term_pictures(analysis.contributions, request.class_index),
                              truth_error)


class ContributionsView(TabPage):
    """Draws the split of the shown result; computes it on its job queue, only the newest request (an older one
    still waiting is cancelled, one finishing late is not drawn), and only while the tab is visible (a hidden tab
    computes when next shown)."""

    title = "Contributions"
    menu_title = "Skip &Contributions and Switches"
    shortcut = "Ctrl+4"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._result: ViewResult | None = None
        self._ground_truth: GroundTruth | None = None
        self._palette: tuple[Color, ...] = ()
        self._classes: tuple[str, ...] = ()
        self._shown: ContributionResult | None = None
        self._keep_base = False  # the next split may reuse the shown one (only the class changed)
        self._job = 0  # the newest request's job: only its answer is drawn
        # wake_later: a request made while the window handles a result does not lengthen that event
        self.jobs = JobQueue("fcn-viewer contributions", self, on_error=release_device_memory, wake_later=True)
        self.jobs.finished.connect(self._answered)

        self.classes = QComboBox()
        self.classes.setToolTip("Whose logit each term map shows: one class, or the class the net predicts per pixel")
        self.classes.currentIndexChanged.connect(lambda _: self._refresh())
        self.switches = {name: QCheckBox(f"use the {title}") for name, title in SKIP_TITLES.items()}
        for name, box in self.switches.items():
            box.setChecked(True)
            box.setToolTip(f"Switch the {SKIP_TITLES[name]} off: the mask becomes the argmax of the other terms "
                           "(no new forward pass)")
            box.toggled.connect(self._switched)
        self.bar = QLabel()
        self.bar.setToolTip("One diverging scale for all term maps: white is zero, red adds to the class, blue takes away")
        self.bar_text = QLabel()
        self.readout = QLabel("Hover over a panel to read the terms of one pixel.")
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

        # The image panels in a grid of the image's aspect ratio; the table below it, as large as its text.
        self.grid = PanelGrid()
        for panel in self._image_panels():
            self.grid.add(panel.key, panel)
        below = QHBoxLayout()
        below.addWidget(self.table, 0, Qt.AlignmentFlag.AlignTop)
        below.addSpacing(16)
        notes = QVBoxLayout()
        notes.addWidget(self.flip_key)  # below the grid: the flips panel keeps its size
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
        top.addWidget(self.bar)
        top.addWidget(self.bar_text)
        top.addStretch(1)
        self._arrange(top, self.readout, self.status, (self.grid, 1), below)
        self.clear("Open an image with a model loaded to split its logits into conv7, pool4 and pool3 terms.")

    def _image_panels(self) -> list[Panel]:
        return [self.photo, *self.terms.values(), self.mask_panel, self.flips]

    def _panel(self, key: str, link: ViewLink | None = None) -> Panel:
        panel = super()._panel(key, link)
        panel.view.hovered.connect(self._hover)
        panel.view.hoverLeft.connect(lambda: self._mark(None))
        return panel

    # ---- what to show ---------------------------------------------------------------------------

    def clear(self, message: str = "Load a model to split its logits into conv7, pool4 and pool3 terms.") -> None:
        self._result, self._shown = None, None
        self.status.setText(message)
        self.grid.show_panels([], (), (1, 1))
        self.table.hide()
        self.flip_key.hide()
        self.drops.hide()

    def set_frame(self, frame: TabFrame) -> None:
        """Splits the result's logits, scored against the frame's label (now if the tab is visible, else when it is
        next shown)."""
        result = frame.result
        assert result.meta is not None
        classes_changed = self._result is None or self._result.meta != result.meta
        self._result, self._ground_truth, self._palette = result, frame.ground_truth, frame.palette
        self._classes = tuple(result.meta.classes)
        if classes_changed:
            self.classes.blockSignals(True)
            self.classes.clear()
            self.classes.addItem(PREDICTED)
            self.classes.addItems(list(result.meta.classes))
            self.classes.blockSignals(False)
        self._keep_base = False
        self._refresh()

    def set_colors(self, palette: Sequence[Color], opacity: float) -> None:
        """Redraws the mask in ``palette`` (opaque: ``opacity`` is the Stages tab's); the term maps have their own
        scale."""
        self._palette = tuple(palette)
        self._draw_mask()

    def class_index(self) -> int | None:
        index = self.classes.currentIndex()
        return None if index <= 0 else index - 1

    def switched_off(self) -> tuple[str, ...]:
        return tuple(name for name, box in self.switches.items() if not box.isChecked())

    def _redraw(self) -> None:
        """Asks for the split of the shown result; the one already shown is reused when only the class changed."""
        if self._result is None:
            return
        shown, keep_base, self._keep_base = self._shown, self._keep_base, True
        base = shown.analysis if keep_base and shown is not None and shown.request.result is self._result else None
        if shown is None or shown.request.result is not self._result:
            self.status.setText("Splitting the logits…")
        request = ContributionRequest(self._result, self._ground_truth, self.class_index(), base)
        self._job = self.jobs.submit(lambda _: compute(request), key="split")

    def shutdown(self) -> None:
        """Stops the queue's thread after the split in hand; a waiting request is dropped."""
        self.jobs.shutdown()

    # ---- drawing -------------------------------------------------------------------------------

    def _answered(self, job: int, answer: object) -> None:
        """Every request's answer on the GUI thread; only the newest request's is drawn (older ones were cancelled
        before they started, or finished after a newer request was made)."""
        if job != self._job:
            return
        if isinstance(answer, JobFailed):
            self.clear(f"Could not split the logits: {answer.message}")
        elif isinstance(answer, ContributionResult):
            self._show(answer)

    def _show(self, done: ContributionResult) -> None:
        if done.request.result is not self._result:
            return
        if done.request.base is not None and self._shown is not None and done.truth_error is None:
            done = ContributionResult(done.request, done.analysis, done.pictures, self._shown.truth_error)
        self._shown = done
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
        self.bar_text.setText(f"−{pictures.limit:.1f} … 0 … +{pictures.limit:.1f} (logit)")
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
        error = analysis.contributions.max_error()
        lines.append(f"The terms sum to the net's logits within {error:.1e}.")
        if done.truth_error is not None:
            lines.append(f"No scores: {done.truth_error}")
        if not analysis.flips:
            lines.append("FCN-32s fuses no skips: its logits are the conv7 term alone.")
        self.status.setText("  ·  ".join(lines))
        self._fill_table(analysis)
        self._draw_mask()
        self._title_terms()
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
        self.table.setRowCount(len(analysis.variants))
        for row, variant in enumerate(analysis.variants):
            self.table.setVerticalHeaderItem(row, QTableWidgetItem(variant.title))
            truth = variant.truth
            cells = [f"{variant.changed:,}"] + (
                [percent(truth.pixel_accuracy), percent(truth.mean_iou), percent(truth.boundary_f1)]
                if truth is not None else ["no label"] * 3)
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, item)
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
        width = rows.width() + header.length() + 2 * table.frameWidth()
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
        for row in range(self.table.rowCount()):
            header = self.table.verticalHeaderItem(row)
            if header is not None:
                font = header.font()
                font.setBold(row == current)
                header.setFont(font)
                header.setText(("▶ " if row == current else "") + shown.analysis.variants[row].title)
        longest = max(self.table.fontMetrics().horizontalAdvance("▶ " + v.title) for v in shown.analysis.variants)
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

