"""The teaching views' background work on two job queues: one compares, scores and draws the shown image, one
scores whole datasets, so neither the window, nor opening an image, nor the shown image's comparison waits."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch
from PySide6.QtCore import QObject

from fcn_viewer.classes import Color
from fcn_viewer.data import SegmentationDataset
from fcn_viewer.device_choice import DeviceChoice
from fcn_viewer.evaluation import EvaluatedModel, Evaluation, evaluate_models
from fcn_viewer.gui.jobs import Job, JobQueue
from fcn_viewer.gui.worker import ModelLoader, device_or_cpu, load_source
from fcn_viewer.inference import Segmenter, release_device_memory
from fcn_viewer.options import Precision
from fcn_viewer.teaching.compare import CompareMode
from fcn_viewer.teaching.image_analysis import AnalysisPictures, GroundTruth, ImageAnalysis, analyse, analysis_pictures
from fcn_viewer.view.outcome import error_message
from fcn_viewer.view.panel_content import ViewResult
from fcn_viewer.view.viewer_model import ModelInfo
from fcn_viewer.weights.loader import ModelSource, RegistrySource
from fcn_viewer.weights.registry import RegistryEntry


@dataclass(frozen=True)
class Nets:
    """Which nets to score: the viewer's model (every stage) or the separately trained family (each its own stage).

    ``model`` is the viewer's model as it runs (its net is the one copy every tab uses); ``device`` and
    ``precision`` are the user's choice, for a backend that loads no net."""

    mode: CompareMode
    model: ModelInfo | None
    family: tuple[RegistryEntry, ...]
    device: DeviceChoice
    precision: Precision

    @property
    def source(self) -> ModelSource | None:
        return self.model.source if self.model is not None else None

    @property
    def model_name(self) -> str:
        return self.source.label if isinstance(self.source, RegistrySource) else ""

    def placement(self) -> tuple[torch.device, Precision]:
        """Where and how every other net runs: as the viewer's model does (as chosen, where it runs no net)."""
        net = self.model.segmenter if self.model is not None else None
        if net is not None:
            return net.device, net.precision
        return device_or_cpu(self.device)[0], self.precision


@dataclass(frozen=True)
class AnalysisRequest:
    """Analyse the shown result: compare its masks, score them against ``ground_truth``, and draw both in
    ``palette`` at ``opacity``."""

    result: ViewResult
    nets: Nets
    radius: float
    ground_truth: GroundTruth | None
    palette: tuple[Color, ...]
    opacity: float


@dataclass(frozen=True)
class DatasetRequest:
    """Score every image of ``dataset`` with ``nets``."""

    dataset: SegmentationDataset
    nets: Nets
    tolerance: float


@dataclass(frozen=True)
class Analysed:
    """The analysis of the shown image and its pictures, as drawn by the compare and ground-truth views."""

    analysis: ImageAnalysis
    pictures: AnalysisPictures


class SegmenterPool:
    """The nets the teaching views run: the viewer's own (the copy the viewer loaded), and each other net they need
    (the separately trained family) loaded once, on the viewer's device at its precision, and shared by every queue
    (inference only reads a net)."""

    def __init__(self, load: ModelLoader = load_source) -> None:
        self._load = load
        self._lock = threading.Lock()
        self._segmenters: dict[tuple[str, str, Precision], Segmenter] = {}

    def get(self, source: ModelSource, device: torch.device, precision: Precision,
            cancel: Callable[[], bool] = lambda: False) -> Segmenter:
        """The net of ``source`` on ``device`` at ``precision``, loaded on first use."""
        key = (source.setting, str(device), precision)
        with self._lock:
            if key not in self._segmenters:
                loaded = self._load(source, lambda _: None, cancel)
                self._segmenters[key] = Segmenter(loaded, device, precision=precision)
            return self._segmenters[key]

    def model(self, nets: Nets, cancel: Callable[[], bool] = lambda: False) -> Segmenter:
        """The viewer's model: the net the viewer runs (loaded here only for a backend that loads none)."""
        assert nets.model is not None
        if nets.model.segmenter is not None:
            return nets.model.segmenter
        return self.get(nets.model.source, *nets.placement(), cancel)

    def member(self, member: RegistryEntry, nets: Nets) -> Segmenter:
        """A net of the family: the viewer's own where it is that net, else a copy where and as the viewer runs."""
        if nets.model is not None and member.name == nets.model_name:
            return self.model(nets)
        return self.get(RegistrySource(member), *nets.placement())

    def clear(self) -> None:
        """Forgets every net loaded here, so the next request reads the files again (they may have been replaced)."""
        with self._lock:
            self._segmenters.clear()


