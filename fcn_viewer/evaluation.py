"""Scores models on a labelled dataset, every stage from one forward pass per image (used by CLI, training, GUI)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fcn_viewer.batching import Decoded, Failed, load_batches
from fcn_viewer.data import SegmentationDataset
from fcn_viewer.errors import FCNViewerError
from fcn_viewer.inference import Segmenter
from fcn_viewer.metrics import BoundaryF1, ConfusionMatrix
from fcn_viewer.model.stages import Stage
from fcn_viewer.options import DEFAULT_TOLERANCE
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
    stages: tuple[Stage, ...]


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

    def merge(self, other: Evaluation) -> None:
        """Adds the scores of another run over other images of the same models (e.g. another rank's share)."""
        for name, stages in other.scores.items():
            for stage, scores in stages.items():
                self.scores[name][stage].merge(scores)
        self.images += other.images
        self.failures += other.failures
        self.cancelled |= other.cancelled


def evaluate_models(
    models: Sequence[EvaluatedModel],
    dataset: SegmentationDataset,
    tolerance: float = DEFAULT_TOLERANCE,
    limit: int | None = None,
    progress: Callable[[EvaluationProgress], None] | None = None,
    image_scores: Callable[[ImageScores], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    *,
    batch_size: int = 1,
    workers: int = 0,
    indices: Sequence[int] | None = None,
) -> Evaluation:
    """Runs every model once per image of ``dataset`` (its first ``limit`` images) and scores each stage.

    An image (or label) that cannot be read, or whose inference fails, is skipped for all models
    alike and its error recorded in ``failures``. Segmenters put their nets in eval mode. Each image is
    scored on its own and added to the totals, so ``image_scores`` receives per-image numbers at no extra
    cost; ``cancel`` is asked before each batch and stops the run (``cancelled`` is then set).

    ``workers`` processes decode images ahead (0: in this one), and images of one size go through each
    model ``batch_size`` at a time; images may then be scored out of order (``image_scores`` gets each
    one's index, ``progress`` counts images done), but the totals do not depend on the order.
    ``indices`` picks the dataset images to score (default: the first ``limit``; ``limit`` is then ignored).
    """
    if not models:
        raise ValueError("no models to evaluate")
    if indices is None:
        indices = range(len(dataset) if limit is None else min(limit, len(dataset)))
    count = len(indices)
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
    done = 0
    batches = load_batches(indices, dataset.__getitem__, lambda pair: pair[0].shape[:2], batch_size, workers)
    with closing(batches):
        while done < count:
            if cancel is not None and cancel():
                evaluation.cancelled = True
                break
            for index, scores, error in _score_batch(models, next(batches), dataset, tolerance, indices):
                done += 1
                path = dataset.samples[index].image_path
                single: dict[str, dict[str, dict[str, Any]]] = {}
                for name, stages in scores.items():
                    for stage, alone in stages.items():
                        evaluation.scores[name][stage].merge(alone)
                        single.setdefault(name, {})[stage] = alone.summary()
                if error is None:
                    evaluation.images += 1
                else:
                    evaluation.failures.append(error)
                if image_scores is not None:
                    image_scores(ImageScores(index, path, single, error))
                if progress is not None:
                    progress(EvaluationProgress(done, count, path, watched.confusion.summary()["mean_iou"], error))
    return evaluation


_Scored = tuple[int, dict[str, dict[str, StageScores]], str | None]


def _score_batch(
    models: Sequence[EvaluatedModel],
    batch: list[Decoded[tuple[np.ndarray, np.ndarray]]] | Failed,
    dataset: SegmentationDataset,
    tolerance: float,
    indices: Sequence[int],
) -> list[_Scored]:
    """(dataset index, {model name: {stage: the image's own scores}}, None) for each image of ``batch`` (whose
    items are numbered by their position in ``indices``), or (dataset index, {}, error) for each when it could not
    be read or a model failed on it."""
    if isinstance(batch, Failed):
        return [(indices[batch.index], {}, batch.error)]
    images = [item.value[0] for item in batch]
    scores: list[dict[str, dict[str, StageScores]]] = [{} for _ in batch]
    try:
        for model in models:
            for own, result, item in zip(scores, model.segmenter.segment_batch(images), batch):
                own[model.name] = {}
                for stage in model.stages:
                    alone = StageScores.create(model.segmenter.meta.config.num_classes, dataset.ignore_index, tolerance)
                    alone.update(result.mask(stage), item.value[1])
                    own[model.name][stage] = alone
    except FCNViewerError as failure:
        return [(indices[item.index], {}, str(failure)) for item in batch]
    except RuntimeError as failure:  # e.g. CUDA out of memory
        paths = [dataset.samples[indices[item.index]].image_path for item in batch]
        return [(indices[item.index], {}, f"{path}: inference failed ({failure})") for item, path in zip(batch, paths)]
    return [(indices[item.index], own, None) for item, own in zip(batch, scores)]


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
