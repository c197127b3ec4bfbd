"""Shared fixtures: tiny random-weight model files, isolated settings and a viewer window; Qt runs offscreen."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PIL import Image

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Auto precision keeps fp32 on every CPU in the tests (child processes too): whether bf16 would run depends on the
# CPU and on a speed probe, and the tests' numbers must not (tests/test_cpu_precision.py turns it back on).
os.environ.setdefault("FCN_VIEWER_CPU_BF16", "off")

from fcn_viewer.weights.native import save_native
from tests.helpers import gradient_image, random_model, tiny_compact_config, tiny_meta

if TYPE_CHECKING:
    from pytestqt.qtbot import QtBot

    from fcn_viewer.gui.main_window import MainWindow
    from tests.gui_helpers import Teaching


@pytest.fixture(autouse=True)
def collect_on_the_main_thread(request: pytest.FixtureRequest) -> Iterator[None]:
    """As in the app (fcn_viewer/gui/collector.py): once Qt is up, cycles are collected on the main thread only,
    never on a worker thread that happens to allocate; between tests they are collected here."""
    if {"qapp", "qtbot"} & set(request.fixturenames):
        from fcn_viewer.gui.collector import collect_on_gui_thread

        collect_on_gui_thread(request.getfixturevalue("qapp"))
    yield
    if not gc.isenabled():
        from fcn_viewer.gui.collector import GuiThreadCollector

        GuiThreadCollector.collect()


@pytest.fixture
def tiny_weights(tmp_path: Path) -> Path:
    """A native .safetensors file of a tiny compact FCN-8s with 11 CamVid classes."""
    config = tiny_compact_config()
    model = random_model(config)
    return save_native(tmp_path / "tiny.safetensors", model.state_dict(), tiny_meta(config), half=False)


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No real settings, no bundled model, no user cache (the viewer's tests use it for every test)."""
    from fcn_viewer.gui.settings import SETTINGS_ENV

    monkeypatch.setenv(SETTINGS_ENV, str(tmp_path / "env-settings.ini"))
    (tmp_path / "resources" / "models").mkdir(parents=True)
    monkeypatch.setenv("FCN_VIEWER_RESOURCES", str(tmp_path / "resources"))
    monkeypatch.setenv("FCN_VIEWER_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def settings_path(tmp_path: Path) -> Path:
    return tmp_path / "settings.ini"


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    """Three small photos of different sizes in one folder: a.png, b.png, c.png."""
    folder = tmp_path / "images"
    folder.mkdir()
    paths = []
    for index, (name, size) in enumerate((("a.png", (40, 56)), ("b.png", (48, 64)), ("c.png", (36, 60)))):
        path = folder / name
        Image.fromarray(gradient_image(*size, seed=index)).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def window(qtbot: QtBot, settings_path: Path) -> MainWindow:
    """A shown viewer window with its own settings and no model."""
    from tests.gui_helpers import make_window

    return make_window(qtbot, settings_path)


@pytest.fixture
def ready(qtbot: QtBot, window: MainWindow, tiny_weights: Path) -> MainWindow:
    """The window with the tiny model loaded."""
    from tests.gui_helpers import load

    load(qtbot, window, tiny_weights)
    return window


@pytest.fixture
def teaching(qtbot: QtBot) -> Iterator[Teaching]:
    """A classroom model on its real service, without a window (its threads stop after the test)."""
    from tests.gui_helpers import Teaching

    teaching = Teaching()
    yield teaching
    teaching.shutdown()
