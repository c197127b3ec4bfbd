"""The Lessons tab offscreen on a real classroom service with a tiny paper FCN-8s: each lesson's slide is drawn, a
click on the photo moves the classifier's cell, and the switch shows the mask with bilinear kernels."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt
from pytestqt.qtbot import QtBot

from fcn_viewer.gui.lessons_view import LessonsView, row_layout
from fcn_viewer.gui.panels import rgb_from_pixmap
from fcn_viewer.gui.tab import TabFrame
from fcn_viewer.render import colorize
from tests.gui_helpers import Teaching
from tests.test_lesson_jobs import shown

WAIT_MS = 30_000


def test_the_lessons_tab_draws_each_lesson_and_forwards_a_click_and_the_switch(qtbot: QtBot,
                                                                                 teaching: Teaching) -> None:
    segmenter, result, _ = shown()
    teaching.use(segmenter)
    view = LessonsView(teaching.classroom.lessons)
    qtbot.addWidget(view)
    view.resize(1280, 760)
    view.show()
    lessons = teaching.classroom.lessons
    view.set_frame(TabFrame(result, segmenter.meta.palette, 0.6))
    qtbot.waitUntil(lambda: lessons.shown is not None, timeout=WAIT_MS)
    done = lessons.shown
    assert done is not None and done.request.lesson == "classifier" and done.window is not None
    assert np.array_equal(rgb_from_pixmap(view.slide.view.pixmap_item.pixmap()), done.slide)
    assert view.window_rect.isVisible() and view.window_rect.rect().width() == done.window.size
    assert "Classifier → FCN: conv7 cell" in view.status.text() and ".." not in view.status.text()
    for panel, (height, width) in ((view.photo, result.image_size), (view.slide, done.slide.shape[:2])):
        shown_at = panel.view.size()  # each picture at its own aspect ratio: no empty band beside or under it
        assert abs(shown_at.width() / shown_at.height() - width / height) < 0.03

    where = view.photo.view.mapFromScene(QPointF(70.5, 40.5))
    qtbot.mouseClick(view.photo.view.viewport(), Qt.MouseButton.LeftButton, pos=where)
    qtbot.waitUntil(lambda: lessons.shown is not None and lessons.shown.request.cell == lessons.cell
                    and lessons.cell is not None, timeout=WAIT_MS)
    assert lessons.shown.sliding is done.sliding  # type: ignore[union-attr]  # the image's crop run, reused

    view.buttons.button(2).click()  # learned vs bilinear upsampling
    qtbot.waitUntil(lambda: lessons.shown is not None and lessons.shown.upsampling is not None, timeout=WAIT_MS)
    upsampling = lessons.shown.upsampling  # type: ignore[union-attr]
    assert view.bilinear.isVisible() and not view.window_rect.isVisible()
    palette = segmenter.meta.palette
    photo = view.photo.view
    assert np.array_equal(rgb_from_pixmap(photo.pixmap_item.pixmap()), colorize(upsampling.learned_mask, palette))
    qtbot.keyClick(photo, Qt.Key.Key_B)
    assert view.bilinear.isChecked()
    assert np.array_equal(rgb_from_pixmap(photo.pixmap_item.pixmap()), colorize(upsampling.bilinear_mask, palette))
    assert "bilinear kernels" in view.photo.title.toolTip()


def test_the_screenshot_lesson_option_needs_the_lessons_tab(capsys) -> None:  # type: ignore[no-untyped-def]
    from fcn_viewer.cli.main import main

    assert main(["gui", "--screenshot", "x.png", "--tab", "steps", "--lesson", "commute"]) == 2
    assert "--lesson does nothing without --tab lessons" in capsys.readouterr().err


def test_side_by_side_pictures_keep_their_aspect_as_large_as_fits_and_centred() -> None:
    photo, slide = (360, 480), (1080, 1920)
    assert row_layout([photo, slide], (1000, 900), title=20, spacing=8) == [(1, 0, 424, 338), (433, 0, 565, 338)]
    assert row_layout([photo, slide], (3000, 300), title=20, spacing=8) == [(1061, 0, 373, 300), (1442, 0, 497, 300)]
