"""Small things a reviewer met in the running viewer: texts that read right, panels that keep still, a status bar
that tells what is shown, a dataset dock that follows the image, and no noise from the offscreen platform."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QTextBrowser
from pytestqt.qtbot import QtBot

from fcn_viewer.gui.classroom import NO_LABEL
from fcn_viewer.gui.domain_note import confidence_line
from fcn_viewer.gui.main_window import MainWindow

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
    assert line == "mean confidence 84.8 % (photos below 82.1 %, the model's threshold, get a note)"
    assert "unlike" not in line
    assert confidence_line(0.5, None) == "mean confidence 50.0 %"
