"""Helpers for the viewer's tests: a window with test settings, and waiting for its models and images."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest.mock import Mock

import numpy as np
import shiboken6
from PIL import Image
from PySide6.QtCore import QObject
from pytestqt.qtbot import QtBot

from fcn_viewer.device_choice import DeviceChoice
from fcn_viewer.gui.analysis_worker import ClassroomService
from fcn_viewer.gui.main_window import MainWindow
from fcn_viewer.gui.panels import rgb_from_pixmap
from fcn_viewer.gui.settings import ViewerSettings
from fcn_viewer.inference import Segmentation, Segmenter
from fcn_viewer.options import Precision
from fcn_viewer.view.classroom_model import ClassroomModel
from fcn_viewer.view.viewer_model import ModelInfo
from fcn_viewer.weights.loader import FileSource, load_weights_file
from fcn_viewer.weights.native import save_native
from tests.helpers import random_model, tiny_compact_config, tiny_meta, tiny_paper_config

WAIT_MS = 20_000


def make_window(qtbot: QtBot, settings_path: Path, **services: Any) -> MainWindow:
    """A shown window with its own settings file; ``services`` (make_segmenter, load) go to MainWindow."""
    window = MainWindow(ViewerSettings(settings_path), **services)
    qtbot.addWidget(window)
    window.resize(1300, 760)
    window.show()
    qtbot.waitExposed(window)
    return window


class Teaching:
    """A classroom model on its real service, without a window: the viewer's model is the net given to :meth:`use`
    (a tab built on ``classroom.contributions`` or ``classroom.playback`` draws its answers)."""

    def __init__(self) -> None:
        self.model: ModelInfo | None = None
        self.device: DeviceChoice = "cpu"
        self.precision: Precision = "auto"
        # The service's queues are children of ``owner``, deleted at shutdown on this thread: never by the garbage
        # collector, which may run on another thread (a Teaching and its classroom model hold each other).
        self.owner = QObject()
        self.service = ClassroomService(self.owner)
        self.classroom = ClassroomModel(self.service, self, Mock())
        self.service.answer_to(self.classroom.answer)

    def use(self, net: Segmenter) -> None:
        """``net`` becomes the viewer's model, as a model load would make it."""
        self.model = ModelInfo(net.meta, FileSource(Path(f"{net.meta.name}.safetensors")), "cpu", segmenter=net)
        self.classroom.model_changed(self.model)

    def shutdown(self) -> None:
        self.classroom.shutdown()
        if shiboken6.isValid(self.owner):
            shiboken6.delete(self.owner)


def load(qtbot: QtBot, window: MainWindow, weights: Path) -> None:
    with qtbot.waitSignal(window.modelChanged, timeout=WAIT_MS):
        window.load_model(FileSource(weights))


def open_image(qtbot: QtBot, window: MainWindow, path: Path) -> None:
    with qtbot.waitSignal(window.resultShown, timeout=WAIT_MS, check_params_cb=lambda r: r.path == path):
        window.open_image(path)


def segment_independently(weights: Path, path: Path) -> Segmentation:
    image = np.asarray(Image.open(path).convert("RGB"))
    return Segmenter(load_weights_file(weights), "cpu").segment(image)


def shown_pixels(window: MainWindow, key: str) -> np.ndarray:
    return rgb_from_pixmap(window.panels[key].view.pixmap_item.pixmap())


def save_tiny(path: Path, variant: str, paper: bool = False, classes: int = 11) -> Path:
    config = tiny_paper_config(variant, classes) if paper else tiny_compact_config(variant, classes)
    return save_native(path, random_model(config, seed=1).state_dict(), tiny_meta(config, path.stem), half=False)


def fill_share(view: Any, image_size: tuple[int, int], scale: float) -> float:
    """How much of a PanelView the fitted image (height, width) covers at ``scale``: 1.0 leaves no dark band."""
    viewport = view.viewport().size()
    if viewport.width() <= 0 or viewport.height() <= 0:
        return 0.0
    height, width = image_size
    shown = min(width * scale, viewport.width()) * min(height * scale, viewport.height())
    return float(shown / (viewport.width() * viewport.height()))
