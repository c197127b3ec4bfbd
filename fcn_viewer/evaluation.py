"""Scores models on a labelled dataset, every stage from one forward pass per image (used by CLI, training, GUI)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fcn_viewer.data import SegmentationDataset
from fcn_viewer.errors import FCNViewerError
from fcn_viewer.inference import Segmenter
from fcn_viewer.metrics import DEFAULT_TOLERANCE, BoundaryF1, ConfusionMatrix
from fcn_viewer.weights.loader import LoadedModel


@dataclass(frozen=True)
class EvaluationProgress:
    """Reported after each image: ``index`` of ``total`` (1-based), and the image's error if it was skipped."""

    index: int
    total: int
    path: Path
    mean_iou: float  # running mIoU of the first model's finest evaluated stage
    error: str | None = None


@dataclass
class StageScores:
    """The running confusion matrix and boundary F1 of one stage of one model."""

    confusion: ConfusionMatrix
    boundary: BoundaryF1

    @classmethod
    def create(cls, num_classes: int, ignore_index: int | None, tolerance: float) -> StageScores:
        return cls(ConfusionMatrix(num_classes, ignore_index), BoundaryF1(num_classes, ignore_index, tolerance))

    def update(self, prediction: np.ndarray, target: np.ndarray) -> None:
        self.confusion.update(prediction, target)
        self.boundary.update(prediction, target)

    def merge(self, other: StageScores) -> None:
        self.confusion.merge(other.confusion)
        self.boundary.merge(other.boundary)

    def summary(self) -> dict[str, Any]:
        """:meth:`ConfusionMatrix.summary` plus ``boundary_f1``."""
        return self.confusion.summary() | {"boundary_f1": self.boundary.value}


@dataclass(frozen=True)
class EvaluatedModel:
    """A model to score, under ``name``, on some of its stages (coarse to fine)."""

    name: str
    segmenter: Segmenter
    stages: tuple[str, ...]


@dataclass(frozen=True)
class ImageScores:
    """One image's own scores, ``{model name: {stage: summary}}`` as :meth:`StageScores.summary` gives them
    (empty when the image was skipped, with ``error`` saying why)."""

    index: int
    path: Path
    summaries: dict[str, dict[str, dict[str, Any]]]
    error: str | None = None


@dataclass
class Evaluation:
    """Scores per model name and stage, how many images were scored, why others were skipped, and
    whether the run was cancelled before the end."""

    scores: dict[str, dict[str, StageScores]]
    images: int = 0
    failures: list[str] = field(default_factory=list)
    cancelled: bool = False

    def summaries(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {name: {stage: s.summary() for stage, s in stages.items()} for name, stages in self.scores.items()}


def evaluate_models(
    models: Sequence[EvaluatedModel],
    dataset: SegmentationDataset,
    tolerance: float = DEFAULT_TOLERANCE,
    limit: int | None = None,
    progress: Callable[[EvaluationProgress], None] | None = None,
    image_scores: Callable[[ImageScores], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Evaluation:
    """Runs every model once per image of ``dataset`` (its first ``limit`` images) and scores each stage.

    An image (or label) that cannot be read, or whose inference fails, is skipped for all models
    alike and its error recorded in ``failures``. Segmenters put their nets in eval mode. Each image is
    scored on its own and added to the totals, so ``image_scores`` receives per-image numbers at no extra
    cost; ``cancel`` is asked before each image and stops the run (``cancelled`` is then set).
    """
    if not models:
        raise ValueError("no models to evaluate")
    count = len(dataset) if limit is None else min(limit, len(dataset))
    evaluation = Evaluation(
        {
            model.name: {
                stage: StageScores.create(model.segmenter.meta.config.num_classes, dataset.ignore_index, tolerance)
                for stage in model.stages
            }
            for model in models
        }
    )
    watched = evaluation.scores[models[0].name][models[0].stages[-1]]
    for index in range(count):
        if cancel is not None and cancel():
            evaluation.cancelled = True
            break
        path = dataset.samples[index].image_path
        error = None
        single: dict[str, dict[str, dict[str, Any]]] = {}
        try:
            image, label = dataset[index]
            results = [model.segmenter.segment(image) for model in models]
        except FCNViewerError as failure:
            error = str(failure)
        except RuntimeError as failure:  # e.g. CUDA out of memory
            error = f"{path}: inference failed ({failure})"
        else:
            for model, result in zip(models, results):
                for stage in model.stages:
                    total = evaluation.scores[model.name][stage]
                    alone = StageScores.create(total.confusion.num_classes, dataset.ignore_index, tolerance)
                    alone.update(result.mask(stage), label)
                    total.merge(alone)
                    single.setdefault(model.name, {})[stage] = alone.summary()
            evaluation.images += 1
        if error is not None:
            evaluation.failures.append(error)
        if image_scores is not None:
            image_scores(ImageScores(index, path, single, error))
        if progress is not None:
            progress(EvaluationProgress(index + 1, count, path, watched.confusion.summary()["mean_iou"], error))
    return evaluation


def evaluate_model(
    loaded: LoadedModel,
    dataset: SegmentationDataset,
    device: str | torch.device = "auto",
    tolerance: float = DEFAULT_TOLERANCE,
    limit: int | None = None,
    progress: Callable[[EvaluationProgress], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Every stage of one model: ``{stage: summary() plus boundary_f1}``."""
    model = EvaluatedModel(loaded.meta.name, Segmenter(loaded, device), loaded.meta.config.stages)
    return evaluate_models([model], dataset, tolerance, limit, progress).summaries()[model.name]
