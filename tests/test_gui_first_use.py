"""What a newcomer meets first in the window (issue 22): the version in About, keys for every tab and for the display
choices (listed in F1), menu entries that say what they show and a colour-bar caption that reads as a
heading."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from fcn_viewer import __version__
from fcn_viewer.gui.help import menu_shortcuts, shortcuts_html
from fcn_viewer.gui.main_window import MainWindow

pytestmark = pytest.mark.usefixtures("isolated")


def _action(window: MainWindow, keys: str) -> tuple[str, str]:
    """(menu path, entry) of the menu entry with these keys."""
    [(path, name)] = [(path, name) for k, path, name in menu_shortcuts(window.menuBar()) if k == keys]
    return path, name


def _trigger(window: MainWindow, keys: str) -> None:
    for action in window.findChildren(type(window.toolbar.outline_action)):
        if action.shortcut().toString() == keys:
            action.trigger()
            return
    raise AssertionError(f"no action for {keys}")


def test_about_shows_the_version(window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "about", lambda parent, title, text: shown.append(text))
    window._about()
    assert shown and f"fcn-viewer {__version__}" in shown[0]


def test_ctrl_1_to_8_show_the_eight_tabs_in_order(window: MainWindow) -> None:
    assert window.tabs.count() == 8
    for number in range(1, 9):
        window.tabs.setCurrentIndex(0 if number != 1 else 7)
        _trigger(window, f"Ctrl+{number}")
        assert window.tabs.currentIndex() == number - 1, f"Ctrl+{number}"
    assert _action(window, "Ctrl+1") == ("View", "Stages")


def test_outline_palette_and_opacity_have_keys_listed_in_f1(window: MainWindow) -> None:
    state = window.state
    opacity = state.options.opacity
    _trigger(window, "O")
    assert state.options.outline and window.toolbar.outline.isChecked()
    _trigger(window, "O")
    assert not state.options.outline
    _trigger(window, "P")
    assert state.options.palette == "colorblind" and window.toolbar.palette_action.isChecked()
    window.toolbar.palette_choice.setCurrentIndex(window.toolbar.palette_choice.findData("model"))
    assert not window.toolbar.palette_action.isChecked()  # the menu entry follows the toolbar
    _trigger(window, "]")
    assert state.options.opacity == pytest.approx(opacity + 0.1)
    _trigger(window, "[")
    _trigger(window, "[")
    assert state.options.opacity == pytest.approx(opacity - 0.1)
    page = shortcuts_html(window.menuBar())
    for keys, name in (("O", "Outline Class Boundaries"), ("P", "Colour-Blind Safe Palette"),
                       ("]", "Mask Opacity +10 %"), ("[", "Mask Opacity −10 %")):
        assert _action(window, keys) == ("View", name)
        assert f"<b>{keys}</b>" in page and name in page


def test_the_display_toolbar_and_the_dataset_panel_entries_say_what_they_are(window: MainWindow) -> None:
    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    toolbar = window.toolbar.toggleViewAction()
    assert toolbar in view_menu.actions() and toolbar.text() == "Display &Toolbar"
    assert "opacity" in toolbar.toolTip() and view_menu.toolTipsVisible()
    dataset = window.classroom.dataset_dock.toggleViewAction()
    assert dataset in window.classroom.menu.actions() and dataset.text() == "Dataset Scores &Panel"
    assert "scores every image" in dataset.toolTip() and window.classroom.menu.toolTipsVisible()


def test_the_confidence_colour_bar_has_a_heading_and_does_not_widen_the_legend(
    qtbot: QtBot, window: MainWindow
) -> None:
    legend = window.legend
    legend.set_classes(["Sky", "Road"], [(128, 128, 128), (128, 64, 128)])
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    width = legend.width()
    window.state.set_mode("confidence")
    qtbot.wait(50)
    assert legend.width() == width  # the caption wraps to the legend: the panels keep their room
    assert legend.colorbar.caption().splitlines() == ["Confidence", "the top class's probability at each pixel"]
    window.state.set_mode("class-probability")
    assert legend.colorbar.caption().splitlines()[0] == "Probability of Sky"


