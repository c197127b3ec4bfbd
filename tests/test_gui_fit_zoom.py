"""Pictures shown smaller than they are (the fit zoom of a large photo): thin lines stay continuous, so a class
outline — Pedestrian's dark olive over dark clothing included — reads as a line, not as dashes (issue 22)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QTransform
from pytestqt.qtbot import QtBot

from fcn_viewer.classes import CAMVID_CLASSES, CAMVID_PALETTE
from fcn_viewer.gui.panels import PanelView, rgb_from_pixmap
from fcn_viewer.render import blend, colorize, outline
from fcn_viewer.view.panel_content import OUTLINE_WIDTH

PEDESTRIAN, ROAD = CAMVID_CLASSES.index("Pedestrian"), CAMVID_CLASSES.index("Road")
DARK_CLOTHING = 20  # grey level of the photo
FIT = 0.56  # the Stages tab's fit zoom of a 480×360 CamVid photo in a 1280×800 window


def _shown(qtbot: QtBot, pixels: np.ndarray, scale: float) -> np.ndarray:
    """``pixels`` as a panel draws them at ``scale`` (screen pixels per image pixel), as luma."""
    view = PanelView()
    qtbot.addWidget(view)
    height, width = pixels.shape[:2]
    view.resize(int(width * scale) + 8, int(height * scale) + 8)
    view.set_pixels(pixels, (height, width))
    view.setTransform(QTransform.fromScale(scale, scale))
    view.centerOn(width / 2, height / 2)
    view.show()
    qtbot.waitExposed(view)
    drawn = rgb_from_pixmap(view.viewport().grab()).astype(np.float32)
    return drawn @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def test_a_one_pixel_line_shown_at_half_size_is_kept_not_skipped(qtbot: QtBot) -> None:
    pixels = np.zeros((200, 200, 3), np.uint8)
    pixels[101, :] = 255  # an odd row: nearest neighbour at 50 % keeps the even rows only
    pixels[:, 51] = 255
    luma = _shown(qtbot, pixels, 0.5)
    assert luma[:, 10:90].max(axis=1).max() > 60 and luma[10:90, :].max(axis=0).max() > 60


def test_a_pedestrian_outline_over_dark_clothing_is_continuous_at_fit_zoom(qtbot: QtBot) -> None:
    height, width = 360, 480
    rows, columns = np.mgrid[0:height, 0:width]
    mask = np.full((height, width), ROAD, np.uint8)
    mask[(columns - 240) ** 2 / 90**2 + (rows - 180) ** 2 / 140**2 < 1] = PEDESTRIAN  # a tall figure, edges at all angles
    photo = np.full((height, width, 3), DARK_CLOTHING, np.uint8)
    edges, edge_colors = outline(mask, CAMVID_PALETTE, OUTLINE_WIDTH)  # as render_panel draws an outlined mask
    alpha = np.where(edges, 1.0, 0.6).astype(np.float32)
    pixels = blend(photo, np.where(edges[:, :, None], edge_colors, colorize(mask, CAMVID_PALETTE)), alpha)
    luma = _shown(qtbot, pixels, FIT)
    inside = luma[int(180 * FIT), int(240 * FIT)]
    assert inside < 60  # the fill alone hardly shows on dark clothing: the outline has to
    for row in range(int(60 * FIT), int(300 * FIT)):  # each screen row crosses the left edge of the figure
        half = 90 * np.sqrt(max(0.0, 1 - ((row / FIT - 180) / 140) ** 2))
        left = int((240 - half) * FIT)
        assert luma[row, max(left - 3, 0): left + 4].max() > 110, f"row {row}: the outline breaks off"


@pytest.mark.parametrize("scale", [1.0, 4.0])
def test_magnified_pictures_keep_sharp_square_cells(qtbot: QtBot, scale: float) -> None:
    pixels = np.zeros((20, 20, 3), np.uint8)
    pixels[::2, ::2] = 255
    luma = _shown(qtbot, pixels, scale)
    assert set(np.unique(luma.round())) <= {0.0, 38.0, 255.0}  # black, white and the view's background: no blending
