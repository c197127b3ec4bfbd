"""Teaching mode without Qt: fusion steps of real passes, changed-pixel maps, ground-truth scores, the slide figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fcn_viewer.classes import CAMVID_PALETTE, CAMVID_VOID
from fcn_viewer.cli.main import main
from fcn_viewer.data import SegmentationFolder, available_splits
from fcn_viewer.evaluation import EvaluatedModel, ImageScores, evaluate_model, evaluate_models
from fcn_viewer.inference import Segmenter
from fcn_viewer.model import FCNConfig, FCNOutputs, build_fcn
from fcn_viewer.render import boundaries, colorize
from fcn_viewer.teaching.compare import boundary_zone, family_of, mask_change
from fcn_viewer.teaching.dataset_table import column_names, dataset_row, image_row
from fcn_viewer.teaching.ground_truth import find_label, ignore_index_for, score_mask
from fcn_viewer.teaching.image_analysis import GroundTruth, analyse
from fcn_viewer.teaching.step_through import fusion_steps, step_pixels
from fcn_viewer.train.config import TrainConfig
from fcn_viewer.weights.loader import load_weights_file
from tests.helpers import gradient_image, random_model, tiny_compact_config, tiny_paper_config
from tests.test_evaluate import make_dataset

EIGHT_S_KINDS = ["scores", "upsample", "crop", "skip", "fused", "upsample", "crop", "skip", "fused", "upsample",
                 "crop", "mask"]


def forward(config: FCNConfig, height: int, width: int) -> FCNOutputs:
    with torch.no_grad():
        return random_model(config).forward_stages(torch.zeros(1, 3, height, width))  # type: ignore


def test_the_paper_fcn8s_path_has_the_reference_crops_and_shapes() -> None:
    outputs = forward(tiny_paper_config(), 500, 500)
    steps = fusion_steps(outputs)
    assert [step.kind for step in steps] == EIGHT_S_KINDS
    assert [(step.tensor, step.shape[1:]) for step in steps] == [
        ("score_fr", (16, 16)), ("upscore2", (34, 34)), ("score_pool4", (44, 44)), ("score_pool4c", (34, 34)),
        ("fuse_pool4", (34, 34)), ("upscore_pool4", (70, 70)), ("score_pool3", (88, 88)),
        ("score_pool3c", (70, 70)), ("fuse_pool3", (70, 70)), ("upscore8", (568, 568)), ("upscore8", (568, 568)),
        ("logits_8s", (500, 500)),
    ]
    crops = [(s.crop.source, s.crop.offset, s.crop.size) for s in steps if s.crop is not None]
    assert crops == [("score_pool4", 5, (34, 34)), ("score_pool3", 9, (70, 70)), ("upscore8", 31, (500, 500))]
    for step in steps:  # each step's shape is the tensor the pass really computed
        assert step.shape == tuple(outputs.tensors[step.tensor].shape[1:])
    assert "offset 5" in steps[2].caption and "44×44" in steps[2].caption and "34×34" in steps[2].caption
    assert "offset 31" in steps[10].caption and "568×568" in steps[10].caption
    assert steps[4].heading == "pool4-fused · fuse_pool4 · 5×34×34"
    assert [s.short for s in steps][:4] == ["conv7", "×2", "crop @5", "+ pool4"]


def test_the_bundled_recipe_shows_a_visible_crop_at_every_crop_step() -> None:
    """The bundled family's design (compact widths, paper geometry): Step-Through crops are real."""
    config = TrainConfig(data=Path("."), out=Path(".")).fcn_config()
    with torch.no_grad():
        outputs = build_fcn(config).forward_stages(torch.zeros(1, 3, 360, 480))
    steps = fusion_steps(outputs)
    crops = [step.crop for step in steps if step.crop is not None]
    assert [(c.source, c.offset) for c in crops] == [("score_pool4", 5), ("score_pool3", 9), ("upscore8", 31)]
    for crop in crops:  # something is cut off on both axes
        assert crop.source_size[0] > crop.size[0] and crop.source_size[1] > crop.size[1]


