"""The teaching views as a newcomer sees them (issue 22): sizes written as C×rows×columns in every title, no dark or
empty bands, panels that stay put, and a contributions tab that forgets the old image and explains its numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF, Qt
from pytestqt.qtbot import QtBot

from fcn_viewer.classes import CAMVID_PALETTE
from fcn_viewer.gui.compare_view import CompareView
from fcn_viewer.gui.contributions_view import HOVER_HINT, ContributionsView
from fcn_viewer.gui.fields_view import ReceptiveFieldView, fields_layout
from fcn_viewer.gui.tab import TabFrame
from fcn_viewer.gui.teaching_view import StepThroughView
from fcn_viewer.gui.truth_view import TruthView
from fcn_viewer.inference import Segmenter
from fcn_viewer.teaching.contributions import BilinearStage
from fcn_viewer.teaching.figure import build_slide, stage_analysis
from fcn_viewer.teaching.ground_truth import percent, score_mask
from fcn_viewer.teaching.image_analysis import GroundTruth, analyse, analysis_pictures
from fcn_viewer.view.panel_content import ViewResult
from fcn_viewer.weights.loader import load_weights_file
from tests.gui_helpers import Teaching, fill_share, save_tiny
from tests.helpers import gradient_image

WAIT_MS = 20_000
HEIGHT, WIDTH = 45, 61  # not square: a W×H title would read differently from H×W


def tiny_result(weights: Path, tmp_path: Path, name: str = "photo.png") -> ViewResult:
    loaded = load_weights_file(weights)
    segmentation = Segmenter(loaded, "cpu").segment(gradient_image(HEIGHT, WIDTH))
    return ViewResult.build(tmp_path / name, segmentation, loaded.meta, 0.0, "cpu")


def tiny_truth(tmp_path: Path) -> tuple[np.ndarray, GroundTruth]:
    label = np.random.default_rng(1).integers(0, 11, size=(HEIGHT, WIDTH)).astype(np.uint8)
    Image.fromarray(label).save(tmp_path / "label.png")
    return label, GroundTruth(tmp_path / "label.png", 11, 11, 2.0)


def test_the_step_through_panels_stay_put_for_captions_of_every_length(
    qtbot: QtBot, tiny_weights: Path, tmp_path: Path
) -> None:
    view = StepThroughView()
    qtbot.addWidget(view)
    view.resize(700, 520)  # narrow: the captions wrap to different numbers of lines
    view.show()
    result = tiny_result(tiny_weights, tmp_path)
    view.set_frame(TabFrame(result, tuple(CAMVID_PALETTE), 0.6))
    for display in ("classes", "class-score"):  # the class-score display adds the class's scale to each caption
        view.display.setCurrentIndex(view.display.findData(display))
        places, lines = set(), set()
        for index in range(len(view.steps)):
            view.set_step(index)
            qtbot.wait(5)
            places.add((view.maps.geometry().getRect(), view.caption.geometry().getRect()))
            metrics = view.caption.fontMetrics()
            lines.add(metrics.boundingRect(0, 0, view.caption.width(), 10_000, int(Qt.TextFlag.TextWordWrap),
                                           view.caption.text()).height())
        assert len(lines) > 1, display  # captions of different heights were shown ...
        assert len(places) == 1, display  # ... and the maps and the caption never moved


def test_the_ground_truth_table_is_as_tall_as_its_rows_and_titles_give_shapes(qtbot: QtBot, tmp_path: Path) -> None:
    label, truth = tiny_truth(tmp_path)
    masks = {stage: np.roll(label, shift, axis=1) for stage, shift in (("32s", 3), ("16s", 2), ("8s", 1))}
    analysis = analyse(tmp_path / "photo.png", "stages", masks, {s: f"{s} stage of tiny" for s in masks}, 3.0, truth)
    photo = gradient_image(HEIGHT, WIDTH)
    view = TruthView()
    qtbot.addWidget(view)
    view.resize(1070, 690)
    view.show()
    pictures = analysis_pictures(analysis, photo, CAMVID_PALETTE, 0.6, truth)
    view.set_analysis(analysis, truth, pictures.truth, photo, CAMVID_PALETTE, "stages")
    qtbot.wait(10)
    table = view.table
    rows_height = table.horizontalHeader().height() + table.verticalHeader().length() + 2 * table.frameWidth()
    assert table.rowCount() == 3 and table.height() == rows_height  # no white area under the 8s row
    assert view.table_cell.height() > table.height() + 20  # the cell had room to spare: the table did not take it
    assert f"ground truth · {HEIGHT}×{WIDTH} ·" in view.truth.title.text()
    assert f"photo · 3×{HEIGHT}×{WIDTH}" == view.photo.title.text()
    for stage, panel in view.errors.items():
        assert panel.title.text().startswith(f"{stage} errors · {HEIGHT}×{WIDTH} · ")

    compare = CompareView()
    qtbot.addWidget(compare)
    compare.show()
    compare.set_analysis(analysis, pictures.compare, CAMVID_PALETTE, 0.6, classes=11)
    for stage, panel in compare.masks.items():
        assert panel.title.text() == f"{stage} stage of tiny · 11×{HEIGHT}×{WIDTH}"  # the logits, as on Stages
    for panel in compare.changes.values():
        assert panel.title.text().endswith(f" · {HEIGHT}×{WIDTH}")


def test_receptive_field_titles_give_shapes_and_pictures_fill_their_panels(
    qtbot: QtBot, tiny_weights: Path, tmp_path: Path
) -> None:
    view = ReceptiveFieldView()
    qtbot.addWidget(view)
    view.resize(1070, 690)  # the tab's size in a 1280×800 window
    view.show()
    result = tiny_result(tiny_weights, tmp_path)
    view.set_frame(TabFrame(result, tuple(CAMVID_PALETTE), 0.6))
    qtbot.wait(20)
    view.link.fit()
    view.photo_link.fit()
    tensors = result.segmentation.outputs.tensors  # type: ignore[union-attr]
    assert view.photo.title.text() == f"photo · 3×{HEIGHT}×{WIDTH}"
    for name, panel in view.maps.items():
        assert panel.title.text().endswith(" · " + "×".join(str(n) for n in tensors[name].shape[1:]))
    assert view.mask_panel.title.text() == f"FCN-8s mask · 11×{HEIGHT}×{WIDTH}"
    assert fill_share(view.photo.view, (HEIGHT, WIDTH), view.photo_link.scale) > 0.97, "dark band under the photo"
    for panel in [*view.maps.values(), view.mask_panel]:
        assert fill_share(panel.view, (HEIGHT, WIDTH), view.link.scale) > 0.97, (panel.key, "dark band")


@pytest.mark.parametrize("image_size", [(360, 480), (100, 1000), (1000, 200)])
@pytest.mark.parametrize("area", [(1060, 680), (600, 900)])
def test_the_fields_layout_keeps_the_image_aspect_inside_the_area(image_size: tuple[int, int],
                                                                   area: tuple[int, int]) -> None:
    title, spacing = 20, 8
    rects = fields_layout(image_size, area, title, spacing)
    aspect = image_size[1] / image_size[0]
    for x, y, width, height in rects:
        assert x >= 0 and y >= 0 and x + width <= area[0] and y + height <= area[1]
        picture = (height - title, width)
        scale = min(picture[0] / image_size[0], picture[1] / image_size[1])
        bands = [side - scale * size for side, size in zip(picture, image_size, strict=True)]
        assert max(bands) <= max(aspect, 1 / aspect) + 0.01, (picture, bands)  # whole pixels' rounding, no band
    photo, *maps = rects
    assert photo[3] == maps[2][1] + maps[2][3]  # the photo is as tall as both rows of maps
    assert maps[0][0] >= photo[0] + photo[2] + spacing and maps[1][0] >= maps[0][0] + maps[0][2] + spacing


def test_the_slide_figure_writes_every_size_as_channels_rows_columns(tiny_weights: Path, tmp_path: Path) -> None:
    loaded = load_weights_file(tiny_weights)
    segmentation = Segmenter(loaded, "cpu").segment(gradient_image(HEIGHT, WIDTH))
    analysis = stage_analysis(tmp_path / "photo.png", segmentation, None)
    figure = build_slide(segmentation, loaded.meta, loaded.meta.palette, "tiny", analysis)
    titles = " | ".join(axes.get_title() for axes in figure.axes)
    assert f"photo\n3×{HEIGHT}×{WIDTH}" in titles and f"FCN-8s mask\n11×{HEIGHT}×{WIDTH}" in titles
    score_fr = segmentation.outputs.tensors["score_fr"].shape[1:]
    assert "stride 32 · " + "×".join(str(n) for n in score_fr) in titles
    assert f"{WIDTH}×{HEIGHT}" not in titles  # no width-first size anywhere


@pytest.fixture
def contributions(qtbot: QtBot, teaching: Teaching):  # type: ignore[no-untyped-def]
    view = ContributionsView(teaching.classroom.contributions)
    qtbot.addWidget(view)
    view.resize(1070, 690)
    view.show()
    yield view
    view.shutdown()


def show_split(qtbot: QtBot, view: ContributionsView, result: ViewResult, truth: GroundTruth | None = None) -> None:
    view.set_frame(TabFrame(result, tuple(CAMVID_PALETTE), 0.6, truth))
    qtbot.waitUntil(lambda: view.lesson.shown is not None and view.lesson.shown.request.result is result,
                    timeout=WAIT_MS)


def test_the_contributions_readout_clears_for_a_new_model_and_fcn32s_has_no_zero_error_or_band(
    qtbot: QtBot, contributions: ContributionsView, tiny_weights: Path, tmp_path: Path
) -> None:
    view = contributions
    show_split(qtbot, view, tiny_result(tiny_weights, tmp_path))
    view._hover(QPointF(20.5, 10.5))
    assert view.readout.text().startswith("pixel (20, 10)")
    assert "within" in view.status.text() and "0.0e+00" not in view.status.text()
    fcn32s = tiny_result(save_tiny(tmp_path / "fcn32s.safetensors", "fcn32s"), tmp_path)
    view.set_frame(TabFrame(fcn32s, tuple(CAMVID_PALETTE), 0.6))
    assert view.readout.text() == HOVER_HINT  # the FCN-8s terms are gone at once, before the new split
    qtbot.waitUntil(lambda: view.lesson.shown is not None and view.lesson.shown.request.result is fcn32s,
                    timeout=WAIT_MS)
    assert "0.0e+00" not in view.status.text() and "within" not in view.status.text()
    assert "conv7 term alone" in view.status.text()
    qtbot.wait(20)  # the grid is capped after the layout settles
    panels = [view.photo, view.terms["score_fr"], view.mask_panel]
    bottom = max(panel.mapTo(view, panel.rect().bottomLeft()).y() for panel in panels)
    table_top = view.table.mapTo(view, view.table.rect().topLeft()).y()
    assert 0 < table_top - bottom < 40, (bottom, table_top)  # the table right under the panels: no empty band
    assert view.spare.height() > 100  # the room left over lies below everything
    view.set_frame(TabFrame(tiny_result(tiny_weights, tmp_path, "another.png"), tuple(CAMVID_PALETTE), 0.6))
    view._hover(QPointF(3.5, 4.5))
    assert view.readout.text().startswith("pixel (3, 4)")
    view.clear("no model")
    assert view.readout.text() == HOVER_HINT


def test_the_contributions_table_sets_conv7_only_beside_the_bilinear_32s_stage(
    qtbot: QtBot, contributions: ContributionsView, tiny_weights: Path, tmp_path: Path
) -> None:
    view = contributions
    result = tiny_result(tiny_weights, tmp_path)
    label, truth = tiny_truth(tmp_path)
    show_split(qtbot, view, result, truth)
    segmentation = result.segmentation
    assert segmentation is not None
    stage = score_mask(segmentation.mask("32s"), label, 11, 11)
    conv7_only = view.lesson.shown.analysis.variant(("score_pool4", "score_pool3"))  # type: ignore[union-attr]
    last = view.table.rowCount() - 1
    assert view.table.rowCount() == 5 and view.table.verticalHeaderItem(last).text() == BilinearStage.title
    assert view.table.item(last, 1).text() == percent(stage.pixel_accuracy)
    note = view.conv7_note.text()
    assert view.conv7_note.isVisible() and "learned ×2/×2/×8" in note and "bilinear ×32" in note
    assert f"{percent(conv7_only.truth.pixel_accuracy)} against {percent(stage.pixel_accuracy)}" in note  # type: ignore[union-attr]
    view.switches["score_pool3"].setChecked(False)  # the switch settings' rows are marked, never the stage's
    assert view.table.verticalHeaderItem(2).text().startswith("▶")
    assert view.table.verticalHeaderItem(last).text() == BilinearStage.title
