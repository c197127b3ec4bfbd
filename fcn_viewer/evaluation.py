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

    def summary(self) -> dict[str, Any]:
        """:meth:`ConfusionMatrix.summary` plus ``boundary_f1``."""
        return self.confusion.summary() | {"boundary_f1": self.boundary.value}


@dataclass(frozen=True)
class EvaluatedModel:
    """A model to score, under ``name``, on some of its stages (coarse to fine)."""

    name: str
    segmenter: Segmenter
    stages: tuple[str, ...]


@dataclass
class Evaluation:
    """Scores per model name and stage, how many images were scored, and why others were skipped."""

    scores: dict[str, dict[str, StageScores]]
    images: int = 0
    failures: list[str] = field(default_factory=list)

    def summaries(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {name: {stage: s.summary() for stage, s in stages.items()} for name, stages in self.scores.items()}


def evaluate_models(
    models: Sequence[EvaluatedModel],
    dataset: SegmentationDataset,
    tolerance: float = DEFAULT_TOLERANCE,
    limit: int | None = None,
    progress: Callable[[EvaluationProgress], None] | None = None,
) -> Evaluation:
    """Runs every model once per image of ``dataset`` (its first ``limit`` images) and scores each stage.

    An image (or label) that cannot be read, or whose inference fails, is skipped for all models
    alike and its error recorded in ``failures``. Segmenters put their nets in eval mode.
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
        path = dataset.samples[index].image_path
        error = None
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
                    evaluation.scores[model.name][stage].update(result.mask(stage), label)
            evaluation.images += 1
        if error is not None:
            evaluation.failures.append(error)
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