def analyse_image(pool: SegmenterPool, request: AnalysisRequest) -> Analysed:
    """Masks of the chosen nets for the shown image, compared, scored against the ground truth and drawn."""
    result, nets = request.result, request.nets
    assert result.segmentation is not None and result.meta is not None and result.masks is not None
    segmentation = result.segmentation
    own = {stage: arrays.classes for stage, arrays in result.masks.items()}  # the viewer's pass, argmax done
    missing: list[str] = []
    if nets.mode == "stages":
        masks = {stage: own[stage] for stage in segmentation.stages}
        titles = {stage: f"{stage} stage of {result.meta.name}" for stage in masks}
    else:
        masks, titles = {}, {}
        for member in nets.family:
            stage = member.stages[-1]
            if member.name == nets.model_name and segmentation.stages[-1] == stage:
                masks[stage] = own[stage]  # the viewer's own pass
            elif member.available:
                masks[stage] = pool.member(member, nets).segment(result.image).mask()
            else:
                missing.append(member.name)
                continue
            titles[stage] = f"{member.name} (own net)"
    analysis = analyse(result.path, nets.mode, masks, titles, request.radius, request.ground_truth, tuple(missing))
    pictures = analysis_pictures(analysis, result.image, request.palette, request.opacity, request.ground_truth)
    return Analysed(analysis, pictures)


def score_dataset(pool: SegmenterPool, request: DatasetRequest, job: Job) -> Evaluation:
    """Every image of the dataset scored with the chosen nets, each image reported as it is done, until cancelled."""
    nets = request.nets
    if nets.mode == "stages":
        assert nets.source is not None
        segmenter = pool.model(nets, job.cancelled)
        models = [EvaluatedModel(nets.source.label, segmenter, segmenter.meta.config.stages)]
    else:
        models = [
            EvaluatedModel(member.name, pool.member(member, nets), member.stages[-1:])
            for member in nets.family
            if member.available
        ]
    return evaluate_models(models, request.dataset, request.tolerance, image_scores=job.progress, cancel=job.cancelled)


class AnalysisService:
    """Two job queues sharing one pool of nets: the shown image's analysis, and dataset scoring, so neither
    waits for the other. Answers arrive through ``images.finished`` (Analysed or JobFailed), and
    ``datasets.progress`` (ImageScores) and ``datasets.finished`` (Evaluation or JobFailed)."""

    def __init__(self, parent: QObject | None = None, load: ModelLoader = load_source) -> None:
        self.pool = SegmenterPool(load)
        self.images = JobQueue("fcn-viewer analysis", parent, on_error=release_device_memory, wake_later=True)
        self.datasets = JobQueue("fcn-viewer dataset", parent, on_error=release_device_memory)

    def analyse(self, request: AnalysisRequest) -> int:
        """Queues the analysis; an older one not started yet is dropped."""
        name = request.result.path.name
        return self.images.submit(lambda _: analyse_image(self.pool, request), key="image",
                                  describe=lambda error: f"{name}: comparison failed ({error_message(error)})")

    def score_dataset(self, request: DatasetRequest) -> int:
        """Queues the run; a run in progress stops before its next image."""
        return self.datasets.submit(lambda job: score_dataset(self.pool, request, job), key="dataset",
                                    describe=lambda error: f"dataset scoring failed: {error_message(error)}")

    def cancel_dataset(self) -> None:
        self.datasets.cancel("dataset")

    def shutdown(self) -> None:
        """Stops both threads after the jobs in hand (a dataset run is cancelled first, queued requests dropped)."""
        self.images.shutdown()
        self.datasets.shutdown()
