"""Qt-free pieces of the viewer: heat maps, outlines, colour-blind palette, score summaries, panel rendering."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fcn_viewer.classes import CAMVID_CLASSES, CAMVID_PALETTE
from fcn_viewer.gui.panels import grid_positions
from fcn_viewer.inference import Segmenter
from fcn_viewer.render import (
    HEAT_LUT,
    blend,
    boundaries,
    class_probability,
    colorblind_palette,
    colorize,
    contrast_lut,
    heatmap,
    overlay,
    overlays,
    score_summary,
    top_classes,
)
from fcn_viewer.view.options import DisplayOptions
from fcn_viewer.view.panel_content import (
    HIDDEN_CELL,
    OUTLINE_WIDTH,
    PANELS_BY_KEY,
    StageArrays,
    ViewResult,
    render_panel,
)
from fcn_viewer.weights.loader import load_weights_file
from tests.helpers import gradient_image


def test_colorblind_palette_has_distinct_colours_for_any_class_count() -> None:
    for count in (2, 11, 21, 60):
        palette = colorblind_palette(count)
        assert len(palette) == count
        assert len(set(palette)) == count
        assert all(0 <= channel <= 255 for color in palette for channel in color)


def test_heatmap_runs_dark_to_bright_and_clips() -> None:
    colors = heatmap(np.array([[-1.0, 0.0, 0.5, 1.0, 2.0]]))
    assert colors.shape == (1, 5, 3) and colors.dtype == np.uint8
    np.testing.assert_array_equal(colors[0, 0], HEAT_LUT[0])
    np.testing.assert_array_equal(colors[0, 4], HEAT_LUT[255])
    brightness = HEAT_LUT.astype(int).sum(axis=1)
    assert brightness[0] < brightness[128] < brightness[255]


def test_boundaries_mark_both_sides_of_a_class_edge_only() -> None:
    mask = np.zeros((6, 8), dtype=np.uint8)
    mask[:, 4:] = 1
    edges = boundaries(mask)
    assert edges[:, 3].all() and edges[:, 4].all()
    assert not edges[:, :3].any() and not edges[:, 5:].any()
    assert boundaries(mask, width=3)[:, 2:6].all()
    assert not boundaries(np.zeros((4, 4), dtype=np.uint8)).any()


def test_score_summary_matches_torch_softmax() -> None:
    scores = np.random.default_rng(0).normal(size=(5, 7, 9)).astype(np.float32) * 4
    classes, confidence, log_partition = score_summary(scores)
    probabilities = torch.softmax(torch.from_numpy(scores), dim=0).numpy()
    np.testing.assert_array_equal(classes, probabilities.argmax(0))
    np.testing.assert_allclose(confidence, probabilities.max(0), rtol=1e-5)
    np.testing.assert_allclose(class_probability(scores, log_partition, 3), probabilities[3], rtol=1e-5, atol=1e-7)
    best = top_classes(scores[:, 2, 3], 3)
    assert [index for index, _ in best] == list(np.argsort(-probabilities[:, 2, 3])[:3])
    assert best[0][1] == pytest.approx(probabilities[:, 2, 3].max(), rel=1e-5)


@pytest.mark.parametrize("summarised", [True, False])
def test_stage_arrays_summarised_now_or_on_first_use_agree(summarised: bool) -> None:
    scores = np.random.default_rng(1).normal(size=(4, 6, 5)).astype(np.float32) * 3
    arrays = StageArrays.from_scores(scores, summarised=summarised)
    classes, confidence, log_partition = score_summary(scores)
    np.testing.assert_array_equal(arrays.classes, classes)
    np.testing.assert_array_equal(arrays.confidence, confidence)
    np.testing.assert_array_equal(arrays.log_partition, log_partition)


def test_blend_takes_per_pixel_alpha() -> None:
    image = np.full((2, 2, 3), 100, dtype=np.uint8)
    colors = np.full((2, 2, 3), 200, dtype=np.uint8)
    alpha = np.array([[0.0, 1.0], [0.5, 0.25]], dtype=np.float32)
    out = blend(image, colors, alpha)
    assert out[:, :, 0].tolist() == [[100, 200], [150, 125]]


@pytest.fixture
def result(tiny_weights: Path) -> ViewResult:
    loaded = load_weights_file(tiny_weights)
    image = gradient_image(40, 56, seed=3)
    segmentation = Segmenter(loaded, "cpu").segment(image)
    return ViewResult.build(Path("x.png"), segmentation, loaded.meta, 1.0, "cpu")


def test_panels_render_at_their_own_resolution(result: ViewResult) -> None:
    options = DisplayOptions(opacity=1.0)
    palette = CAMVID_PALETTE
    for key in ("scores-32s", "scores-16s", "scores-8s"):
        pixels = render_panel(result, PANELS_BY_KEY[key], options, palette)
        stage = key.split("-")[1]
        assert pixels.shape[:2] == result.segmentation.outputs.score_map(stage).shape[2:]  # type: ignore[union-attr]
    mask = result.segmentation.mask("8s")  # type: ignore[union-attr]
    pixels = render_panel(result, PANELS_BY_KEY["mask-8s"], options, palette)
    np.testing.assert_array_equal(pixels, colorize(mask, palette))


def test_hidden_classes_and_outline(result: ViewResult) -> None:
    mask = result.segmentation.mask("8s")  # type: ignore[union-attr]
    hidden = int(np.bincount(mask.ravel()).argmax())
    options = DisplayOptions(opacity=1.0, hidden=frozenset({hidden}))
    pixels = render_panel(result, PANELS_BY_KEY["mask-8s"], options, CAMVID_PALETTE)
    np.testing.assert_array_equal(pixels[mask == hidden], result.image[mask == hidden])
    coarse = result.arrays(PANELS_BY_KEY["scores-8s"]).classes
    cells = render_panel(result, PANELS_BY_KEY["scores-8s"], options, CAMVID_PALETTE)
    assert (cells[coarse == hidden] == HIDDEN_CELL).all()
    outline = render_panel(result, PANELS_BY_KEY["mask-8s"], DisplayOptions(opacity=0.0, outline=True), CAMVID_PALETTE)
    edges = boundaries(mask, 3)
    np.testing.assert_array_equal(outline[~edges], result.image[~edges])
    core = boundaries(mask, 1)
    np.testing.assert_array_equal(outline[core], colorize(mask, CAMVID_PALETTE)[core])
    np.testing.assert_array_equal(outline[edges & ~core], np.take(contrast_lut(CAMVID_PALETTE), mask, axis=0)[edges & ~core])


def test_outlines_stand_out_from_the_fill_at_the_default_opacity() -> None:
    """Over a fill of the same class colour at 60 %, the outline still differs clearly from the pixels beside it."""
    mask = np.zeros((40, 60), dtype=np.int64)
    mask[:, 30:] = CAMVID_CLASSES.index("Road")
    mask[10:25, 5:20] = CAMVID_CLASSES.index("Sky")
    scores = np.stack([(mask == c).astype(np.float32) * 5 for c in range(len(CAMVID_CLASSES))])
    photo = np.full((40, 60, 3), 120, dtype=np.uint8)  # grey, like a road: the hardest case
    result = ViewResult(Path("x.png"), photo, masks={"8s": StageArrays.from_scores(scores)})
    panel = PANELS_BY_KEY["mask-8s"]
    filled = render_panel(result, panel, DisplayOptions(opacity=0.6), CAMVID_PALETTE)
    outlined = render_panel(result, panel, DisplayOptions(opacity=0.6, outline=True), CAMVID_PALETTE)
    edges = boundaries(mask, OUTLINE_WIDTH)
    np.testing.assert_array_equal(outlined[~edges], filled[~edges])  # the fill follows the slider
    luma = np.array([0.299, 0.587, 0.114])
    halo = edges & ~boundaries(mask, 1)  # beside the class-coloured line on the edge itself
    assert halo.sum() >= edges.sum() // 2
    contrast = np.abs(outlined[halo].astype(float) @ luma - filled[halo].astype(float) @ luma)
    assert contrast.min() > 80  # a dark or light edge along every boundary
    drawn_before = np.abs(colorize(mask, CAMVID_PALETTE)[edges].astype(float) @ luma - filled[edges].astype(float) @ luma)
    assert drawn_before.max() < 25  # the class colour alone, as outlines were drawn, hardly differed from the fill


def test_heat_modes_show_confidence_and_one_class(result: ViewResult) -> None:
    panel = PANELS_BY_KEY["scores-16s"]
    arrays = result.arrays(panel)
    confidence = render_panel(result, panel, DisplayOptions(mode="confidence"), CAMVID_PALETTE)
    np.testing.assert_array_equal(confidence, heatmap(arrays.confidence))
    chosen = render_panel(result, panel, DisplayOptions(mode="class-probability", chosen_class=2), CAMVID_PALETTE)
    expected = torch.softmax(torch.from_numpy(arrays.scores), 0)[2].numpy()
    np.testing.assert_array_equal(chosen, heatmap(expected))


def test_readout_names_each_stage_and_the_top_three(result: ViewResult) -> None:
    text = result.readout(10.7, 5.2)
    assert text is not None
    names = result.class_names
    for stage in ("32s", "16s", "8s"):
        assert f"{stage}: {names[result.segmentation.mask(stage)[5, 10]]}" in text  # type: ignore[union-attr]
    assert "top-3 8s:" in text
    assert result.readout(-1, 3) is None and result.readout(56, 0) is None


def test_grid_aligns_score_maps_above_masks_when_wide_and_flows_when_narrow() -> None:
    keys = ["input", "scores-32s", "scores-16s", "mask-32s", "mask-16s", "info"]
    wide = grid_positions(keys, ("32s", "16s"), 3)
    assert wide["scores-16s"] == (0, 2) and wide["mask-16s"] == (1, 2) and wide["info"] == (1, 0)
    narrow = grid_positions(keys, ("32s", "16s"), 2)
    assert sorted(narrow.values()) == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]


@pytest.mark.parametrize("opacity", [0.0, 0.37, 0.6, 1.0])
def test_overlays_of_several_masks_are_each_within_one_level_of_overlay(opacity: float) -> None:
    rng = np.random.default_rng(3)
    photo = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    masks = [rng.integers(0, 11, (30, 40), dtype=np.uint8) for _ in range(3)]
    pictures = overlays(photo, masks, CAMVID_PALETTE, opacity)
    assert len(pictures) == 3
    for mask, picture in zip(masks, pictures):
        expected = overlay(photo, mask, CAMVID_PALETTE, opacity)
        assert picture.dtype == np.uint8 and picture.shape == expected.shape
        assert np.abs(picture.astype(int) - expected).max() <= (0 if opacity in (0.0, 1.0) else 1)
    visible = [index % 3 != 0 for index in range(11)]  # classes 0, 3, 6, 9 hidden
    for mask, picture in zip(masks, overlays(photo, masks, CAMVID_PALETTE, opacity, visible)):
        expected = overlay(photo, mask, CAMVID_PALETTE, opacity, visible)
        assert np.abs(picture.astype(int) - expected).max() <= (0 if opacity in (0.0, 1.0) else 1)
        hidden = mask % 3 == 0
        np.testing.assert_array_equal(picture[hidden], photo[hidden])
    with pytest.raises(ValueError, match="differ in size"):
        overlays(photo, [masks[0][:10]], CAMVID_PALETTE, 0.5)
