"""The contributions tab, offscreen with a tiny random-weight net: term maps, skip switches, variant scores, hover."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF
from pytestqt.qtbot import QtBot

from fcn_viewer.gui.contributions_view import VARIANT_COLUMNS, ContributionsView
from fcn_viewer.gui.panels import rgb_from_pixmap
from fcn_viewer.gui.tab import TabFrame
from fcn_viewer.inference import Segmenter
from fcn_viewer.render import colorize
from fcn_viewer.teaching.contributions import FLIP_COLORS, SKIP_TITLES, split_logits
from fcn_viewer.teaching.ground_truth import score_mask
from fcn_viewer.teaching.image_analysis import GroundTruth
from fcn_viewer.view.panel_content import ViewResult
from fcn_viewer.weights.loader import load_weights_file
from tests.gui_helpers import Teaching, fill_share
from tests.helpers import gradient_image

WAIT_MS = 20_000


@pytest.fixture
def shown(qtbot: QtBot, tiny_weights: Path, tmp_path: Path, teaching: Teaching):  # type: ignore[no-untyped-def]
    loaded = load_weights_file(tiny_weights)
    image = gradient_image(45, 61)
    segmentation = Segmenter(loaded, "cpu").segment(image)
    result = ViewResult.build(tmp_path / "photo.png", segmentation, loaded.meta, 0.0, "cpu")
    label = np.random.default_rng(1).integers(0, 12, size=(45, 61)).astype(np.uint8)
    Image.fromarray(label).save(tmp_path / "label.png")
    truth = GroundTruth(tmp_path / "label.png", 11, 11, 2.0)
    view = ContributionsView(teaching.classroom.contributions)
    qtbot.addWidget(view)
    view.resize(1400, 800)
    view.show()
    view.set_frame(TabFrame(result, loaded.meta.palette, 0.6, truth))
    qtbot.waitUntil(lambda: view.lesson.shown is not None, timeout=WAIT_MS)
    yield view, result, label


def test_the_tab_shows_the_terms_and_scores_every_switch_setting(qtbot: QtBot, shown) -> None:  # type: ignore[no-untyped-def]
    view, result, label = shown
    split = split_logits(result.segmentation.outputs)
    assert all(panel.isVisible() for panel in view.terms.values())
    assert view.table.rowCount() == 5  # the four switch settings, then the 32s stage beside conv7 only
    titles = [view.table.verticalHeaderItem(row).text() for row in range(4)]
    assert titles[0] == "▶ all skips on" and "without pool3 skip" in titles[2]
    expected = score_mask(split.mask(["score_pool3"]), label, 11, 11)
    assert view.table.item(2, 2).text() == f"{100 * expected.mean_iou:.1f} %"
    palette = result.meta.palette
    assert np.array_equal(rgb_from_pixmap(view.mask_panel.view.pixmap_item.pixmap()), colorize(split.mask(), palette))
    view.switches["score_pool3"].setChecked(False)
    assert np.array_equal(rgb_from_pixmap(view.mask_panel.view.pixmap_item.pixmap()),
                          colorize(split.mask(["score_pool3"]), palette))
    changed = int((split.mask(["score_pool3"]) != split.mask()).sum())
    assert f"{changed:,} px changed" in view.mask_panel.title.toolTip()
    assert view.table.verticalHeaderItem(2).text().startswith("▶")


def test_hovering_reads_out_the_terms_and_their_sum(qtbot: QtBot, shown) -> None:  # type: ignore[no-untyped-def]
    view, result, _ = shown
    split = split_logits(result.segmentation.outputs)
    view._hover(QPointF(20.5, 10.5))
    text = view.readout.text()
    cls = int(split.mask()[10, 20])
    assert f"pixel (20, 10) · {result.meta.classes[cls]}" in text
    assert text.split("= ")[-1].strip() == f"{float(split.logits[cls, 10, 20]):+.2f}"


def test_choosing_a_class_redraws_the_maps_for_it(qtbot: QtBot, shown) -> None:  # type: ignore[no-untyped-def]
    view, result, _ = shown
    view.classes.setCurrentIndex(3)  # class 2
    qtbot.waitUntil(lambda: view.lesson.shown.pictures.class_index == 2, timeout=WAIT_MS)
    split = split_logits(result.segmentation.outputs)
    np.testing.assert_allclose(view.lesson.shown.pictures.maps["score_pool4"], split.terms["score_pool4"][2].numpy())
    assert result.meta.classes[2] in view.terms["score_fr"].title.toolTip()


def test_a_click_marks_the_feeding_cells_in_their_panels_and_on_the_photo(qtbot: QtBot, shown) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QGraphicsRectItem

    from fcn_viewer.gui.fields_view import ReceptiveFieldView
    from fcn_viewer.teaching.receptive_field import feeding_cells

    _, result, _ = shown
    view = ReceptiveFieldView()
    qtbot.addWidget(view)
    view.resize(1400, 800)
    view.show()
    view.set_frame(TabFrame(result, result.meta.palette, 0.6))
    qtbot.wait(50)
    panel = view.maps["fuse_pool3"].view
    where = panel.mapFromScene(QPointF(30.5, 20.5))
    qtbot.mouseClick(panel.viewport(), Qt.MouseButton.LeftButton, pos=where)
    row, column = view.clicked_pixel
    assert abs(row - 20) <= 1 and abs(column - 30) <= 1
    expected = feeding_cells(result.segmentation.outputs, row, column)
    assert view.cells == expected
    for name, (rows, columns) in expected.items():
        marks = [item for item in view.maps[name].view.scene().items() if isinstance(item, QGraphicsRectItem)]
        assert len(marks) == len(rows) * len(columns)
    assert "pool3-fused" in view.info.text() and "receptive field" in view.info.text()
    photo_marks = [item for item in view.photo.view.scene().items() if isinstance(item, QGraphicsRectItem)]
    footprints = sum(len(r) * len(c) for r, c in expected.values())
    assert len(photo_marks) == footprints + 2 * len(expected)  # + one field and one label plate per map


def test_a_label_of_the_wrong_size_leaves_the_split_and_says_why(qtbot: QtBot, tiny_weights: Path, tmp_path: Path,
                                                                 teaching: Teaching) -> None:
    loaded = load_weights_file(tiny_weights)
    segmentation = Segmenter(loaded, "cpu").segment(gradient_image(45, 61))
    result = ViewResult.build(tmp_path / "photo.png", segmentation, loaded.meta, 0.0, "cpu")
    Image.fromarray(np.zeros((10, 10), dtype=np.uint8)).save(tmp_path / "small.png")
    view = ContributionsView(teaching.classroom.contributions)
    qtbot.addWidget(view)
    view.show()
    view.set_frame(TabFrame(result, loaded.meta.palette, 0.6, GroundTruth(tmp_path / "small.png", 11, 11, 2.0)))
    qtbot.waitUntil(lambda: view.lesson.shown is not None, timeout=WAIT_MS)
    assert "No scores: " in view.status.text() and "small.png" in view.status.text()
    assert view.table.item(0, 1).text() == "no label" and not view.drops.isVisible()  # no scores: nothing to say
    assert all(panel.isVisible() for panel in view.terms.values())
    view.shutdown()


def test_a_label_given_while_the_tab_is_hidden_is_scored_when_it_is_shown(
    qtbot: QtBot, tiny_weights: Path, tmp_path: Path, teaching: Teaching
) -> None:
    loaded = load_weights_file(tiny_weights)
    segmentation = Segmenter(loaded, "cpu").segment(gradient_image(45, 61))
    result = ViewResult.build(tmp_path / "photo.png", segmentation, loaded.meta, 0.0, "cpu")
    view = ContributionsView(teaching.classroom.contributions)
    qtbot.addWidget(view)
    view.show()
    view.set_frame(TabFrame(result, loaded.meta.palette, 0.6))
    qtbot.waitUntil(lambda: view.lesson.shown is not None, timeout=WAIT_MS)
    assert view.table.item(0, 1).text() == "no label"
    view.hide()  # as when Open Label... shows the Ground Truth tab
    label = split_logits(segmentation.outputs).mask()  # the net's own mask: every pixel right
    Image.fromarray(label).save(tmp_path / "label.png")
    view.set_frame(TabFrame(result, loaded.meta.palette, 0.6, GroundTruth(tmp_path / "label.png", 11, 11, 2.0)))
    view.show()
    qtbot.waitUntil(lambda: view.table.item(0, 1).text() == "100.0 %", timeout=WAIT_MS)
    view.shutdown()


def test_the_window_hosts_the_new_tabs_and_fills_them_for_the_open_image(
    qtbot: QtBot, tmp_path: Path, tiny_weights: Path
) -> None:
    from tests.test_gui import WAIT_MS as WINDOW_WAIT_MS
    from tests.test_gui import load, make_window, open_image

    window = make_window(qtbot, tmp_path / "settings.ini")
    load(qtbot, window, tiny_weights)
    path = tmp_path / "a.png"
    Image.fromarray(gradient_image(40, 56)).save(path)
    open_image(qtbot, window, path)
    classroom = window.classroom
    titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert {"Contributions", "Receptive Fields", "Sequence"} <= set(titles)
    classroom.show_view(classroom.contributions)
    qtbot.waitUntil(lambda: classroom.model.contributions.shown is not None, timeout=WINDOW_WAIT_MS)
    assert classroom.model.contributions.shown.request.result.path == path
    classroom.show_view(classroom.fields)
    classroom.fields.click_pixel(20, 30)
    assert set(classroom.fields.cells) == {"score_fr", "fuse_pool4", "fuse_pool3"}
    shortcuts = {action.shortcut().toString() for action in classroom.menu.actions()}
    assert {"Ctrl+5", "Ctrl+6", "Ctrl+7"} <= shortcuts


def test_panels_take_the_image_aspect_and_the_flips_have_a_key(qtbot: QtBot, shown) -> None:  # type: ignore[no-untyped-def]
    view, result, _ = shown
    view.resize(1070, 690)  # the tab's size in a 1280×800 window
    qtbot.wait(50)
    controls = view.layout().itemAt(0).minimumSize().width()  # the row of controls, the tab's widest
    assert controls <= 900  # 958 px with a longer scale text widened a 1280-px window (the bundled net) by 7 px
    view.link.fit()
    size = result.image.shape[:2]
    for panel in [view.photo, *view.terms.values(), view.mask_panel]:
        share = fill_share(panel.view, size, view.link.scale)
        assert share > 0.9, (panel.key, share, panel.view.viewport().size(), view.grid.layout_plan)  # no dark band
    key = view.flip_key.text()
    for name, color in FLIP_COLORS.items():
        assert f"rgb{tuple(color)}" in key and SKIP_TITLES[name] in key
    assert view.flip_key.isVisible()
    header = view.table.horizontalHeader()
    metrics = header.fontMetrics()
    for column, title in enumerate(VARIANT_COLUMNS):
        assert header.sectionSize(column) >= metrics.horizontalAdvance(title), title  # "changed px" not clipped
    assert view.table.width() >= view.table.verticalHeader().width() + header.length()


def test_a_switched_off_skip_greys_and_marks_its_term_panel(qtbot: QtBot, shown) -> None:  # type: ignore[no-untyped-def]
    view, _, _ = shown
    panel = view.terms["score_pool4"]

    drawn = rgb_from_pixmap(panel.view.viewport().grab()).astype(int)
    assert "OFF" not in panel.title.text()
    view.switches["score_pool4"].setChecked(False)
    grey = rgb_from_pixmap(panel.view.viewport().grab()).astype(int)
    assert panel.title.text().startswith("OFF") and not np.array_equal(grey, drawn)
    assert (np.abs(grey - grey.mean(axis=2, keepdims=True)) <= 2).all()  # no colour left: grey all over
    cover = view.off_covers["score_pool4"]
    assert cover.isVisible() and "OFF" in cover.text() and cover.geometry() == panel.view.geometry()
    assert not view.off_covers["score_pool3"].isVisible()
    shot = rgb_from_pixmap(panel.grab()).astype(int)  # as drawn on screen: the map under its dimming cover
    assert shot[panel.view.geometry().center().y()].mean() < 200  # a near-white map no longer reads as white
    assert "OFF" not in view.terms["score_pool3"].title.text()
    view.switches["score_pool4"].setChecked(True)
    assert "OFF" not in panel.title.text()
    assert np.array_equal(rgb_from_pixmap(panel.view.viewport().grab()).astype(int), drawn)
    assert not cover.isVisible()


def test_a_skip_that_lowers_a_score_on_the_image_is_said_beside_the_table(
    qtbot: QtBot, tiny_weights: Path, tmp_path: Path, teaching: Teaching
) -> None:
    loaded = load_weights_file(tiny_weights)
    segmentation = Segmenter(loaded, "cpu").segment(gradient_image(45, 61))
    result = ViewResult.build(tmp_path / "photo.png", segmentation, loaded.meta, 0.0, "cpu")
    split = split_logits(segmentation.outputs)
    label = split.mask(["score_pool4", "score_pool3"])  # conv7 alone is exactly right: the skips can only lower
    assert (split.mask() != label).any()
    Image.fromarray(label).save(tmp_path / "label.png")
    view = ContributionsView(teaching.classroom.contributions)
    qtbot.addWidget(view)
    view.show()
    view.set_frame(TabFrame(result, loaded.meta.palette, 0.6, GroundTruth(tmp_path / "label.png", 11, 11, 2.0)))
    qtbot.waitUntil(lambda: view.lesson.shown is not None, timeout=WAIT_MS)
    all_on = score_mask(split.mask(), label, 11, 11)
    text = view.drops.text()
    assert view.drops.isVisible()
    qtbot.waitUntil(lambda: view.drops.geometry().left() > view.table.geometry().right())  # laid out beside it
    assert (f"adding the pool4 and pool3 skips to conv7 lowers pixel accuracy from 100.0 % to "
            f"{100 * all_on.pixel_accuracy:.1f} %") in text
    assert "not on every photo" in text
    view.clear("gone")
    assert not view.drops.isVisible()
    view.shutdown()


def test_one_key_puts_each_term_on_its_own_scale_and_back(qtbot: QtBot, shown) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import Qt

    view, _, _ = shown
    assert view.lesson.shown.pictures.scale == "shared" and "all terms" in view.bar_text.text()
    view.terms["score_fr"].view.setFocus()
    qtbot.keyClick(view.terms["score_fr"].view, Qt.Key.Key_T)
    assert view.own_scale.isChecked()
    qtbot.waitUntil(lambda: view.lesson.shown.pictures.scale == "own", timeout=WAIT_MS)
    pictures = view.lesson.shown.pictures
    shown_pool3 = rgb_from_pixmap(view.terms["score_pool3"].view.pixmap_item.pixmap())
    np.testing.assert_array_equal(shown_pool3, pictures.pictures["score_pool3"])
    assert f"own scale ±{pictures.limit_of('score_pool3'):.2f}" in view.terms["score_pool3"].title.toolTip()
    qtbot.keyClick(view.terms["score_fr"].view, Qt.Key.Key_T)
    qtbot.waitUntil(lambda: view.lesson.shown.pictures.scale == "shared", timeout=WAIT_MS)
    assert "all terms" in view.bar_text.text()
