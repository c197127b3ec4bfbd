"""The display options in one place, so the toolbar, the legend and the panels agree: widgets bind to it."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QObject, Signal

from fcn_viewer.view.options import DISPLAY_MODES, PALETTES, DisplayMode, DisplayOptions, PaletteName


class ViewState(QObject):
    """Holds the display options; every change is announced by a signal."""

    optionsChanged = Signal(object, object)  # new DisplayOptions, previous DisplayOptions

    def __init__(self, options: DisplayOptions | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._options = options or DisplayOptions()
        self._class_count = 0

    @property
    def options(self) -> DisplayOptions:
        return self._options

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
