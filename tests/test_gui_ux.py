"""The viewer as a new user and a teacher meet it: keys that work at once, the Help menu, --teach-step's range,
the dataset dock filling in row by row, and a status bar that never hides its message."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QApplication, QTextBrowser
from pytestqt.qtbot import QtBot

from fcn_viewer.cli.main import main
from fcn_viewer.gui.help import menu_shortcuts
from fcn_viewer.gui.main_window import MainWindow, download_question
from fcn_viewer.gui.status_bar import MESSAGE_GAP
from tests.gui_helpers import WAIT_MS, load, open_image
from tests.test_evaluate import make_dataset

pytestmark = pytest.mark.usefixtures("isolated")


def test_step_through_takes_arrow_keys_as_soon_as_it_is_shown(
    qtbot: QtBot, ready: MainWindow, images: list[Path]
) -> None:
    open_image(qtbot, ready, images[0])
    ready.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is ready, timeout=WAIT_MS)
    ready.tabs.tabBar().setFocus()  # where a click on the tab leaves the focus
    ready.tabs.setCurrentWidget(ready.classroom.steps)
    steps = ready.classroom.steps
    qtbot.waitUntil(lambda: steps.isAncestorOf(QApplication.focusWidget()), timeout=WAIT_MS)
    assert steps.index == 0
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Right)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Right)
    assert steps.index == 2 and ready.tabs.currentWidget() is steps  # the tab bar did not take the arrows
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Left)
    assert steps.index == 1


def test_teach_step_is_checked_against_the_steps_there_are(
    tmp_path: Path, images: list[Path], tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shot = tmp_path / "shot.png"
    base = ["gui", str(images[0]), "--weights", str(tiny_weights), "--screenshot", str(shot), "--size", "900x600"]
    with pytest.raises(SystemExit) as stopped:
        main([*base, "--teach-step", "0"])
    assert stopped.value.code == 2 and "steps start at 1" in capsys.readouterr().err
    assert main([*base, "--teach-step", "13"]) == 2  # a usage error, as a step below 1 is
    assert "--teach-step 13: this net's step-through has steps 1 to 12" in capsys.readouterr().err
    assert not shot.exists()
    assert main([*base, "--teach-step", "12"]) == 0 and shot.exists()


def test_help_lists_the_shortcuts_of_the_menus_and_explains_fcn(qtbot: QtBot, window: MainWindow) -> None:
    rows = menu_shortcuts(window.menuBar())
    found = {(keys, name) for keys, _, name in rows}
    assert ("Ctrl+O", "Open…") in found and ("D", "Next Image") in found and ("Ctrl+2", "Fusion Step-Through") in found
    assert all(path.split(" ▸ ")[0] in {"File", "View", "Model", "Teaching", "Help"} for _, path, _ in rows)
    names = [action.text() for action in window.help_actions]
    assert names == ["&Keyboard Shortcuts", "&How FCN Works"]
    for action, expected in zip(window.help_actions, ("Ctrl+Shift+O", "offset 19")):
        action.trigger()
        page = window.findChildren(QTextBrowser)[-1].toPlainText()
        assert expected in page
    assert "← / →" in window.findChildren(QTextBrowser)[0].toPlainText()
    how = window.findChildren(QTextBrowser)[-1].toPlainText()
    assert all(word in how for word in ("stride 32", "pool4", "pool3", "5, 9 and 31", "start at zero"))


def test_the_exact_fp32_switch_sits_where_the_readme_says(window: MainWindow) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "Model ▸ Device ▸ *Exact fp32* is checked" in readme
    device = next(a.menu() for a in window.model_menu.actions() if a.menu() is window.device_menu)
    exact = next(a for a in device.actions() if a.text().startswith("Exact fp32 (otherwise bf16"))
    assert exact.isEnabled()  # on the CPU too: auto may run bf16 there


def test_dataset_rows_fill_in_as_each_image_is_scored(
    qtbot: QtBot, window: MainWindow, tiny_weights: Path, tmp_path: Path
) -> None:
    data = make_dataset(tmp_path / "camvid", count=3)
    load(qtbot, window, tiny_weights)
    classroom, view = window.classroom, window.classroom.datasets
    seen: list[tuple[list[str], str]] = []

    def scored(*_: object) -> None:  # after the classroom has put the row: what the table shows now, top to bottom
        proxy = view.proxy
        seen.append(([proxy.index(row, 1).data() for row in range(1, proxy.rowCount())], proxy.index(0, 0).data()))

    classroom.service.datasets.progress.connect(scored)
    classroom.ask_dataset_folder = lambda: data  # type: ignore[method-assign]
    with qtbot.waitSignal(classroom.datasetScored, timeout=WAIT_MS):
        classroom.open_dataset_dialog()
    assert [sum(value != "n/a" for value in values) for values, _ in seen] == [1, 2, 3]
    assert [values.index("n/a") if "n/a" in values else 3 for values, _ in seen] == [1, 2, 3]  # top rows first
    assert all(top == "dataset (scoring 3 images…)" for _, top in seen)  # the split row, pinned, waits
    assert view.proxy.index(0, 0).data() == "dataset (3 images)"  # ... and is filled in at the end
    assert view.table.verticalHeader().defaultSectionSize() <= view.fontMetrics().height() + 8
    assert classroom.dataset_dock.height() >= 250


def test_the_dataset_progress_text_fits(qtbot: QtBot, window: MainWindow) -> None:
    view = window.classroom.datasets
    view.progress.setRange(0, 101)
    view.progress.setValue(90)
    view.progress.show()
    text = view.progress.text()
    assert text == "90 / 101 images"
    assert view.progress.minimumWidth() > view.progress.fontMetrics().horizontalAdvance(text) + 20


def test_a_long_status_message_is_elided_before_the_zoom_label_with_the_whole_text_in_its_tooltip(
    qtbot: QtBot, window: MainWindow
) -> None:
    window.resize(900, 600)
    long = "could not read " + "/very/long/folder/name" * 12 + "/photo.jpg: not an image"
    window.show_error(long)
    bar = window.statusBar()
    qtbot.waitUntil(lambda: bar.currentMessage() == long, timeout=WAIT_MS)
    shown = bar.shown_message()  # type: ignore[attr-defined]
    assert shown.endswith("…") and long.startswith(shown[:-1])
    assert bar.toolTip() == long
    assert window.zoom_label.x() - bar.message_rect().right() >= MESSAGE_GAP  # type: ignore[attr-defined]
    assert bar.fontMetrics().horizontalAdvance(shown) <= bar.message_rect().width()  # type: ignore[attr-defined]
    bar.clearMessage()
    assert bar.toolTip() == ""
    window.readout.setText(long)
    assert window.readout.width() < window.zoom_label.x() and window.readout.text() == long


def test_the_download_question_keeps_its_url_and_folder_each_on_one_line(qtbot: QtBot) -> None:
    url = "http://dl.caffe.berkeleyvision.org/fcn8s-heavy-pascal.caffemodel"
    folder = Path("/home/someone/.cache/fcn-viewer/weights")
    document = QTextDocument()
    document.setHtml(download_question("FCN-8s VOC (paper, Caffe)", "538 MB", url, folder))
    document.setTextWidth(120)  # far narrower than either: as plain text, both would break (after http://)
    assert _line_holds_whole(document, url) and _line_holds_whole(document, str(folder))
    document.setPlainText(document.toPlainText())  # the same words as plain text do break
    assert not _line_holds_whole(document, url) and not _line_holds_whole(document, str(folder))


def _line_holds_whole(document: QTextDocument, words: str) -> bool:
    """Whether ``words`` lie on one laid-out line of ``document``."""
    start = document.toPlainText().index(words)
    block = document.findBlock(start)
    document.documentLayout().blockBoundingRect(block)  # lays the block out
    line = block.layout().lineForTextPosition(start - block.position())
    assert line.isValid()
    return line.textStart() + line.textLength() >= start - block.position() + len(words)
