"""An opened image's ground truth: finding its label file, scoring each mask as `fcn-viewer evaluate` does (no Qt)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from fcn_viewer.classes import CAMVID_CLASSES, CAMVID_VOID, Color
from fcn_viewer.data.folder import load_label
from fcn_viewer.data.voc import VOC_IGNORE
from fcn_viewer.errors import DatasetError
from fcn_viewer.evaluation import StageScores
from fcn_viewer.options import DEFAULT_TOLERANCE
from fcn_viewer.render import palette_lut
from fcn_viewer.teaching.compare import marked_grey

VOID_COLOR: Color = (0, 0, 0)
ERROR_COLOR: Color = (255, 40, 40)
# The scores a mask gets against the label (`evaluate`'s summary keys), in the words a sentence about them uses.
SCORE_WORDS = {"pixel_accuracy": "pixel accuracy", "mean_iou": "mean IoU", "boundary_f1": "BF"}
# Said once after the sentences of drop_sentence, so that a skip lowering a score does not read as a contradiction.
AVERAGE_NOTE = "Skips help on average over a dataset (see the model's val numbers), not on every photo."


def percent(value: float) -> str:
    """A 0–1 score as ``61.2 %``; ``n/a`` where it is undefined (NaN)."""
    return "n/a" if math.isnan(value) else f"{100 * value:.1f} %"


def lowered_scores(before: Mapping[str, float], after: Mapping[str, float]) -> list[tuple[str, float, float]]:
    """Each score of :data:`SCORE_WORDS` that ``after`` shows lower than ``before`` at :func:`percent`'s precision
    (0.1 %: the two numbers shown differ; an undefined score never counts), as (its words, before, after)."""
    lowered = []
    for key, words in SCORE_WORDS.items():
        was, now = float(before[key]), float(after[key])
        if now < was and percent(now) != percent(was):  # NaN compares false
            lowered.append((words, was, now))
    return lowered


def drop_sentence(change: str, before: Mapping[str, float], after: Mapping[str, float]) -> str | None:
    """``On this image, <change> lowers pixel accuracy from 84.5 % to 83.1 % and BF from 40.2 % to 39.0 %.``, where
    going from the ``before`` scores to the ``after`` ones lowers any (see :func:`lowered_scores`); else ``None``."""
    lowered = lowered_scores(before, after)
    if not lowered:
        return None
    drops = [f"{words} from {percent(was)} to {percent(now)}" for words, was, now in lowered]
    listed = drops[0] if len(drops) == 1 else ", ".join(drops[:-1]) + " and " + drops[-1]
    return f"On this image, {change} lowers {listed}."


def find_label(image_path: Path) -> Path | None:
    """The label next to an image in the CamVid layout (``<dir>annot/<stem>.png`` beside ``<dir>/``) or the
    VOC layout (``SegmentationClass/<stem>.png`` beside ``JPEGImages/``), if that file exists."""
    folder = image_path.parent
    candidates = [folder.with_name(f"{folder.name}annot") / f"{image_path.stem}.png"]
    if folder.name == "JPEGImages":
        candidates.append(folder.with_name("SegmentationClass") / f"{image_path.stem}.png")
    return next((path for path in candidates if path.is_file()), None)


def ignore_index_for(label_path: Path, classes: Sequence[str]) -> int:
    """The void label: 255 in the VOC layout, 11 in the CamVid one; for a label elsewhere, by the model's classes."""
    if label_path.parent.name == "SegmentationClass":
        return VOC_IGNORE
    if label_path.parent.name.endswith("annot") or tuple(classes) == CAMVID_CLASSES:
        return CAMVID_VOID
    return VOC_IGNORE


def load_truth(label_path: Path, image_size: tuple[int, int]) -> np.ndarray:
    """The label as H×W class indices; a label of another size than the image is an error naming both."""
    label = load_label(label_path)
    if label.shape != tuple(image_size):
        raise DatasetError(
            f"{label_path}: label is {label.shape[1]}×{label.shape[0]}, the image the net saw is "
            f"{image_size[1]}×{image_size[0]}"
        )
    return label


def valid_pixels(label: np.ndarray, num_classes: int, ignore_index: int) -> np.ndarray:
    """Pixels the metrics count: a class in ``[0, num_classes)`` that is not void."""
    valid: np.ndarray = (label < num_classes) & (label != ignore_index)
    return valid


@dataclass(frozen=True)
class StageTruth:
    """One mask against the label: the numbers `evaluate` prints for this image alone, and the wrong pixels."""

    summary: dict[str, Any]
    errors: np.ndarray

    @property
    def pixel_accuracy(self) -> float:
        return float(self.summary["pixel_accuracy"])

    @property
    def mean_iou(self) -> float:
        return float(self.summary["mean_iou"])

    @property
    def boundary_f1(self) -> float:
        return float(self.summary["boundary_f1"])


def score_mask(
    mask: np.ndarray, label: np.ndarray, num_classes: int, ignore_index: int, tolerance: float = DEFAULT_TOLERANCE
) -> StageTruth:
    """Pixel accuracy, mIoU, BF (and the rest of `evaluate`'s summary) of one image, and where it is wrong."""
    scores = StageScores.create(num_classes, ignore_index, tolerance)
    scores.update(mask, label)
    return StageTruth(scores.summary(), valid_pixels(label, num_classes, ignore_index) & (mask != label))


def label_picture(label: np.ndarray, palette: Sequence[Color], num_classes: int, ignore_index: int) -> np.ndarray:
    """The label (uint8 class indices) in class colours, void pixels black, by one table lookup."""
    lut = palette_lut(palette)
    lut[~valid_pixels(np.arange(len(lut)), num_classes, ignore_index)] = VOID_COLOR
    return np.take(lut, label, axis=0)


def error_picture(level: np.ndarray, truth: StageTruth, valid: np.ndarray) -> np.ndarray:
    """Wrong pixels in red over the dimmed grey photo (its ``level``, see
    :func:`~fcn_viewer.teaching.compare.dimmed_level`); void pixels (not scored) black."""
    return marked_grey(level, [(truth.errors, ERROR_COLOR), (~valid, VOID_COLOR)])


@dataclass(frozen=True)
class TruthPictures:
    """The ground-truth tab's pixels: ``label`` in ``palette``'s colours (``colored``, see :func:`label_picture`)
    and each mask's wrong pixels (:func:`error_picture`)."""

    label: np.ndarray
    num_classes: int
    ignore_index: int
    palette: tuple[Color, ...]
    colored: np.ndarray
    errors: dict[str, np.ndarray]

    def recolored(self, palette: Sequence[Color]) -> TruthPictures:
        """The label in another palette; the error maps are kept."""
        colored = label_picture(self.label, palette, self.num_classes, self.ignore_index)
        return replace(self, palette=tuple(palette), colored=colored)


def truth_pictures(
    level: np.ndarray,
    label: np.ndarray,
    valid: np.ndarray,
    truth: dict[str, StageTruth],
    palette: Sequence[Color],
    num_classes: int,
    ignore_index: int,
) -> TruthPictures:
    """The ground-truth tab's pixels (``level``: the photo's :func:`~fcn_viewer.teaching.compare.dimmed_level`)."""
    colored = label_picture(label, palette, num_classes, ignore_index)
    errors = {stage: error_picture(level, scored, valid) for stage, scored in truth.items()}
    return TruthPictures(label, num_classes, ignore_index, tuple(palette), colored, errors)
