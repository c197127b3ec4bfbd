"""Small things a reviewer met in the running viewer: texts that read right, panels that keep still, a status bar
that tells what is shown, a dataset dock that follows the image, and no noise from the offscreen platform."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from PySide6.QtCore import qInstallMessageHandler, qWarning
from PySide6.QtWidgets import QTextBrowser
from pytestqt.qtbot import QtBot

from fcn_viewer.gui import analysis_worker
from fcn_viewer.gui.app import HARMLESS_OFFSCREEN_WARNING, quiet_offscreen_plugin
from fcn_viewer.gui.classroom import NO_LABEL
from fcn_viewer.gui.domain_note import confidence_line
from fcn_viewer.gui.main_window import MainWindow
from tests.gui_helpers import WAIT_MS, load, open_image
from tests.helpers import gradient_image
from tests.test_evaluate import make_dataset

pytestmark = pytest.mark.usefixtures("isolated")


def test_the_no_label_message_ends_in_one_period() -> None:
    assert not NO_LABEL.endswith("….") and ".." not in NO_LABEL and NO_LABEL.endswith(".")
    assert "Open Label…" in NO_LABEL


def test_how_fcn_works_names_every_tab(window: MainWindow) -> None:
    window.help_actions[1].trigger()
    page = window.findChildren(QTextBrowser)[-1].toPlainText()
    where = page[page.index("Where to look"):]
    for index in range(window.tabs.count()):
        assert window.tabs.tabText(index) in where, window.tabs.tabText(index)


def test_the_info_panel_states_the_threshold_as_a_rule_not_a_verdict() -> None:
    line = confidence_line(0.848, 0.821)
    assert line == "mean confidence 84.8\u00a0% (photos below 82.1\u00a0%, the model's threshold, get a note)"
    assert "unlike" not in line
    assert confidence_line(0.5, None) == "mean confidence 50.0\u00a0%"


def test_the_dataset_dock_follows_the_image_and_says_when_a_run_was_stopped(
    qtbot: QtBot, window: MainWindow, tiny_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_dataset(tmp_path / "camvid", count=6)
    load(qtbot, window, tiny_weights)
    classroom, view = window.classroom, window.classroom.datasets
    scoring = analysis_worker.evaluate_models

    def waiting_for_stop(*args: Any, image_scores: Callable[..., None], cancel: Callable[[], bool],
                         **kwargs: Any) -> Any:
        """After each image the worker waits (at most 10 s) for the Stop the GUI sends on seeing its progress,
        so the run stops after the first image however fast the tiny net scores the rest."""
        def then_wait(*scores: Any) -> None:
            image_scores(*scores)
            deadline = time.monotonic() + 10
            while not cancel() and time.monotonic() < deadline:
                time.sleep(0.005)

        return scoring(*args, image_scores=then_wait, cancel=cancel, **kwargs)

    monkeypatch.setattr(analysis_worker, "evaluate_models", waiting_for_stop)
    classroom.service.datasets.progress.connect(lambda *_: classroom.service.cancel_dataset())  # Stop at once
    classroom.ask_dataset_folder = lambda: data  # type: ignore[method-assign]
    with qtbot.waitSignal(classroom.datasetScored, timeout=WAIT_MS) as scored:
        classroom.open_dataset_dialog()
    evaluation = scored.args[0]
    assert evaluation.cancelled and evaluation.images < 6
    assert view.status.text().startswith(f"{evaluation.images} of 6 images scored; stopped.")
    assert "Scored every stage" not in view.status.text()

    def selected() -> Path | None:
        rows = view.table.selectionModel().selectedRows()
        return view.row_path(rows[0].row()) if rows else None

    qtbot.waitUntil(lambda: window.shown_result is not None, timeout=WAIT_MS)
    first = sorted((data / "val").iterdir())[0]
    qtbot.waitUntil(lambda: selected() == first, timeout=WAIT_MS)
    second = sorted((data / "val").iterdir())[1]
    with qtbot.waitSignal(window.resultShown, timeout=WAIT_MS, check_params_cb=lambda r: r.path == second):
        window.next_action.trigger()  # D: the folder's next image, not through the dock
    assert selected() == second


def test_offscreen_screenshots_drop_only_the_plugins_size_hint_warning(capfd: pytest.CaptureFixture[str]) -> None:
    assert not quiet_offscreen_plugin("xcb")
    pytest_qt_handler = qInstallMessageHandler(None)
    try:
        assert quiet_offscreen_plugin("offscreen")
        capfd.readouterr()
        qWarning(HARMLESS_OFFSCREEN_WARNING)
        qWarning("something else went wrong")
        err = capfd.readouterr().err
    finally:
        qInstallMessageHandler(pytest_qt_handler)
    assert HARMLESS_OFFSCREEN_WARNING not in err and "something else went wrong" in err


def test_the_zoom_label_shows_the_stage_grids_zoom_and_only_with_the_grid(
    qtbot: QtBot, ready: MainWindow, images: list[Path]
) -> None:
    open_image(qtbot, ready, images[0])
    label = ready.zoom_label

    def fitted() -> bool:  # the label reads the grid's fitted zoom, as large as the input panel shows the image
        view = ready.panels["input"].view.viewport()
        width = ready.shown_result.image_size[1]  # type: ignore[union-attr]
        return label.text() == f"fit {ready.link.scale:.0%}" and abs(ready.link.scale * width - view.width()) <= 2

    qtbot.waitUntil(lambda: label.isVisible() and fitted(), timeout=WAIT_MS)
    for view in (ready.classroom.compare, ready.classroom.truth, ready.classroom.steps):
        ready.tabs.setCurrentWidget(view)
        qtbot.waitUntil(lambda: not label.isVisible(), timeout=WAIT_MS)
    ready.resize(ready.width() - 200, ready.height() - 100)  # the grid, hidden, is refitted when shown again
    qtbot.wait(50)
    ready.tabs.setCurrentWidget(ready.grid)
    qtbot.waitUntil(lambda: label.isVisible() and fitted(), timeout=WAIT_MS)


@pytest.mark.parametrize("size", [(1280, 800), (1400, 860)])
def test_the_info_panel_uses_the_free_room_below_it_and_scrolls_the_rest(
    qtbot: QtBot, ready: MainWindow, size: tuple[int, int], tmp_path: Path
) -> None:
    photo = tmp_path / "photo.png"
    Image.fromarray(gradient_image(360, 480)).save(photo)
    ready.resize(*size)
    open_image(qtbot, ready, photo)
    ready.banner.show_message("/tmp/x.png: not an image, or not one of the formats read here", "error")  # less room
    info, grid = ready.info, ready.grid
    qtbot.wait(50)
    qtbot.waitUntil(lambda: info.height() > 0 and info.isVisible(), timeout=WAIT_MS)
    cell = grid.layout_plan.cell[1]
    assert info.height() > cell  # it reaches into the empty cells and the room below the grid
    assert not info.cut() and "upsampling" in info.text()  # the whole text shows
    bottom = info.mapTo(grid, info.rect().bottomLeft()).y()
    assert bottom <= grid.height()
    lines = info.text().splitlines()
    info.set_lines(lines * 6)
    qtbot.waitUntil(info.cut, timeout=WAIT_MS)
    assert info.verticalScrollBar().isVisible()  # too long: it scrolls, never cut silently
    info.verticalScrollBar().setValue(info.verticalScrollBar().maximum())
    heights = {panel.view.viewport().height() for panel in ready.panels.values() if panel.isVisible()}
    assert max(heights) - min(heights) <= 2  # the text never stretches a row


def test_receptive_fields_keep_their_panels_still_and_their_labels_inside_the_photo(
    qtbot: QtBot, ready: MainWindow, tmp_path: Path
) -> None:
    photo = tmp_path / "photo.png"
    Image.fromarray(gradient_image(360, 480)).save(photo)
    ready.resize(1280, 800)
    open_image(qtbot, ready, photo)
    fields = ready.classroom.fields
    ready.classroom.show_view(fields)
    qtbot.waitUntil(lambda: fields.photo.view.sceneRect().width() == 480, timeout=WAIT_MS)
    qtbot.wait(50)
    panels = [fields.header, fields.photo, *fields.maps.values(), fields.mask_panel]
    before = [panel.geometry() for panel in panels]
    view = fields.photo.view
    for row, column in ((180, 470), (5, 5), (350, 470), (180, 240)):  # near the right edge, then the corners
        fields.click_pixel(row, column)
        qtbot.wait(20)
        assert [panel.geometry() for panel in panels] == before  # nothing moves under the mouse
        shown = view.mapFromScene(view.sceneRect()).boundingRect().intersected(view.viewport().rect())
        labels = fields.photo_labels()
        assert len(labels) == len(fields.cells)
        click = view.mapFromScene(column + 0.5, row + 0.5)
        for label in labels:
            rect = label.deviceTransform(view.viewportTransform()).mapRect(label.rect()).toAlignedRect()
            assert shown.adjusted(-1, -1, 1, 1).contains(rect), (row, column, rect, shown)
            assert not rect.contains(click)  # the labels leave the clicked pixel's marks visible
        assert not fields.header.verticalScrollBar().isVisible()  # at 1280 px the numbers fit the header
