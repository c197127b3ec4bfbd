"""The shipped CamVid family teaches what the paper says: real crops, and on the samples each skip raises the scores."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fcn_viewer
from fcn_viewer.inference import Segmentation, Segmenter
from fcn_viewer.teaching.ground_truth import ignore_index_for, load_truth, score_mask
from fcn_viewer.teaching.step_through import fusion_steps
from fcn_viewer.weights.loader import load_weights_file

BUNDLED = Path(fcn_viewer.__file__).parent / "bundled"
SAMPLES = sorted((BUNDLED / "samples").glob("*.jpg"))
FAMILY = {stage: BUNDLED / "models" / f"camvid-fcn{stage}.safetensors" for stage in ("32s", "16s", "8s")}


def segment(model: Path, photo: Path) -> Segmentation:
    return Segmenter(load_weights_file(model), "cpu").segment(np.asarray(Image.open(photo).convert("RGB")))


def stage_scores(photo: Path) -> dict[str, tuple[float, float]]:
    """(pixel accuracy, mean IoU) of each stage of the default FCN-8s on a bundled sample, against its label."""
    result = segment(FAMILY["8s"], photo)
    meta = load_weights_file(FAMILY["8s"]).meta
    label_path = BUNDLED / "samplesannot" / f"{photo.stem}.png"
    label = load_truth(label_path, result.image_size)
    ignore = ignore_index_for(label_path, meta.classes)
    scores = {}
    for stage in ("32s", "16s", "8s"):
        truth = score_mask(result.mask(stage), label, len(meta.classes), ignore)
        scores[stage] = (truth.pixel_accuracy, truth.mean_iou)
    return scores


def strictly_rising(values: list[float]) -> bool:
    return all(a < b for a, b in pairwise(values))


def test_the_default_models_step_through_shows_a_real_crop_at_every_crop_step() -> None:
    result = segment(FAMILY["8s"], SAMPLES[0])
    crops = [step.crop for step in fusion_steps(result.outputs) if step.crop is not None]
    assert [(c.source, c.offset) for c in crops] == [("score_pool4", 5), ("score_pool3", 9), ("upscore8", 31)]
    for crop in crops:  # the kept window is smaller than the map on both axes: something visibly goes
        assert crop.source_size[0] > crop.size[0] and crop.source_size[1] > crop.size[1]


def test_on_the_default_sample_each_skip_raises_pixel_accuracy_and_mean_iou() -> None:
    scores = stage_scores(SAMPLES[0])
    assert strictly_rising([scores[s][0] for s in ("32s", "16s", "8s")]), scores
    assert strictly_rising([scores[s][1] for s in ("32s", "16s", "8s")]), scores


def test_on_the_mean_of_the_samples_each_skip_raises_pixel_accuracy_and_mean_iou() -> None:
    per_sample = [stage_scores(photo) for photo in SAMPLES]
    for metric in (0, 1):
        means = [float(np.mean([s[stage][metric] for s in per_sample])) for stage in ("32s", "16s", "8s")]
        assert strictly_rising(means), (metric, means)


@pytest.mark.parametrize("metric", ["mean_iou", "boundary_f1"])
def test_the_stored_val_scores_rise_from_32s_to_8s_within_the_net_and_across_the_family(metric: str) -> None:
    eight = load_weights_file(FAMILY["8s"]).meta.metrics["val"]
    assert strictly_rising([eight[stage][metric] for stage in ("32s", "16s", "8s")])
    separate = [load_weights_file(FAMILY[stage]).meta.metrics["val"][stage][metric] for stage in ("32s", "16s", "8s")]
    assert strictly_rising(separate)


def test_the_three_bundled_files_fit_the_size_budget() -> None:
    assert sum(path.stat().st_size for path in FAMILY.values()) <= 40_000_000
