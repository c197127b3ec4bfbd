"""Teaching mode in the viewer, offscreen with tiny random-weight models: step-through, compare, ground truth,
dataset table and slide export."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QRectF, Qt
from pytestqt.qtbot import QtBot

from fcn_viewer.cli.main import main
from fcn_viewer.data import SegmentationFolder
from fcn_viewer.evaluation import evaluate_model
from fcn_viewer.gui.main_window import MainWindow
from fcn_viewer.gui.panels import PanelView, rgb_from_pixmap
from fcn_viewer.gui.worker import load_source
from fcn_viewer.render import overlay
from fcn_viewer.teaching.compare import NEAR_COLOR
from fcn_viewer.teaching.ground_truth import ERROR_COLOR, label_picture, percent
from fcn_viewer.teaching.image_analysis import ImageAnalysis
from fcn_viewer.teaching.step_through import step_pixels
from fcn_viewer.view.panel_content import resolve_palette
from fcn_viewer.weights.loader import RegistrySource, load_weights_file
from fcn_viewer.weights.native import save_native
from fcn_viewer.weights.registry import entry
from tests.gui_helpers import (
    WAIT_MS,
    fill_share,
    load,
    make_window,
    open_image,
    save_tiny,
    segment_independently,
)
from tests.helpers import gradient_image, random_model, tiny_compact_config, tiny_meta
from tests.test_evaluate import make_dataset

pytestmark = pytest.mark.usefixtures("isolated")

METRICS = ("pixel_accuracy", "mean_iou", "boundary_f1")


def open_and_analyse(qtbot: QtBot, window: MainWindow, path: Path, mode: str = "stages") -> ImageAnalysis:
    if not (window.classroom.compare.isVisible() or window.classroom.truth.isVisible()):
        window.classroom.show_view(window.classroom.compare)  # the analysis runs while a tab that draws it is shown
    with qtbot.waitSignal(
        window.classroom.analysisShown, timeout=WAIT_MS, check_params_cb=lambda a: a.path == path and a.mode == mode
    ) as blocker:
        window.open_image(path)
    return blocker.args[0]


def loaded_with_a_photo(qtbot: QtBot, window: MainWindow, weights: Path, folder: Path) -> Path:
    """Loads ``weights`` into the window; a 56×40 photo without a label, saved in ``folder``."""
    photo = folder / "photo.png"
    Image.fromarray(gradient_image(40, 56)).save(photo)
    load(qtbot, window, weights)
    return photo


def pixels(panel: object) -> np.ndarray:
    return rgb_from_pixmap(panel.view.pixmap_item.pixmap())  # type: ignore[attr-defined]


def walk(qtbot: QtBot, window: MainWindow) -> list[tuple[str, tuple[int, ...], object]]:
    """Clicks Next through every step; per step its tensor, the drawn map's size and the crop rectangle shown."""
    view = window.classroom.steps
    seen = []
    for number in range(len(view.steps)):
        step = view.step
        assert step is not None and view.index == number
        assert view.heading.text() == f"Step {number + 1} of {len(view.steps)}:  {step.heading}"
        assert view.caption.text() == step.caption
        assert view.back.isEnabled() == (number > 0) and view.next.isEnabled() == (number < len(view.steps) - 1)
        assert view.strip_buttons.checkedId() == number
        rect = view.crop_rect.rect().getRect() if view.crop_rect.isVisible() else None
        seen.append((step.tensor, pixels(view).shape[:2], rect))
        if view.next.isEnabled():
            qtbot.mouseClick(view.next, Qt.MouseButton.LeftButton)
    return seen


