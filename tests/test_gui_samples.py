"""The sample photos in the viewer: File ▸ Open Sample opens them, and without an image the window shows the first."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from pytestqt.qtbot import QtBot

from fcn_viewer.cli.main import main
from fcn_viewer.gui.main_window import MainWindow
from fcn_viewer.gui.settings import SETTINGS_ENV, ViewerSettings
from fcn_viewer.options import SCREENSHOT_TABS
from tests.helpers import gradient_image

WAIT_MS = 20_000


@pytest.fixture
def samples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """A resources folder with two generated sample photos (no bundled model) in place of the package's."""
    monkeypatch.setenv(SETTINGS_ENV, str(tmp_path / "env-settings.ini"))
    monkeypatch.setenv("FCN_VIEWER_RESOURCES", str(tmp_path / "resources"))
    monkeypatch.setenv("FCN_VIEWER_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "resources" / "samples"
    folder.mkdir(parents=True)
    paths = [folder / "first.png", folder / "second.jpg"]
    for seed, path in enumerate(paths):
        Image.fromarray(gradient_image(48, 64, seed=seed)).save(path)
    return paths


def test_open_sample_lists_the_samples_and_opens_the_chosen_one(
    qtbot: QtBot, tmp_path: Path, samples: list[Path]
) -> None:
    window = MainWindow(ViewerSettings(tmp_path / "settings.ini"))
    qtbot.addWidget(window)
    actions = window.sample_menu.actions()
    assert [action.text() for action in actions] == ["first", "second"]
    with qtbot.waitSignal(window.resultShown, timeout=WAIT_MS) as shown:
        actions[1].trigger()
    assert shown.args[0].path == samples[1].absolute()


def test_the_screenshot_without_an_image_shows_the_first_sample(
    tmp_path: Path, samples: list[Path], tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shot = tmp_path / "shot.png"
    assert main(["gui", "--weights", str(tiny_weights), "--screenshot", str(shot), "--size", "900x600"]) == 0
    assert Image.open(shot).size[0] >= 900


def test_no_samples_leaves_a_disabled_entry(qtbot: QtBot, tmp_path: Path, samples: list[Path]) -> None:
    for path in samples:
        path.unlink()
    window = MainWindow(ViewerSettings(tmp_path / "settings.ini"))
    qtbot.addWidget(window)
    [action] = window.sample_menu.actions()
    assert not action.isEnabled()


TAB_TITLES = {"stages": "Stages", "steps": "Step-Through", "compare": "Compare", "truth": "Ground Truth",
              "contributions": "Contributions", "fields": "Receptive Fields", "sequence": "Sequence",
              "lessons": "Lessons"}


@pytest.mark.parametrize("tab", SCREENSHOT_TABS)
def test_the_screenshot_can_show_every_tab_once_its_analysis_is_drawn(
    tmp_path: Path, samples: list[Path], tiny_weights: Path, tab: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert set(TAB_TITLES) == set(SCREENSHOT_TABS)
    shot = tmp_path / f"{tab}.png"
    argv = ["gui", str(samples[0]), "--weights", str(tiny_weights), "--screenshot", str(shot), "--size", "900x600",
            "--tab", tab]
    assert main(argv) == 0
    assert Image.open(shot).size[0] >= 900
    assert f"screenshot of the {TAB_TITLES[tab]} tab saved to" in capsys.readouterr().err
