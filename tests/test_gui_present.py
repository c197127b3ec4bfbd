"""The presenter's mode in the viewer, offscreen: F5 enters at the Step-Through's step, → advances, Esc leaves;
the Step-Through's class-score display holds one scale with a colour bar."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from fcn_viewer.gui.main_window import MainWindow
from tests.gui_helpers import open_image


def test_f5_presents_the_steps_arrows_step_and_escape_leaves(qtbot: QtBot, ready: MainWindow,
                                                              images: list[Path]) -> None:
    window = ready
    open_image(qtbot, window, images[0])
    classroom = window.classroom
    classroom.show_step(3)
    presenter = classroom.presenter
    qtbot.keyClick(window, Qt.Key.Key_F5)
    assert presenter.isVisible() and presenter.isFullScreen() and presenter.model.active
    count = len(classroom.steps.steps)
    assert presenter.heading.text() == f"Step 3 of {count}:  {classroom.steps.steps[2].heading}"
    assert "Chapter: fusing pool4" in presenter.chapter.text()
    image = presenter.model.deck.result.image
    rows, columns = classroom.steps.steps[2].shape[1:]
    assert presenter.titles[0].text() == f"photo · 3×{image.shape[0]}×{image.shape[1]}"  # C×rows×columns, as the tabs
    assert presenter.titles[1].text() == f"argmax classes · {rows}×{columns}"
    scale = classroom.steps.deck.scale()
    assert presenter.bar_low.text() == f"{scale.low:.1f}" and presenter.bar_high.text() == f"{scale.high:.1f}"
    qtbot.keyClick(presenter, Qt.Key.Key_Right)
    assert presenter.heading.text().startswith(f"Step 4 of {count}:")
    assert presenter.bar_low.text() == f"{scale.low:.1f}"  # the same scale on the next step
    font_px = int(presenter.heading.styleSheet().split("font-size: ")[1].split("px")[0])
    assert font_px >= 30 * presenter.height() / 1080  # large type
    qtbot.keyClick(presenter, Qt.Key.Key_Escape)
    assert not presenter.isVisible() and not presenter.model.active
    assert window.tabs.currentWidget() is classroom.steps and classroom.steps.index == 3  # where it left off


def test_f5_without_an_image_says_what_it_needs(qtbot: QtBot, window: MainWindow) -> None:
    qtbot.keyClick(window, Qt.Key.Key_F5)
    assert not window.classroom.presenter.isVisible()
    assert "Open an image with a model loaded" in window.statusBar().currentMessage()


def test_the_step_through_holds_one_class_scale_with_a_colour_bar(qtbot: QtBot, ready: MainWindow,
                                                                   images: list[Path]) -> None:
    open_image(qtbot, ready, images[1])
    steps = ready.classroom.steps
    ready.classroom.show_step(1)
    steps.display.setCurrentIndex(steps.display.findData("class-score"))
    steps.chosen_class.setCurrentIndex(2)
    assert steps.bar.isVisible() and steps.bar_text.isVisible()
    first = steps.bar_text.text()
    steps.set_step(5)
    assert steps.bar_text.text() == first and "every step" in first
    scale = steps.deck.scale()
    assert first.startswith(f"{scale.low:.2f} … {scale.high:.2f}") and scale.class_index == 2
    steps.display.setCurrentIndex(steps.display.findData("classes"))
    assert not steps.bar.isVisible()


def test_the_screenshot_can_save_a_presenter_slide_at_a_projector_size(
    tmp_path: Path, images: list[Path], tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    from fcn_viewer.cli.main import main

    shot = tmp_path / "present.png"
    argv = ["gui", str(images[0]), "--weights", str(tiny_weights), "--screenshot", str(shot), "--size", "1920x1080",
            "--tab", "present", "--teach-step", "2"]
    assert main(argv) == 0
    assert Image.open(shot).size == (1920, 1080)
    assert "screenshot of the presenter's slide saved to" in capsys.readouterr().err