def test_the_step_through_walks_a_paper_fcn8s_with_its_crops(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    load(qtbot, window, save_tiny(tmp_path / "paper.safetensors", "fcn8s", paper=True, classes=5))
    photo = tmp_path / "photo.png"
    Image.fromarray(gradient_image(500, 500)).save(photo)
    open_image(qtbot, window, photo)
    window.classroom.menu.actions()[0].trigger()  # Teaching ▸ Fusion Step-Through
    view = window.classroom.steps
    assert window.tabs.currentWidget() is view and view.isVisible()
    assert walk(qtbot, window) == [
        ("score_fr", (16, 16), None), ("upscore2", (34, 34), None),
        ("score_pool4", (44, 44), (5, 5, 34, 34)), ("score_pool4c", (34, 34), None), ("fuse_pool4", (34, 34), None),
        ("upscore_pool4", (70, 70), None), ("score_pool3", (88, 88), (9, 9, 70, 70)),
        ("score_pool3c", (70, 70), None), ("fuse_pool3", (70, 70), None), ("upscore8", (568, 568), None),
        ("upscore8", (568, 568), (31, 31, 500, 500)), ("logits_8s", (500, 500), None),
    ]
    qtbot.mouseClick(view.back, Qt.MouseButton.LeftButton)
    assert view.index == 10 and "offset 31" in view.caption.text() and view.outside.isVisible()
    view.strip_buttons.button(2).click()
    assert view.index == 2 and view.crop_rect.rect() == QRectF(5, 5, 34, 34)
    view.display.setCurrentIndex(view.display.findData("class-score"))
    view.chosen_class.setCurrentIndex(1)
    assert view.chosen_class.isEnabled() and "score of Building" in view.caption.text()


def test_the_default_model_shows_a_visible_crop_at_each_crop_step(qtbot: QtBot, window: MainWindow) -> None:
    """The bundled camvid-fcn8s on the default sample: each of the three crop steps cuts a border off the map."""
    bundled = Path(__file__).resolve().parents[1] / "fcn_viewer" / "bundled"
    load(qtbot, window, bundled / "models" / "camvid-fcn8s.safetensors")
    open_image(qtbot, window, sorted((bundled / "samples").glob("*.jpg"))[0])
    window.classroom.menu.actions()[0].trigger()  # Teaching ▸ Fusion Step-Through
    crops = [(tensor, size, rect) for tensor, size, rect in walk(qtbot, window) if rect is not None]
    assert [(tensor, rect[:2]) for tensor, _, rect in crops] == [  # type: ignore[index]
        ("score_pool4", (5, 5)), ("score_pool3", (9, 9)), ("upscore8", (31, 31))]
    for _, (rows, columns), (_, _, width, height) in crops:  # type: ignore[misc]
        assert width < columns - 5 and height < rows - 5  # a visible band is cut off on both axes


def test_a_compact_net_crops_at_offset_zero_and_the_screenshot_can_show_a_step(
    qtbot: QtBot, window: MainWindow, tiny_weights: Path, tmp_path: Path
) -> None:
    load(qtbot, window, tiny_weights)
    photo = tmp_path / "photo.png"
    Image.fromarray(gradient_image(40, 56)).save(photo)
    open_image(qtbot, window, photo)
    window.classroom.show_step(1)
    seen = walk(qtbot, window)
    # (x, y, width, height) on the larger map: upscore2 4×4 → 3×4, upscore_pool4 6×8 → 5×7, upscore8 as is
    assert [rect for _, _, rect in seen if rect is not None] == [(0, 0, 4, 3), (0, 0, 7, 5), (0, 0, 56, 40)]
    assert [seen[2][:2], seen[6][:2]] == [("upscore2", (4, 4)), ("upscore_pool4", (6, 8))]
    shot = tmp_path / "step.png"
    argv = ["gui", str(photo), "--weights", str(tiny_weights), "--screenshot", str(shot), "--size", "900x600",
            "--teach-step", "3"]
    assert main(argv) == 0 and Image.open(shot).size[0] >= 900


def test_changed_pixels_and_ground_truth_scores_equal_a_direct_computation_and_evaluate(
    qtbot: QtBot, window: MainWindow, tiny_weights: Path, tmp_path: Path
) -> None:
    data = make_dataset(tmp_path / "camvid", count=1)
    photo = data / "val" / "frame0.png"
    load(qtbot, window, tiny_weights)
    analysis = open_and_analyse(qtbot, window, photo)
    classroom = window.classroom
    assert not classroom.compare.toggle.buttons["separate"].isEnabled()  # no family for this model
    expected = segment_independently(tiny_weights, photo)
    for coarse in ("32s", "16s"):
        changed = expected.mask("8s") != expected.mask(coarse)
        assert analysis.changes[coarse].count == int(changed.sum())
        stats = classroom.compare.change_stats[coarse].text()
        assert f"{int(changed.sum()):,} px changed ({changed.mean():.1%})" in stats
        shown = pixels(classroom.compare.changes[coarse])
        assert ((shown == NEAR_COLOR).all(axis=2) <= changed).all()

    scores = evaluate_model(load_weights_file(tiny_weights), SegmentationFolder(data, "val"), "cpu")
    table = classroom.truth.table
    assert table.rowCount() == 3
    for row, stage in enumerate(("32s", "16s", "8s")):
        assert table.verticalHeaderItem(row).text().startswith(stage)
        assert [table.item(row, c).text() for c in range(3)] == [  # type: ignore[union-attr]
            percent(scores[stage][k]) for k in METRICS
        ]
        assert analysis.truth[stage].mean_iou == pytest.approx(scores[stage]["mean_iou"])
    label = np.array(Image.open(data / "valannot" / "frame0.png"))
    wrong = (label != 11) & (expected.mask("8s") != label)
    np.testing.assert_array_equal((pixels(classroom.truth.errors["8s"]) == ERROR_COLOR).all(axis=2), wrong)
    assert str(data / "valannot" / "frame0.png") in classroom.truth.label_path.text()

    slide = tmp_path / "slide.png"
    window.ask_save_path = lambda title, suggested, file_filter: slide  # type: ignore[method-assign]
    classroom.export_slide()
    assert Image.open(slide).size == (1920, 1080) and "slide.png" in window.statusBar().currentMessage()


def test_an_image_opened_on_the_stage_panels_is_analysed_when_a_tab_that_draws_it_is_shown(
    qtbot: QtBot, window: MainWindow, tiny_weights: Path, tmp_path: Path
) -> None:
    photo = loaded_with_a_photo(qtbot, window, tiny_weights, tmp_path)
    analysed: list[object] = []
    window.classroom.analysisShown.connect(analysed.append)
    open_image(qtbot, window, photo)
    qtbot.wait(200)
    assert window.tabs.currentWidget() is window.grid and analysed == [] and window.classroom.model.analysis is None
    with qtbot.waitSignal(window.classroom.analysisShown, timeout=WAIT_MS) as blocker:
        window.classroom.show_view(window.classroom.truth)
    assert blocker.args[0].path == photo


def test_hidden_teaching_tabs_are_redrawn_only_when_shown_and_then_in_the_current_colours(
    qtbot: QtBot, window: MainWindow, tiny_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo = make_dataset(tmp_path / "camvid", count=1) / "val" / "frame0.png"
    load(qtbot, window, tiny_weights)
    analysis = open_and_analyse(qtbot, window, photo)
    window.tabs.setCurrentWidget(window.grid)  # back on the stage panels: the teaching tabs hidden
    classroom, result = window.classroom, window.shown_result
    assert result is not None and result.meta is not None and window.tabs.currentIndex() == 0
    drawn: list[PanelView] = []
    set_pixels = PanelView.set_pixels
    monkeypatch.setattr(PanelView, "set_pixels", lambda view, *args: drawn.append(view) or set_pixels(view, *args))

    def drawn_in(tab: object) -> list[PanelView]:
        return [view for view in drawn if tab.isAncestorOf(view)]  # type: ignore[attr-defined]

    window.state.set_opacity(0.25)
    assert drawn and all(drawn_in(tab) == [] for tab in (classroom.steps, classroom.compare, classroom.truth))

    classroom.show_view(classroom.compare)  # shown: re-blended at the opacity chosen while it was hidden
    palette = resolve_palette("model", result.meta)
    assert drawn_in(classroom.compare) == [classroom.compare.masks[s].view for s in ("32s", "16s", "8s")]
    for stage, mask in analysis.masks.items():
        expected = overlay(result.image, mask, palette, 0.25)
        np.testing.assert_array_equal(pixels(classroom.compare.masks[stage]), expected)
    drawn.clear()
    classroom.show_view(classroom.compare)  # already up to date: nothing to draw
    assert drawn == []
    window.state.set_palette("colorblind")  # the visible tab follows at once, the hidden ones wait
    assert drawn_in(classroom.compare) and drawn_in(classroom.steps) == drawn_in(classroom.truth) == []

    palette = resolve_palette("colorblind", result.meta)
    classroom.show_view(classroom.truth)
    assert drawn_in(classroom.truth) == [classroom.truth.truth.view]
    assert analysis.label is not None
    colored = label_picture(analysis.label, palette, len(result.meta.classes), 11)
    np.testing.assert_array_equal(pixels(classroom.truth.truth), colored)
    steps = classroom.steps
    classroom.show_step(len(steps.steps))  # the mask, blended over the photo
    assert steps.step is not None and steps.step.kind == "mask"
    arrays = result.segmentation.arrays()  # type: ignore[union-attr]
    drawn_step = step_pixels(steps.step, arrays[steps.step.tensor], result.image, palette, opacity=0.25)
    np.testing.assert_array_equal(pixels(steps), drawn_step)


def test_each_tab_in_the_classroom_list_is_a_window_tab_and_a_teaching_menu_entry(window: MainWindow) -> None:
    classroom = window.classroom
    titles = [window.tabs.tabText(index) for index in range(window.tabs.count())]
    assert titles == ["Stages", *(tab.title for tab in classroom.tabs)]
    for tab, action in zip(classroom.tabs, classroom.menu.actions(), strict=False):
        assert (action.text(), action.shortcut().toString()) == (tab.menu_title, tab.shortcut)
        action.trigger()
        assert window.tabs.currentWidget() is tab.widget()


def test_a_picked_label_is_used_for_an_image_without_one(
    qtbot: QtBot, window: MainWindow, tiny_weights: Path, tmp_path: Path
) -> None:
    photo = loaded_with_a_photo(qtbot, window, tiny_weights, tmp_path)
    analysis = open_and_analyse(qtbot, window, photo)
    assert analysis.truth == {} and "No label found" in window.classroom.truth.status.text()
    label = tmp_path / "mine.png"
    Image.fromarray(np.full((40, 56), 3, np.uint8), mode="L").save(label)
    window.classroom.ask_label_file = lambda: label  # type: ignore[method-assign]
    with qtbot.waitSignal(window.classroom.analysisShown, timeout=WAIT_MS):
        window.classroom.pick_label()
    assert window.tabs.currentWidget() is window.classroom.truth
    accuracy = float((segment_independently(tiny_weights, photo).mask("8s") == 3).mean())
    assert window.classroom.truth.table.item(2, 0).text() == percent(accuracy)  # type: ignore[union-attr]


def test_the_toggle_switches_to_the_separately_trained_nets_run_in_the_worker(
    qtbot: QtBot, settings_path: Path, tmp_path: Path
) -> None:
    models = tmp_path / "resources" / "models"  # FCN_VIEWER_RESOURCES points here (see `isolated`)
    for seed, variant in enumerate(("fcn8s", "fcn16s", "fcn32s")):
        config = tiny_compact_config(variant)
        meta = replace(tiny_meta(config, name=f"camvid-{variant}"), title=f"camvid {variant}")
        save_native(models / f"camvid-{variant}.safetensors", random_model(config, seed).state_dict(), meta, half=False)
    threads: list[threading.Thread] = []
    window = make_window(qtbot, settings_path,
                         load=lambda *args: threads.append(threading.current_thread()) or load_source(*args))
    with qtbot.waitSignal(window.modelChanged, timeout=WAIT_MS):
        window.load_model(RegistrySource(entry("camvid-fcn8s")))
    threads.clear()
    photo = tmp_path / "photo.png"
    Image.fromarray(gradient_image(40, 56)).save(photo)
    stages = open_and_analyse(qtbot, window, photo)
    compare = window.classroom.compare
    assert stages.titles == {s: f"{s} stage of camvid-fcn8s" for s in ("32s", "16s", "8s")}
    assert compare.masks["32s"].title.text() == "32s stage of camvid-fcn8s · 11×40×56"

    with qtbot.waitSignal(window.classroom.analysisShown, timeout=WAIT_MS) as blocker:
        compare.toggle.buttons["separate"].click()
    separate: ImageAnalysis = blocker.args[0]
    assert separate.mode == "separate" and window.classroom.truth.toggle.mode == "separate"
    assert separate.titles == {s: f"camvid-fcn{s} (own net)" for s in ("32s", "16s", "8s")}
    assert window.classroom.truth.table.rowCount() == 0  # no label for this photo: nothing scored
    for variant, stage in (("fcn32s", "32s"), ("fcn16s", "16s"), ("fcn8s", "8s")):
        own = segment_independently(models / f"camvid-{variant}.safetensors", photo).mask()
        np.testing.assert_array_equal(separate.masks[stage], own)
    assert not np.array_equal(separate.masks["32s"], stages.masks["32s"])
    assert separate.changes["32s"].count == int((separate.masks["8s"] != separate.masks["32s"]).sum())
    assert threads and all(thread is not threading.main_thread() for thread in threads)
    assert len(threads) == 2  # the 8s net is the viewer's own model: its pass is reused

    with qtbot.waitSignal(window.classroom.analysisShown, timeout=WAIT_MS) as blocker:
        window.classroom.truth.toggle.buttons["stages"].click()
    assert blocker.args[0].mode == "stages" and compare.toggle.mode == "stages"


def test_the_dataset_table_scores_sorts_pins_its_dataset_row_and_opens_images(
    qtbot: QtBot, window: MainWindow, tiny_weights: Path, tmp_path: Path
) -> None:
    data = make_dataset(tmp_path / "camvid", count=3)
    load(qtbot, window, tiny_weights)
    classroom = window.classroom
    classroom.ask_dataset_folder = lambda: data  # type: ignore[method-assign]
    with qtbot.waitSignal(classroom.datasetScored, timeout=WAIT_MS):
        classroom.open_dataset_dialog()
    view = classroom.datasets
    assert classroom.dataset_dock.isVisible() and not view.progress.isVisible()
    assert view.split.currentText() == "val" and "Scored every stage" in view.status.text()
    proxy = view.proxy
    headers = [proxy.headerData(c, Qt.Orientation.Horizontal) for c in range(proxy.columnCount())]
    assert headers == ["image"] + [f"{s} {m}" for s in ("32s", "16s", "8s") for m in ("acc", "mIoU", "BF")]
    assert proxy.rowCount() == 4

    def column(row: int, name: str) -> str:
        return proxy.index(row, headers.index(name)).data()

    expected = evaluate_model(load_weights_file(tiny_weights), SegmentationFolder(data, "val"), "cpu")
    miou = headers.index("8s mIoU")
    view.table.sortByColumn(miou, Qt.SortOrder.AscendingOrder)
    assert column(0, "image") == "dataset (3 images)"
    assert [column(0, f"{s} {m}") for s in ("32s", "8s") for m in ("acc", "mIoU", "BF")] == [
        percent(expected[s][k]) for s in ("32s", "8s") for k in METRICS
    ]
    values = [proxy.index(row, miou).data(Qt.ItemDataRole.UserRole) for row in range(1, 4)]
    assert values == sorted(values)
    header = view.table.horizontalHeader()
    x = header.sectionViewportPosition(miou) + header.sectionSize(miou) // 2
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, 5))
    assert header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder
    descending = [proxy.index(row, miou).data(Qt.ItemDataRole.UserRole) for row in range(1, 4)]
    assert column(0, "image").startswith("dataset") and descending == sorted(values, reverse=True)

    best = data / "val" / column(1, "image")
    rect = view.table.visualRect(proxy.index(1, 0))
    with qtbot.waitSignal(window.resultShown, timeout=WAIT_MS, check_params_cb=lambda r: r.path == best):
        qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    following = data / "val" / column(2, "image")
    with qtbot.waitSignal(window.resultShown, timeout=WAIT_MS, check_params_cb=lambda r: r.path == following):
        qtbot.mouseClick(view.next, Qt.MouseButton.LeftButton)


