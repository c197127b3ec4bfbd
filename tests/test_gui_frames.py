"""The window draws one image at a time: a result or an error that arrives while a frame is being drawn never
leaves photo, panels, legend, info, title and status belonging to different images."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from fcn_viewer.gui.main_window import MainWindow
from fcn_viewer.gui.panels import PanelView
from fcn_viewer.view.outcome import JobFailed
from fcn_viewer.view.panel_content import PANELS_BY_KEY, ViewResult, render_panel, resolve_palette
from tests.gui_helpers import WAIT_MS, open_image, shown_pixels

pytestmark = pytest.mark.usefixtures("isolated")


def collect_results(qtbot: QtBot, window: MainWindow, paths: list[Path]) -> dict[Path, ViewResult]:
    """Each image's result, as the window showed it."""
    results = {}
    for path in paths:
        open_image(qtbot, window, path)
        assert window.shown_result is not None
        results[path] = window.shown_result
    return results


def images_on_screen(window: MainWindow, results: dict[Path, ViewResult]) -> dict[str, frozenset[Path]]:
    """Which images each part of the window could be showing: every visible panel (by its pixels), the info
    panel, the legend's class shares and the window title."""
    options = window.state.options

    def matching(predicate: Callable[[ViewResult], bool]) -> frozenset[Path]:
        return frozenset(path for path, result in results.items() if predicate(result))

    shown: dict[str, frozenset[Path]] = {}
    for key, panel in window.panels.items():
        if not panel.isVisible():
            continue
        pixels = shown_pixels(window, key)

        def same(result: ViewResult, key: str = key, pixels: np.ndarray = pixels) -> bool:
            assert result.meta is not None
            expected = render_panel(result, PANELS_BY_KEY[key], options, resolve_palette(options.palette, result.meta))
            return expected.shape == pixels.shape and bool(np.array_equal(expected, pixels))

        shown[key] = matching(same)
    shown["info"] = matching(lambda r: window.info.text().startswith(r.path.name))
    shares = [label.text() for label in window.legend.shares]
    shown["legend"] = matching(lambda r: shares == [f"{share:.1%}" for share in r.class_shares()])
    shown["title"] = matching(lambda r: window.windowTitle() == f"{r.path.name} — fcn-viewer")
    return shown


def one_image(shown: dict[str, frozenset[Path]]) -> Path | None:
    """The one image every part of the window shows, or None when they disagree."""
    common = frozenset.intersection(*shown.values())
    return next(iter(common)) if len(common) == 1 else None


def assert_one_image(window: MainWindow, results: dict[Path, ViewResult], where: str) -> Path:
    shown = images_on_screen(window, results)
    path = one_image(shown)
    assert path is not None, f"{where}: {shown}"
    return path


class PaintWatch(QObject):
    """Checks, at every paint of the window or its panels, that everything on screen shows one image."""

    def __init__(self, window: MainWindow, results: dict[Path, ViewResult]) -> None:
        super().__init__()
        self.window, self.results = window, results
        self.paints = 0
        self.mixed: list[dict[str, frozenset[Path]]] = []

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint and watched is self.window.panels["mask-8s"].view.viewport():
            self.paints += 1
            shown = images_on_screen(self.window, self.results)
            if one_image(shown) is None:
                self.mixed.append(shown)
        return False


def interrupt_drawing(monkeypatch: pytest.MonkeyPatch, window: MainWindow, panel: str,
                      interruption: Callable[[], None]) -> list[str]:
    """Runs ``interruption`` once, between two widget updates of the next frame: after ``panel`` got its pixels.
    Returns the panels updated, in order."""
    original = PanelView.set_pixels
    updated: list[str] = []
    armed = [True]
    keys = {id(p.view): key for key, p in window.panels.items()}

    def set_pixels(view: PanelView, pixels: np.ndarray, image_size: tuple[int, int]) -> None:
        original(view, pixels, image_size)
        key = keys.get(id(view), "")  # other views (the teaching tabs') draw too
        updated.append(key)
        if armed[0] and key == panel:
            armed[0] = False
            interruption()

    monkeypatch.setattr(PanelView, "set_pixels", set_pixels)
    return updated


def test_a_result_arriving_between_two_widget_updates_never_mixes_two_images_on_screen(
    qtbot: QtBot, ready: MainWindow, images: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, third = images
    results = collect_results(qtbot, ready, [third, first])
    results |= collect_results(qtbot, ready, [second])
    open_image(qtbot, ready, first)
    watch = PaintWatch(ready, results)
    QApplication.instance().installEventFilter(watch)  # type: ignore[union-attr]
    framed: list[Path | None] = []
    ready.resultShown.connect(lambda _: framed.append(one_image(images_on_screen(ready, results))))

    def press_d_and_get_its_result() -> None:  # the user moves on, and that image's result comes in right away
        with qtbot.waitSignal(ready.service.jobs.finished, timeout=WAIT_MS,
                              check_params_cb=lambda job, answer: getattr(answer, "path", None) == third):
            ready.open_image(third)

    updated = interrupt_drawing(monkeypatch, ready, "mask-16s", press_d_and_get_its_result)
    with qtbot.waitSignal(ready.resultShown, timeout=WAIT_MS, check_params_cb=lambda r: r.path == third):
        ready.open_image(second)
    qtbot.waitUntil(lambda: not ready.busy_now, timeout=WAIT_MS)
    QApplication.instance().removeEventFilter(watch)  # type: ignore[union-attr]

    assert "mask-16s" in updated and updated.count("mask-8s") >= 2  # the interruption came mid-frame
    assert framed[:2] == [second, third] and None not in framed, framed
    assert watch.paints > 0 and not watch.mixed, watch.mixed
    assert assert_one_image(ready, results, "at the end") == third
    assert ready.shown_result is not None and ready.shown_result.path == third


def test_an_error_arriving_between_two_widget_updates_leaves_title_and_panels_on_one_image(
    qtbot: QtBot, ready: MainWindow, images: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, _ = images
    results = collect_results(qtbot, ready, [second, first])
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")

    def open_broken_and_get_its_error() -> None:
        with qtbot.waitSignal(ready.service.jobs.finished, timeout=WAIT_MS,
                              check_params_cb=lambda job, answer: isinstance(answer, JobFailed)):
            ready.open_image(broken)

    interrupt_drawing(monkeypatch, ready, "scores-16s", open_broken_and_get_its_error)
    with qtbot.waitSignal(ready.resultShown, timeout=WAIT_MS):
        ready.open_image(second)
    qtbot.waitUntil(lambda: not ready.busy_now, timeout=WAIT_MS)
    assert assert_one_image(ready, results, "after the error") == second
    assert "broken.png" in ready.banner.text() and "broken.png" not in ready.windowTitle()


def test_the_title_names_the_image_the_panels_show_while_a_new_one_loads_and_after_it_fails(
    qtbot: QtBot, ready: MainWindow, images: list[Path], tmp_path: Path
) -> None:
    first = images[0]
    results = collect_results(qtbot, ready, [first])
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    with qtbot.waitSignal(ready.jobFailed, timeout=WAIT_MS):
        ready.open_image(broken)
        assert assert_one_image(ready, results, "while the broken file loads") == first
    assert assert_one_image(ready, results, "after it failed") == first
    assert ready.windowTitle() == "a.png — fcn-viewer"