def test_a_compact_net_trims_the_upsampled_map_at_offset_zero() -> None:
    outputs = forward(tiny_compact_config(), 72, 100)
    steps = fusion_steps(outputs)
    assert [step.kind for step in steps] == EIGHT_S_KINDS
    crops = [(s.tensor, s.crop.offset, s.crop.source_size, s.crop.size) for s in steps if s.crop is not None]
    assert crops == [("upscore2", 0, (6, 8), (5, 7)), ("upscore_pool4", 0, (10, 14), (9, 13)),
                     ("upscore8", 0, (72, 104), (72, 100))]
    assert [steps[3].tensor, steps[7].tensor] == ["score_pool4", "score_pool3"]
    assert "upscore2 is 6×8, score_pool4 is 5×7" in steps[2].caption
    assert "top-left 72×100 (offset 0) is kept" in steps[10].caption


@pytest.mark.parametrize(
    ("variant", "kinds", "final"),
    [("fcn16s", ["scores", "upsample", "crop", "skip", "fused", "upsample", "crop", "mask"], ("upscore16", 27)),
     ("fcn32s", ["scores", "upsample", "crop", "mask"], ("upscore", 19))],
)
def test_shorter_nets_have_shorter_paths(variant: str, kinds: list[str], final: tuple[str, int]) -> None:
    steps = fusion_steps(forward(tiny_paper_config(variant), 500, 500))
    assert [step.kind for step in steps] == kinds
    last_crop = steps[-2].crop
    assert last_crop is not None and (last_crop.source, last_crop.offset, last_crop.size) == (*final, (500, 500))
    assert steps[-1].title == f"FCN-{variant[3:]} mask"


def test_step_pixels_draw_argmax_colours_or_one_class_score() -> None:
    outputs = forward(tiny_compact_config(), 64, 64)
    steps = fusion_steps(outputs)
    assert "already matches" in steps[2].caption and "keeps all of it" in steps[10].caption
    arrays = outputs.numpy()
    image = gradient_image(64, 64)
    conv7 = arrays["score_fr"]
    np.testing.assert_array_equal(step_pixels(steps[0], conv7, image, CAMVID_PALETTE),
                                  colorize(conv7.argmax(0).astype(np.uint8), CAMVID_PALETTE))
    heat = step_pixels(steps[0], conv7, image, CAMVID_PALETTE, "class-score", 3)
    brightest = np.unravel_index(conv7[3].argmax(), conv7[3].shape)
    assert heat.shape == (*conv7.shape[1:], 3) and tuple(heat[brightest]) == (253, 231, 37)
    mask = step_pixels(steps[-1], arrays["logits_8s"], image, CAMVID_PALETTE)
    plain = colorize(arrays["logits_8s"].argmax(0), CAMVID_PALETTE)
    assert mask.shape == (64, 64, 3) and not np.array_equal(mask, plain)  # blended over the photo


def near_boundary_directly(mask: np.ndarray, radius: float) -> np.ndarray:
    """Distance from every pixel to every boundary pixel, the plain way."""
    ys, xs = np.nonzero(boundaries(mask))
    grid_y, grid_x = np.mgrid[0 : mask.shape[0], 0 : mask.shape[1]]
    distance = np.sqrt((grid_y[..., None] - ys) ** 2 + (grid_x[..., None] - xs) ** 2)
    return (distance <= radius).any(axis=2) if ys.size else np.zeros(mask.shape, bool)


@pytest.mark.parametrize("radius", [0.0, 1.0, 2.5, 3.0])
def test_the_changed_pixel_count_equals_a_direct_numpy_computation(radius: float) -> None:
    rng = np.random.default_rng(3)
    fine = np.kron(rng.integers(0, 4, (6, 8)), np.ones((5, 5), int)).astype(np.uint8)
    coarse = fine.copy()
    coarse[rng.random(fine.shape) < 0.2] = 2
    change = mask_change(fine, coarse, radius)
    assert change.count == int((fine != coarse).sum()) and change.fraction == pytest.approx(change.count / fine.size)
    np.testing.assert_array_equal(boundary_zone(fine, radius), near_boundary_directly(fine, radius))
    assert change.near_count == int(((fine != coarse) & near_boundary_directly(fine, radius)).sum())
    assert f"{change.count:,} px changed" in change.describe() and f"within {radius:g} px" in change.describe()