def test_the_teaching_tabs_fill_their_panels_without_dark_bands(
    qtbot: QtBot, window: MainWindow, tiny_weights: Path, tmp_path: Path
) -> None:
    window.resize(1280, 800)
    data = make_dataset(tmp_path / "camvid", count=1)
    load(qtbot, window, tiny_weights)
    analysis = open_and_analyse(qtbot, window, data / "val" / "frame0.png")
    size = analysis.label.shape if analysis.label is not None else (0, 0)
    classroom = window.classroom

    def shares(view: object, panels: list[object]) -> dict[str, float]:
        classroom.show_view(view)  # type: ignore[arg-type]
        qtbot.wait(50)
        view.link.fit()  # type: ignore[attr-defined]
        scale = view.link.scale  # type: ignore[attr-defined]
        return {p.key: fill_share(p.view, size, scale) for p in panels}  # type: ignore[attr-defined]

    compare = shares(classroom.compare, [*classroom.compare.masks.values(), *classroom.compare.changes.values()])
    truth = shares(classroom.truth, [classroom.truth.photo, classroom.truth.truth, *classroom.truth.errors.values()])
    for key, share in {**compare, **truth}.items():
        assert share > 0.9, (key, share)  # the picture fills its panel (the reviewer saw 25–35 % dark)

    panorama = tmp_path / "panorama.png"
    Image.fromarray(gradient_image(40, 400)).save(panorama)
    open_image(qtbot, window, panorama)
    steps = classroom.steps
    classroom.show_step(len(steps.steps))  # the last step: the mask at the image's size
    qtbot.wait(50)
    assert steps.maps.stacked  # the photo above the map: the map as wide as the tab
    assert fill_share(steps.view, (40, 400), steps.link.scale) > 0.5  # was a thin strip, ~85 % dark
    portrait = tmp_path / "portrait.png"
    Image.fromarray(gradient_image(160, 64)).save(portrait)
    open_image(qtbot, window, portrait)
    classroom.show_step(len(steps.steps))
    qtbot.wait(50)
    assert not steps.maps.stacked  # a portrait: beside its map, each no wider than its picture
    assert fill_share(steps.view, (160, 64), steps.link.scale) > 0.9
    assert fill_share(steps.photo.view, (160, 64), steps.photo_link.scale) > 0.9


