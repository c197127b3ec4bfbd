"""File ▸ Open Sample: the photos that ship with the app, one click away for a first look."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QMenu

from fcn_viewer.resources import sample_images


def add_sample_menu(parent: QMenu, open_image: Callable[[Path], None]) -> QMenu:
    """Adds "Open Sample" to ``parent``: one entry per bundled photo (with its label beside it)."""
    menu = parent.addMenu("Open &Sample")
    samples = sample_images()
    for sample in samples:
        action = menu.addAction(sample.stem)
        action.setToolTip(str(sample))
        action.triggered.connect(lambda _=False, path=sample: open_image(path))
    if not samples:
        menu.addAction("(no samples installed)").setEnabled(False)
    return menu