def test_labels_are_found_beside_camvid_and_voc_images(tmp_path: Path) -> None:
    camvid = make_dataset(tmp_path / "camvid", count=1)
    image = camvid / "val" / "frame0.png"
    assert find_label(image) == camvid / "valannot" / "frame0.png"
    assert ignore_index_for(find_label(image), ()) == CAMVID_VOID  # type: ignore[arg-type]
    voc = tmp_path / "VOC2012"
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / folder).mkdir(parents=True)
    Image.fromarray(gradient_image(8, 8)).save(voc / "JPEGImages" / "2007_000032.jpg")
    Image.fromarray(np.zeros((8, 8), np.uint8), mode="L").save(voc / "SegmentationClass" / "2007_000032.png")
    (voc / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_000032\n")
    label = find_label(voc / "JPEGImages" / "2007_000032.jpg")
    assert label == voc / "SegmentationClass" / "2007_000032.png" and ignore_index_for(label, ()) == 255
    assert find_label(tmp_path / "elsewhere.png") is None
    assert available_splits(camvid) == ["val"] and available_splits(voc) == ["val"]


def test_one_image_scores_equal_evaluate_on_that_image(tmp_path: Path, tiny_weights: Path) -> None:
    data = make_dataset(tmp_path / "one", count=1)
    loaded = load_weights_file(tiny_weights)
    expected = evaluate_model(loaded, SegmentationFolder(data, "val"), "cpu")
    image_path = data / "val" / "frame0.png"
    segmentation = Segmenter(loaded, "cpu").segment(np.asarray(Image.open(image_path).convert("RGB")))
    masks = {stage: segmentation.mask(stage) for stage in segmentation.stages}
    truth = GroundTruth(find_label(image_path), 11, CAMVID_VOID, 2.0)  # type: ignore[arg-type]
    analysis = analyse(image_path, "stages", masks, {s: s for s in masks}, 3.0, truth)
    label = np.array(Image.open(truth.path))
    for stage, summary in expected.items():
        scored = analysis.truth[stage]
        assert scored.pixel_accuracy == pytest.approx(summary["pixel_accuracy"])
        assert scored.mean_iou == pytest.approx(summary["mean_iou"])
        assert scored.boundary_f1 == pytest.approx(summary["boundary_f1"])
        valid = label != CAMVID_VOID
        np.testing.assert_array_equal(scored.errors, valid & (masks[stage] != label))
    assert set(analysis.changes) == {"32s", "16s"}
    wrong_size = analyse(image_path, "stages", {"8s": np.zeros((4, 4), np.uint8)}, {"8s": "x"}, 3.0, truth)
    assert wrong_size.truth == {} and "label is 56×40" in (wrong_size.truth_error or "")


def test_per_image_rows_and_the_dataset_row_match_evaluate(tmp_path: Path, tiny_weights: Path) -> None:
    dataset = SegmentationFolder(make_dataset(tmp_path / "data", count=3), "val")
    loaded = load_weights_file(tiny_weights)
    rows: list[ImageScores] = []
    model = EvaluatedModel("tiny", Segmenter(loaded, "cpu"), ("32s", "16s", "8s"))
    evaluation = evaluate_models([model], dataset, image_scores=rows.append)
    stages = ("32s", "16s", "8s")
    assert column_names(stages)[:4] == ["image", "32s acc", "32s mIoU", "32s BF"]
    table = [image_row(scores, stages) for scores in rows]
    assert [row.name for row in table] == ["frame0.png", "frame1.png", "frame2.png"]
    label = np.array(Image.open(dataset.samples[1].label_path))
    image = np.asarray(Image.open(dataset.samples[1].image_path).convert("RGB"))
    alone = score_mask(Segmenter(loaded, "cpu").segment(image).mask("8s"), label, 11, CAMVID_VOID)
    assert table[1].values[6:] == pytest.approx((alone.pixel_accuracy, alone.mean_iou, alone.boundary_f1))
    total = dataset_row(evaluation, stages)
    expected = evaluate_model(loaded, dataset, "cpu")
    assert total.is_dataset and total.name == "dataset (3 images)"
    assert total.values == pytest.approx(
        tuple(expected[s][k] for s in stages for k in ("pixel_accuracy", "mean_iou", "boundary_f1"))
    )


def test_a_cancelled_evaluation_stops_before_the_next_image(tmp_path: Path, tiny_weights: Path) -> None:
    dataset = SegmentationFolder(make_dataset(tmp_path / "data", count=3), "val")
    seen: list[int] = []
    model = EvaluatedModel("tiny", Segmenter(load_weights_file(tiny_weights), "cpu"), ("8s",))
    evaluation = evaluate_models([model], dataset, image_scores=lambda s: seen.append(s.index),
                                 cancel=lambda: len(seen) >= 1)
    assert seen == [0] and evaluation.cancelled and evaluation.images == 1
    assert dataset_row(evaluation, ("8s",)).name == "dataset (1 images, stopped early)"


def test_a_model_outside_the_registry_compares_with_the_family_of_its_classes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FCN_VIEWER_RESOURCES", str(tmp_path))
    (tmp_path / "models").mkdir()
    from fcn_viewer.classes import CAMVID_CLASSES, VOC_CLASSES

    assert [e.name for e in family_of("fcn8s-heavy-pascal", VOC_CLASSES)][0] == "fcn32s-heavy-pascal"
    assert family_of("my-local-file", CAMVID_CLASSES) == ()  # nothing of the CamVid family is installed
    (tmp_path / "models" / "camvid-fcn32s.safetensors").write_bytes(b"")
    assert [e.name for e in family_of("my-local-file", CAMVID_CLASSES)] == [
        "camvid-fcn32s", "camvid-fcn16s", "camvid-fcn8s"]


def test_the_figure_command_writes_a_slide_png_and_svg(
    tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_dataset(tmp_path / "camvid", count=1)
    image = data / "val" / "frame0.png"
    png, svg = tmp_path / "fig.png", tmp_path / "out" / "fig.svg"
    assert main(["figure", str(image), "--out", str(png), "--weights", str(tiny_weights), "--device", "cpu"]) == 0
    assert "ground truth: " in capsys.readouterr().err  # found beside the image
    picture = Image.open(png)
    assert picture.size == (1920, 1080) and np.asarray(picture.convert("L")).std() > 20
    argv = ["figure", str(image), "--out", str(svg), "--weights", str(tiny_weights), "--device", "cpu",
            "--label", str(data / "valannot" / "frame0.png")]
    assert main(argv) == 0
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text and "mIoU" in text and "frame0.png" in text
    assert main(["figure", str(image), "--out", str(tmp_path / "fig.gif"), "--weights", str(tiny_weights)]) == 2


def test_a_finer_stage_that_scores_lower_on_the_image_is_said_in_words() -> None:
    from fcn_viewer.teaching.ground_truth import AVERAGE_NOTE
    from fcn_viewer.teaching.image_analysis import stage_drops

    def scores(pixel: float, iou: float) -> dict[str, float]:
        return {"pixel_accuracy": pixel, "mean_iou": iou, "boundary_f1": 0.3}

    # issue 19's default sample: pixel accuracy 82.4 / 83.3 / 83.1 for 32s / 16s / 8s
    stages = {"32s": scores(0.824, 0.50), "16s": scores(0.833, 0.52), "8s": scores(0.831, 0.53)}
    assert stage_drops("stages", stages) == [
        "On this image, going from the 16s stage to the 8s stage (adding the pool3 skip) lowers pixel accuracy "
        "from 83.3 % to 83.1 %.", AVERAGE_NOTE]
    nets = {"32s": scores(0.85, 0.55), "8s": scores(0.84, 0.56)}  # FCN-16s not installed
    assert stage_drops("separate", nets) == [
        "On this image, going from the FCN-32s net to the FCN-8s net (which adds the pool4 and pool3 skips) lowers "
        "pixel accuracy from 85.0 % to 84.0 %.", AVERAGE_NOTE]
    rising = {"32s": scores(0.80, 0.50), "16s": scores(0.81, 0.52), "8s": scores(0.82, 0.53)}
    assert stage_drops("stages", rising) == [] and stage_drops("stages", {}) == []
