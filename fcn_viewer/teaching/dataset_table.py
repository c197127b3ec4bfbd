"""Per-image scores of a dataset as table rows, one column per stage and metric, plus the whole-dataset row (no Qt)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fcn_viewer.evaluation import Evaluation, ImageScores
from fcn_viewer.model.stages import Stage

METRICS: tuple[tuple[str, str], ...] = (("acc", "pixel_accuracy"), ("mIoU", "mean_iou"), ("BF", "boundary_f1"))


@dataclass(frozen=True)
class TableRow:
    """One line: an image (with its path) or the dataset row; ``values`` follow :func:`column_names` after 'image'."""

    name: str
    values: tuple[float, ...]
    path: Path | None = None
    error: str | None = None

    @property
    def is_dataset(self) -> bool:
        return self.path is None


def column_names(stages: Sequence[Stage]) -> list[str]:
    """'image', then e.g. '32s acc', '32s mIoU', '32s BF', '16s acc', ..."""
    return ["image", *(f"{stage} {short}" for stage in stages for short, _ in METRICS)]


def by_stage(summaries: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """``{model: {stage: summary}}`` → ``{stage: summary}``: one net's stages, or each separately trained net's own."""
    return {stage: summary for stages in summaries.values() for stage, summary in stages.items()}


def _values(summaries: dict[str, dict[str, dict[str, Any]]], stages: Sequence[Stage]) -> tuple[float, ...]:
    flat = by_stage(summaries)
    return tuple(float(flat[stage][key]) if stage in flat else math.nan for stage in stages for _, key in METRICS)


def image_row(scores: ImageScores, stages: Sequence[Stage]) -> TableRow:
    """An image's own pixel accuracy, mIoU and BF per stage (NaN where it was skipped)."""
    return TableRow(scores.path.name, _values(scores.summaries, stages), scores.path, scores.error)


def dataset_row(evaluation: Evaluation, stages: Sequence[Stage]) -> TableRow:
    """The numbers `fcn-viewer evaluate` prints: accuracy and mIoU over all scored pixels, BF averaged over images."""
    done = "" if not evaluation.cancelled else ", stopped early"
    return TableRow(f"dataset ({evaluation.images} images{done})", _values(evaluation.summaries(), stages))
