"""The viewer's display state in one place: widgets bind to it, and the panels redraw when it changes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from PySide6.QtCore import QObject, Signal

from fcn_viewer.gui.panel_content import ViewResult

DisplayMode = Literal["classes", "confidence", "class-probability"]
PaletteName = Literal["model", "colorblind"]
DISPLAY_MODES: tuple[DisplayMode, ...] = ("classes", "confidence", "class-probability")
PALETTES: tuple[PaletteName, ...] = ("model", "colorblind")


@dataclass(frozen=True)
class DisplayOptions:
    """How the panels draw a result; plain data, so rendering code needs no Qt."""

    mode: DisplayMode = "classes"
    opacity: float = 0.6
    hidden: frozenset[int] = frozenset()
    palette: PaletteName = "model"
    outline: bool = False
    chosen_class: int = 0


class ViewState(QObject):
    """Holds the display options and the shown result; every change is announced by a signal."""

    optionsChanged = Signal(object, object)  # new DisplayOptions, previous DisplayOptions
    resultChanged = Signal(object)  # ViewResult or None

    def __init__(self, options: DisplayOptions | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._options = options or DisplayOptions()
        self._result: ViewResult | None = None
        self._class_count = 0

    @property
    def options(self) -> DisplayOptions:
        return self._options

    @property
    def result(self) -> ViewResult | None:
        return self._result

    def set_result(self, result: ViewResult | None) -> None:
        self._result = result
        self.resultChanged.emit(result)

    def set_class_count(self, count: int) -> None:
        """A model with ``count`` classes is in use: shows every class and keeps the chosen class in range."""
        self._class_count = count
        chosen = self._options.chosen_class if self._options.chosen_class < count else 0
        self._update(hidden=frozenset(), chosen_class=chosen)

    def set_mode(self, mode: DisplayMode) -> None:
        if mode not in DISPLAY_MODES:
            raise ValueError(f"unknown display mode {mode!r}")
        self._update(mode=mode)

    def set_opacity(self, opacity: float) -> None:
        self._update(opacity=min(max(float(opacity), 0.0), 1.0))

    def set_class_visible(self, index: int, visible: bool) -> None:
        hidden = self._options.hidden - {index} if visible else self._options.hidden | {index}
        self._update(hidden=frozenset(hidden))

    def set_all_visible(self, visible: bool) -> None:
        self._update(hidden=frozenset() if visible else frozenset(range(self._class_count)))

    def set_palette(self, palette: PaletteName) -> None:
        if palette not in PALETTES:
            raise ValueError(f"unknown palette {palette!r}")
        self._update(palette=palette)

    def set_outline(self, outline: bool) -> None:
        self._update(outline=bool(outline))

    def set_chosen_class(self, index: int) -> None:
        self._update(chosen_class=int(index))

    def _update(self, **changes: object) -> None:
        previous = self._options
        options = replace(previous, **changes)  # type: ignore[arg-type]
        if options != previous:
            self._options = options
            self.optionsChanged.emit(options, previous)
