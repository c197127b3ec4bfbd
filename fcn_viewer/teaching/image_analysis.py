"""One image's masks side by side: how the finest differs from the coarser ones, and each against the label (no Qt)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import numpy as np

from fcn_viewer.classes import Color
from fcn_viewer.errors import FCNViewerError
from fcn_viewer.teaching.compare import (
    CompareMode,
    ComparePictures,
    MaskChange,
    compare_pictures,
    dimmed_level,
    mask_change,
    skip_words,
)
from fcn_viewer.teaching.ground_truth import (
    AVERAGE_NOTE,
    StageTruth,
    TruthPictures,
    drop_sentence,
    load_truth,
    score_mask,
    truth_pictures,
    valid_pixels,
)

STAGE_ORDER = ("32s", "16s", "8s")
STAGE_SKIPS = {"16s": "pool4", "8s": "pool3"}  # the skip each stage adds to the one before it


def stage_drops(mode: CompareMode, scores: Mapping[str, Mapping[str, float]]) -> list[str]:
    """In words, wherever on this image a finer mask scores lower than a coarser one: each stage against the one
    before it, then the finest against the coarsest when there are three (``scores``: each stage's summary against
    the label, coarse to fine); then :data:`~fcn_viewer.teaching.ground_truth.AVERAGE_NOTE` once. Nothing where none
    is lower.
    """
    stages = [stage for stage in scores if stage in STAGE_ORDER]
    pairs = list(pairwise(stages)) + ([(stages[0], stages[-1])] if len(stages) > 2 else [])
    sentences = []
    for coarse, fine in pairs:
        added = [STAGE_SKIPS[s] for s in STAGE_ORDER[STAGE_ORDER.index(coarse) + 1 : STAGE_ORDER.index(fine) + 1]]
        if mode == "separate":
            change = f"going from the FCN-{coarse} net to the FCN-{fine} net (which adds {skip_words(added)})"
        else:
            change = f"going from the {coarse} stage to the {fine} stage (adding {skip_words(added)})"
        sentence = drop_sentence(change, scores[coarse], scores[fine])
        if sentence is not None:
            sentences.append(sentence)
    return sentences + ([AVERAGE_NOTE] if sentences else [])


@dataclass(frozen=True)
class GroundTruth:
    """A label file for the image, and how masks are scored against it."""

    path: Path
    num_classes: int
    ignore_index: int
    tolerance: float


@dataclass(frozen=True)
class ImageAnalysis:
    """Masks per stage (coarse to fine) with what made each, the finest mask's changes against every coarser
    one, and, with a label, each mask's scores; ``missing`` names nets that could not take part."""

    path: Path
    mode: CompareMode
    masks: dict[str, np.ndarray]
    titles: dict[str, str]
    changes: dict[str, MaskChange]
    missing: tuple[str, ...] = ()
    label: np.ndarray | None = None
    valid: np.ndarray | None = None
    truth: dict[str, StageTruth] = field(default_factory=dict)
    truth_error: str | None = None

    @property
    def finest(self) -> str:
        return list(self.masks)[-1]

    def drops(self) -> list[str]:
        """Where on this image a finer mask scores lower against the label, in words (:func:`stage_drops`)."""
        return stage_drops(self.mode, {stage: scored.summary for stage, scored in self.truth.items()})


def analyse(
    path: Path,
    mode: CompareMode,
    masks: dict[str, np.ndarray],
    titles: dict[str, str],
    radius: float,
    ground_truth: GroundTruth | None = None,
    missing: tuple[str, ...] = (),
) -> ImageAnalysis:
    """Compares the finest of ``masks`` (ordered coarse to fine) with each coarser one; scores all against the label."""
    stages = list(masks)
    finest = masks[stages[-1]] if stages else None
    changes = {stage: mask_change(finest, masks[stage], radius) for stage in stages[:-1] if finest is not None}
    if ground_truth is None or finest is None:
        return ImageAnalysis(path, mode, masks, titles, changes, missing)
    try:
        label = load_truth(ground_truth.path, finest.shape)
    except FCNViewerError as error:
        return ImageAnalysis(path, mode, masks, titles, changes, missing, truth_error=str(error))
    gt = ground_truth
    truth = {stage: score_mask(mask, label, gt.num_classes, gt.ignore_index, gt.tolerance)
             for stage, mask in masks.items()}
    valid = valid_pixels(label, gt.num_classes, gt.ignore_index)
    return ImageAnalysis(path, mode, masks, titles, changes, missing, label, valid, truth)


@dataclass(frozen=True)
class AnalysisPictures:
    """An analysis's pixels, made off the GUI thread: the compare tab's, and with a usable label the ground truth's."""

    compare: ComparePictures
    truth: TruthPictures | None


def analysis_pictures(
    analysis: ImageAnalysis,
    photo: np.ndarray,
    palette: Sequence[Color],
    opacity: float,
    ground_truth: GroundTruth | None,
) -> AnalysisPictures:
    """Every picture the compare and ground-truth tabs show of ``analysis``, in ``palette`` at ``opacity``."""
    level = dimmed_level(photo)
    compare = compare_pictures(photo, level, analysis.masks, analysis.changes, palette, opacity)
    if ground_truth is None or analysis.label is None or analysis.valid is None:
        return AnalysisPictures(compare, None)
    truth = truth_pictures(level, analysis.label, analysis.valid, analysis.truth, palette,
                           ground_truth.num_classes, ground_truth.ignore_index)
    return AnalysisPictures(compare, truth)
