"""Compare tab: the stages of one net or the separately trained nets, and where the finest mask changed."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from fcn_viewer.classes import Color
from fcn_viewer.gui.cells import TextCell
from fcn_viewer.gui.panels import Panel, PanelGrid
from fcn_viewer.gui.tab import TabFrame, TabPage, drops_line, status_line
from fcn_viewer.teaching.compare import DEFAULT_BOUNDARY_RADIUS, FAR_COLOR, NEAR_COLOR, CompareMode, ComparePictures
from fcn_viewer.teaching.image_analysis import ImageAnalysis

MODES: tuple[tuple[CompareMode, str, str], ...] = (
    ("stages", "Stages of one net", "The loaded net's own conv7, pool4-fused and pool3-fused predictions"),
    ("separate", "Separately trained nets", "FCN-32s, FCN-16s and FCN-8s, each its own trained net (paper, Table 2)"),
)
STAGES = ("32s", "16s", "8s")


class ModeToggle(QWidget):
    """'Stages of one net' or 'Separately trained nets'; several toggles show one shared choice."""

    modeChanged = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.group = QButtonGroup(self)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.buttons: dict[str, QRadioButton] = {}
        for number, (mode, label, tip) in enumerate(MODES):
            button = QRadioButton(label)
            button.setToolTip(tip)
            self.group.addButton(button, number)
            self.buttons[mode] = button
            layout.addWidget(button)
        self.buttons["stages"].setChecked(True)
        self.group.idClicked.connect(lambda number: self.modeChanged.emit(MODES[number][0]))

    @property
    def mode(self) -> CompareMode:
        return MODES[self.group.checkedId()][0]

    def set_mode(self, mode: CompareMode) -> None:
        """Shows ``mode`` as chosen (modeChanged fires only for the user's clicks)."""
        self.buttons[mode].setChecked(True)

    def set_separate_available(self, available: bool, why: str) -> None:
        self.buttons["separate"].setEnabled(available)
        self.buttons["separate"].setToolTip(MODES[1][2] if available else why)


def swatch_text(color: Color, text: str) -> str:
    return f"<span style='color: rgb{tuple(color)}; font-size: 18px'>■</span> {text}"


class CompareView(TabPage):
    """The masks coarse to fine, then where the finest differs from each coarser one, then the counts and the key;
    every picture at the image's aspect ratio, as large as the tab allows.

    It shows pictures made off the GUI thread (the classroom's analysis of the frame, :meth:`set_analysis`); a colour
    change re-blends the masks only while the tab is visible (else when it is next shown)."""

    title = "Compare"
    menu_title = "&Compare Stages and Nets"
    shortcut = "Ctrl+3"
    radiusChanged = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pictures: ComparePictures | None = None
        self._colors: tuple[tuple[Color, ...], float] = ((), 0.0)  # the palette and opacity to show
        self.toggle = ModeToggle()
        self.radius = QDoubleSpinBox()
        self.radius.setRange(0.0, 50.0)
        self.radius.setDecimals(1)
        self.radius.setSingleStep(1.0)
        self.radius.setValue(DEFAULT_BOUNDARY_RADIUS)
        self.radius.setSuffix(" px")
        self.radius.setToolTip("A changed pixel counts as 'near a boundary' within this distance of one")
        self.radius.valueChanged.connect(self.radiusChanged)
        self.status = status_line()
        self.drops = drops_line()  # with a label: where a finer mask scores lower than a coarser one
        self.masks: dict[str, Panel] = {}
        self.changes: dict[str, Panel] = {}
        self.change_stats: dict[str, QLabel] = {}
        self.grid = PanelGrid()
        for stage in STAGES:
            self.masks[stage] = self._panel(f"mask-{stage}")
        for stage in STAGES[:2]:
            self.changes[stage] = self._panel(f"change-{stage}")
        # The counts of each change map and the colour key share one text cell, after the pictures.
        self.key_cell = TextCell()
        cell = QVBoxLayout(self.key_cell)
        cell.setContentsMargins(4, 0, 0, 0)
        for stage in STAGES[:2]:
            stats = QLabel()
            stats.setWordWrap(True)
            self.change_stats[stage] = stats
            cell.addWidget(stats)
        self.key = QLabel()
        self.key.setWordWrap(True)
        self.key.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        cell.addWidget(self.key)
        cell.addStretch(1)
        for panel in [*self.masks.values(), *self.changes.values()]:
            self.grid.add(panel.key, panel)
        self.grid.add("key", self.key_cell)
        top = QHBoxLayout()
        top.addWidget(self.toggle)
        top.addSpacing(20)
        top.addWidget(QLabel("Boundary zone"))
        top.addWidget(self.radius)
        top.addStretch(1)
        self._arrange(top, self.status, self.drops, (self.grid, 1))
        self.clear("Open an image with a model loaded to compare its stages.")

    def set_frame(self, frame: TabFrame) -> None:
        """Nothing yet: the classroom's analysis of the frame fills this tab (:meth:`set_analysis`)."""

    def clear(self, message: str = "Load a model to compare its stages.") -> None:
        """No comparison to show (yet): every panel hidden, ``message`` in the status line."""
        self._pictures = None
        self.set_status(message)
        self.drops.hide()
        self.grid.show_panels([], (), (1, 1))

    def set_analysis(
        self, analysis: ImageAnalysis, pictures: ComparePictures, palette: Sequence[Color], opacity: float,
        classes: int | None = None,
    ) -> None:
        """Shows ``analysis`` by its ``pictures``, re-blended if they were made with another palette or opacity; each
        mask's title gives the shape of the logits it is the argmax of (``classes``×rows×columns, as on the Stages
        tab), each change map's its rows×columns."""
        self._pictures, self._colors = pictures, (tuple(palette), opacity)
        finest = analysis.finest if analysis.masks else ""
        keys = [f"mask-{stage}" for stage in STAGES if stage in analysis.masks]
        keys += [f"change-{stage}" for stage in STAGES[:2] if stage in analysis.changes]
        self.grid.show_panels(keys + (["key"] if analysis.changes else []), (), pictures.photo.shape[:2])
        height, width = pictures.photo.shape[:2]
        shape = f"{classes}×{height}×{width}" if classes is not None else f"{height}×{width}"
        for stage, panel in self.masks.items():
            if stage in analysis.masks:
                title = analysis.titles[stage]
                panel.set_title(f"{title} · {shape}", f"{stage} · {shape}", title)
        self._show_overlays()
        for stage, panel in self.changes.items():
            change = analysis.changes.get(stage)
            self.change_stats[stage].setVisible(change is not None)
            if change is not None:
                title = f"where {finest} differs from {stage} · {height}×{width}"
                panel.set_title(title, f"{finest} ≠ {stage} · {height}×{width}", "")
                panel.view.set_pixels(pictures.changes[stage], change.changed.shape)
                self.change_stats[stage].setText(f"<b>{finest} vs {stage}:</b> " + change.describe()
                                                 + f" of the {finest} mask.")
        near = f"changed, within {self.radius.value():g} px of a class boundary of the {finest} mask"
        self.key.setText(
            "<p>" + swatch_text(NEAR_COLOR, near) + "<br>"
            + swatch_text(FAR_COLOR, "changed, farther from any boundary") + "</p>"
            "<p>When most changed pixels sit next to a boundary, the finer skips mainly sharpened the edges.</p>"
        )
        notes = [f"Not installed: {', '.join(analysis.missing)}."] if analysis.missing else []
        if len(analysis.masks) == 1:
            notes.append("Only one mask: nothing to compare it with. Load an FCN-16s or FCN-8s, or a family.")
        self.set_status(" ".join(notes))
        drops = analysis.drops()
        self.drops.setText(" ".join(drops))
        self.drops.setVisible(bool(drops))
        self._refresh()
        self.link.fit()

    def set_colors(self, palette: Sequence[Color], opacity: float) -> None:
        """Shows the masks in ``palette`` at ``opacity``: now if the tab is visible, else when it is next shown."""
        self._colors = (tuple(palette), opacity)
        self._refresh()

    def _redraw(self) -> None:
        """Re-blends the masks if they are not in the chosen colours."""
        pictures = self._pictures
        if pictures is None or (pictures.palette, pictures.opacity) == self._colors:
            return
        self._pictures = pictures.recolored(*self._colors)
        self._show_overlays()

    def _show_overlays(self) -> None:
        assert self._pictures is not None
        for stage, overlay in self._pictures.overlays.items():
            if stage in self.masks:
                self.masks[stage].view.set_pixels(overlay, overlay.shape[:2])

    def set_status(self, text: str) -> None:
        self.status.setText(text)
        self.status.setVisible(bool(text))