def test_the_compare_tab_says_when_a_finer_stage_scores_lower(qtbot: QtBot, tmp_path: Path) -> None:
    from fcn_viewer.classes import CAMVID_PALETTE
    from fcn_viewer.gui.compare_view import CompareView
    from fcn_viewer.teaching.image_analysis import GroundTruth, analyse, analysis_pictures

    rng = np.random.default_rng(5)
    label = np.kron(rng.integers(0, 11, (4, 6)), np.ones((8, 8), int)).astype(np.uint8)
    fine = label.copy()
    fine[rng.random(label.shape) < 0.3] = 3  # the 8s mask: worse than the 16s one, which is the label itself
    masks = {"32s": np.full_like(label, 3), "16s": label.copy(), "8s": fine}
    Image.fromarray(label).save(tmp_path / "label.png")
    truth = GroundTruth(tmp_path / "label.png", 11, 11, 2.0)
    titles = {stage: f"{stage} stage of tiny" for stage in masks}
    analysis = analyse(tmp_path / "photo.png", "stages", masks, titles, 3.0, truth)
    photo = gradient_image(*label.shape)
    view = CompareView()
    qtbot.addWidget(view)
    view.show()
    view.set_analysis(analysis, analysis_pictures(analysis, photo, CAMVID_PALETTE, 0.5, truth).compare,
                      CAMVID_PALETTE, 0.5)
    text = view.drops.text()
    accuracy = percent(analysis.truth["8s"].pixel_accuracy)
    assert view.drops.isVisible()
    assert (f"going from the 16s stage to the 8s stage (adding the pool3 skip) lowers pixel accuracy from 100.0 % "
            f"to {accuracy}") in text and "not on every photo" in text
    assert "32s stage to the 16s" not in text  # the pool4 skip helps here: nothing said about it
    unscored = analyse(tmp_path / "photo.png", "stages", masks, titles, 3.0)
    view.set_analysis(unscored, analysis_pictures(unscored, photo, CAMVID_PALETTE, 0.5, None).compare,
                      CAMVID_PALETTE, 0.5)
    assert not view.drops.isVisible()
