"""The display toolbar: what the panels show, overlay opacity, outlines and palette, bound to the ViewState; and the
menu entries with keys for outlines, palette and opacity (the View menu shows them, so F1 lists them)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QCheckBox, QComboBox, QLabel, QSlider, QToolBar, QWidget

from fcn_viewer.gui.state import ViewState
from fcn_viewer.view.options import DISPLAY_MODES, PALETTES, DisplayOptions

MODE_LABELS = {
    "classes": "Classes (argmax)",
    "confidence": "Confidence (max softmax)",
    "class-probability": "Probability of class",
}
PALETTE_LABELS = {"model": "Model palette", "colorblind": "Colour-blind safe"}
OPACITY_STEP = 0.1


class DisplayToolbar(QToolBar):
    """Widgets that write user choices to the state and follow the state when it changes elsewhere."""

    def __init__(self, state: ViewState, parent: QWidget | None = None) -> None:
        super().__init__("Display", parent)
        self.setObjectName("displayToolbar")
        self._state = state
        self.mode = QComboBox()
        for mode in DISPLAY_MODES:
            self.mode.addItem(MODE_LABELS[mode], mode)
        self.mode.setToolTip("What every panel shows: argmax class colours, confidence, or one class's probability")
        self.chosen_class = QComboBox()
        self.chosen_class.setToolTip("The class whose probability is shown")
        self.chosen_class.setMinimumContentsLength(10)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setFixedWidth(140)
        self.opacity.setToolTip("Opacity of the masks over the photo ([ and ] step it by 10 %)")
        self.opacity_label = QLabel()
        self.opacity_label.setMinimumWidth(44)
        self.outline = QCheckBox("Outline")
        self.outline.setToolTip("Draw class boundaries on the masks (opacity 0 % leaves only the outlines); key O")
        self.palette_choice = QComboBox()
        for name in PALETTES:
            self.palette_choice.addItem(PALETTE_LABELS[name], name)
        self.palette_choice.setToolTip("The class colours: the model's own, or colour-blind safe ones; key P")

        self.addWidget(QLabel(" Show "))
        self.addWidget(self.mode)
        self.addWidget(self.chosen_class)
        self.addSeparator()
        self.addWidget(QLabel(" Opacity "))
        self.addWidget(self.opacity)
        self.addWidget(self.opacity_label)
        self.addSeparator()
        self.addWidget(self.outline)
        self.addSeparator()
        self.addWidget(QLabel(" Palette "))
        self.addWidget(self.palette_choice)

        self.mode.currentIndexChanged.connect(lambda: state.set_mode(self.mode.currentData()))
        self.chosen_class.currentIndexChanged.connect(self._choose_class)
        self.opacity.valueChanged.connect(lambda value: state.set_opacity(value / 100))
        self.outline.toggled.connect(state.set_outline)
        self.palette_choice.currentIndexChanged.connect(lambda: state.set_palette(self.palette_choice.currentData()))
        self.outline_action = self._key_action("&Outline Class Boundaries", "O", state.set_outline, checkable=True)
        self.palette_action = self._key_action(
            "&Colour-Blind Safe Palette", "P",
            lambda chosen: state.set_palette("colorblind" if chosen else "model"), checkable=True)
        self.opacity_up = self._key_action("Mask Opacity &+10 %", "]", lambda _: self._step_opacity(OPACITY_STEP))
        self.opacity_down = self._key_action("Mask Opacity &−10 %", "[", lambda _: self._step_opacity(-OPACITY_STEP))
        self.toggleViewAction().setText("Display &Toolbar")
        self.toggleViewAction().setToolTip("Show or hide the toolbar of display choices: what the panels show, mask "
                                           "opacity, outlines, palette")
        state.optionsChanged.connect(self._follow)
        self._follow(state.options, None)

    def _key_action(self, text: str, key: str, slot: Callable[[bool], object], checkable: bool = False) -> QAction:
        action = QAction(text, self)
        action.setShortcut(QKeySequence(key))
        action.setCheckable(checkable)
        action.triggered.connect(slot)
        return action

    def menu_actions(self) -> list[QAction]:
        """The View menu's display entries, with their keys."""
        return [self.outline_action, self.palette_action, self.opacity_up, self.opacity_down]

    def _step_opacity(self, step: float) -> None:
        self._state.set_opacity(round(self._state.options.opacity + step, 2))

    def set_class_names(self, names: Sequence[str]) -> None:
        self.chosen_class.blockSignals(True)
        self.chosen_class.clear()
        self.chosen_class.addItems(list(names))
        self.chosen_class.setCurrentIndex(min(self._state.options.chosen_class, len(names) - 1))
        self.chosen_class.blockSignals(False)

    def _choose_class(self, index: int) -> None:
        if index >= 0:
            self._state.set_chosen_class(index)

    def _follow(self, options: DisplayOptions, previous: DisplayOptions | None) -> None:
        for widget in (self.mode, self.chosen_class, self.opacity, self.outline, self.palette_choice):
            widget.blockSignals(True)
        for action in (self.outline_action, self.palette_action):
            action.blockSignals(True)
        self.mode.setCurrentIndex(self.mode.findData(options.mode))
        self.chosen_class.setEnabled(options.mode == "class-probability")
        if options.chosen_class < self.chosen_class.count():
            self.chosen_class.setCurrentIndex(options.chosen_class)
        self.opacity.setValue(round(options.opacity * 100))
        self.opacity_label.setText(f"{options.opacity:.0%}")
        self.outline.setChecked(options.outline)
        self.outline_action.setChecked(options.outline)
        self.palette_choice.setCurrentIndex(self.palette_choice.findData(options.palette))
        self.palette_action.setChecked(options.palette == "colorblind")
        for widget in (self.mode, self.chosen_class, self.opacity, self.outline, self.palette_choice):
            widget.blockSignals(False)
        for action in (self.outline_action, self.palette_action):
            action.blockSignals(False)
