"""The stage panels take the image's aspect ratio; wide and tall images get a strip that stays usable."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from pytestqt.qtbot import QtBot

from fcn_viewer.gui.main_window import MainWindow
from fcn_viewer.gui.panels import plan_layout
from fcn_viewer.gui.settings import SETTINGS_ENV, ViewerSettings
from fcn_viewer.weights.loader import FileSource
from tests.helpers import gradient_image

WAIT_MS = 20_000
KEYS = ["input", "scores-32s", "scores-16s", "scores-8s", "mask-32s", "mask-16s", "mask-8s", "info"]
STAGES = ("32s", "16s", "8s")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SETTINGS_ENV, str(tmp_path / "env-settings.ini"))
    (tmp_path / "resources" / "models").mkdir(parents=True)
    monkeypatch.setenv("FCN_VIEWER_RESOURCES", str(tmp_path / "resources"))
    monkeypatch.setenv("FCN_VIEWER_CACHE", str(tmp_path / "cache"))


def test_a_photo_gets_the_largest_stage_aligned_grid() -> None:
    # a 480×360 photo in the stage area of a 1280×800 window
    plan = plan_layout(KEYS, STAGES, (360, 480), (1070, 690), 20, 8)
    assert plan.mode == "grid"
    assert plan.positions["scores-16s"][0] == plan.positions["mask-16s"][0]  # one row per stage
    assert plan.positions["mask-16s"][1] == plan.positions["mask-8s"][1]
    assert plan.scale > 0.55  # the four-column grid gave 0.54 and left a third of the height empty
    width, height = plan.cell
    assert abs(width / height - 480 / 360) < 0.02
    assert plan.columns * width + 2 * 8 <= 1070 and plan.rows * (height + 20) + 2 * 8 <= 690


def test_a_wide_window_keeps_score_maps_above_their_masks() -> None:
    plan = plan_layout(KEYS, STAGES, (360, 480), (1700, 900), 20, 8)
    assert plan.mode == "grid" and plan.columns == 4 and plan.rows == 2
    assert plan.positions["scores-8s"] == (0, 3) and plan.positions["mask-8s"] == (1, 3)


def test_a_panorama_gets_one_full_width_panel_per_row() -> None:
    plan = plan_layout(KEYS, STAGES, (500, 4000), (1070, 690), 20, 8, scrollbar=15)
    assert plan.mode == "rows" and plan.columns == 1 and plan.rows == len(KEYS)
    assert plan.scale == pytest.approx((1070 - 15) / 4000)  # 26 %, not the 7 % of a four-column grid
    tall = plan_layout(KEYS, STAGES, (4000, 500), (1070, 690), 20, 8, scrollbar=15)
    assert tall.rows == 1 and tall.scale > 0.16  # side by side, as tall as the area (a grid of one row here)
    narrow = plan_layout(KEYS, STAGES, (4000, 500), (400, 690), 20, 8, scrollbar=15)
    assert narrow.mode == "columns" and narrow.rows == 1
    assert narrow.scale == pytest.approx((690 - 15 - 20) / 4000)


def test_panels_in_the_window_have_the_image_aspect_and_a_wide_image_scrolls(
    qtbot: QtBot, tmp_path: Path, tiny_weights: Path
) -> None:
    window = MainWindow(ViewerSettings(tmp_path / "settings.ini"))
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    with qtbot.waitSignal(window.modelChanged, timeout=WAIT_MS):
        window.load_model(FileSource(tiny_weights))
    photo, panorama = tmp_path / "photo.png", tmp_path / "panorama.png"
    Image.fromarray(gradient_image(36, 48)).save(photo)
    Image.fromarray(gradient_image(40, 320, seed=1)).save(panorama)

    def show(path: Path) -> None:
        with qtbot.waitSignal(window.resultShown, timeout=WAIT_MS):
            window.open_image(path)
        qtbot.wait(50)

    show(photo)
    assert window.grid.layout_plan.mode == "grid"
    for key in ("input", "scores-32s", "mask-8s"):
        viewport = window.panels[key].view.viewport().size()
        assert abs(viewport.width() / viewport.height() - 48 / 36) < 0.05, key
    assert window.link.scale * 48 >= 0.95 * window.panels["input"].view.viewport().width()  # fills its panel
    window.info.set_lines([f"line {n} of a long info text" for n in range(60)])
    tall = window.grid.layout_plan.cell[1]
    window.resize(1280, 560)  # a short window: the info panel's text must not stretch its row
    qtbot.waitUntil(lambda: window.grid.layout_plan.cell[1] < tall, timeout=WAIT_MS)
    qtbot.wait(50)
    heights = {panel.view.viewport().height() for panel in window.panels.values() if panel.isVisible()}
    assert max(heights) - min(heights) <= 2 and max(heights) <= window.grid.layout_plan.cell[1] + 1
    window.resize(1280, 800)

    show(panorama)
    assert window.grid.layout_plan.mode == "rows"
    assert window.grid.scroll_area.verticalScrollBar().maximum() > 0
    view = window.panels["mask-8s"].view.viewport()
    assert view.width() > 0.8 * window.grid.width()
    assert window.link.scale * 320 == pytest.approx(view.width(), rel=0.05)
    assert window.zoom_label.text() == f"fit {window.link.scale:.0%}"
