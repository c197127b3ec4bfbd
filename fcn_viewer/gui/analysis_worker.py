"""The teaching views' worker threads: one compares, scores and draws the shown image, one scores whole datasets, so
neither the window, nor opening an image, nor the shown image's comparison waits for a dataset run."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from fcn_viewer.classes import Color
from fcn_viewer.compare import CompareMode
from fcn_viewer.data import SegmentationDataset
from fcn_viewer.errors import FCNViewerError
from fcn_viewer.evaluation import EvaluatedModel, evaluate_models
from fcn_viewer.gui.background import start_in_background
from fcn_viewer.gui.panel_content import ViewResult
from fcn_viewer.gui.worker import ModelSource, device_or_cpu
from fcn_viewer.image_analysis import GroundTruth, analyse, analysis_pictures
from fcn_viewer.inference import Segmenter, release_device_memory
from fcn_viewer.weights.loader import LoadedModel, load_entry
from fcn_viewer.weights.registry import RegistryEntry


@dataclass(frozen=True)
class Nets:
    """Which nets to score: the viewer's model (every stage) or the separately trained family (each its own stage)."""

    mode: CompareMode
    source: ModelSource | None
    family: tuple[RegistryEntry, ...]
    device: str

    @property
    def model_name(self) -> str:
        return self.source.label if self.source is not None and self.source.entry is not None else ""


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


def reason(error: Exception) -> str:
    """Our errors by their message; others by type too, as their text alone may be cryptic."""
    return str(error) if isinstance(error, FCNViewerError) else f"{type(error).__name__}: {error}"


class SegmenterPool:
    """One Segmenter per net and device, loaded once and shared by both threads (inference only reads a net)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._segmenters: dict[tuple[str, str], Segmenter] = {}

    def get(self, key: str, device: str, load: Callable[[], LoadedModel]) -> Segmenter:
        """The net ``key`` on the chosen device (the CPU where that device is missing)."""
        with self._lock:
            if (key, device) not in self._segmenters:
                self._segmenters[(key, device)] = Segmenter(load(), device_or_cpu(device)[0])
            return self._segmenters[(key, device)]

    def member(self, member: RegistryEntry, device: str) -> Segmenter:
        return self.get(member.name, device, lambda: load_entry(member))

    def clear(self) -> None:
        """Forgets every net, so the next request reads the files again (they may have been replaced)."""
        with self._lock:
            self._segmenters.clear()


class ImageAnalyst(QObject):
    """Lives on the image thread: masks of the chosen nets for the shown image, compared, scored and drawn."""

    analysed = Signal(int, object, object)  # job, ImageAnalysis, AnalysisPictures
    failed = Signal(int, str)

    def __init__(self, pool: SegmenterPool) -> None:
        super().__init__()
        self.pool = pool
        self.latest = 0  # written by the GUI thread before each request: older ones are skipped

    @Slot(int, object)
    def analyse(self, job: int, request: AnalysisRequest) -> None:
        if job < self.latest:
            return
        result, nets = request.result, request.nets
        assert result.segmentation is not None and result.meta is not None and result.masks is not None
        segmentation = result.segmentation
        own = {stage: arrays.classes for stage, arrays in result.masks.items()}  # the viewer's pass, argmax done
        missing: list[str] = []
        try:
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
                        masks[stage] = self.pool.member(member, nets.device).segment(result.image).mask()
                    else:
                        missing.append(member.name)
                        continue
                    titles[stage] = f"{member.name} (own net)"
            analysis = analyse(result.path, nets.mode, masks, titles, request.radius, request.ground_truth,
                               tuple(missing))
            pictures = analysis_pictures(analysis, result.image, request.palette, request.opacity,
                                         request.ground_truth)
        except Exception as error:  # a broken family file or out of memory: report it, keep the thread alive
            release_device_memory()
            self.failed.emit(job, f"{result.path.name}: comparison failed ({reason(error)})")
            return
        self.analysed.emit(job, analysis, pictures)


class DatasetScorer(QObject):
    """Lives on the dataset thread: every image of a split, scored per image and in total, until stopped."""

    imageScored = Signal(int, object)  # job, ImageScores
    datasetDone = Signal(int, object)  # job, Evaluation
    failed = Signal(int, str)

    def __init__(self, pool: SegmenterPool) -> None:
        super().__init__()
        self.pool = pool
        self.stop_through = 0  # jobs up to this number stop before their next image (written by the GUI thread)

    @Slot(int, object)
    def score(self, job: int, request: DatasetRequest) -> None:
        nets = request.nets

        def stopped() -> bool:
            return self.stop_through >= job

        try:
            if nets.mode == "stages":
                assert nets.source is not None
                source = nets.source
                segmenter = self.pool.get(source.setting, nets.device, lambda: source.load(lambda _: None, stopped))
                models = [EvaluatedModel(source.label, segmenter, segmenter.meta.config.stages)]
            else:
                models = [
                    EvaluatedModel(member.name, self.pool.member(member, nets.device), member.stages[-1:])
                    for member in nets.family
                    if member.available
                ]
            evaluation = evaluate_models(
                models, request.dataset, request.tolerance,
                image_scores=lambda scores: self.imageScored.emit(job, scores), cancel=stopped,
            )
        except Exception as error:  # as above; images that fail alone are skipped by evaluate_models
            release_device_memory()
            self.failed.emit(job, f"dataset scoring failed: {reason(error)}")
            return
        self.datasetDone.emit(job, evaluation)


class AnalysisService(QObject):
    """The GUI thread's handle on both workers: numbers requests and forwards the answers."""

    analysed = Signal(int, object, object)
    imageScored = Signal(int, object)
    datasetDone = Signal(int, object)
    failed = Signal(int, str)
    _analyseRequested = Signal(int, object)
    _datasetRequested = Signal(int, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._last_job = 0
        self._pending: tuple[int, AnalysisRequest] | None = None
        # Waking the image thread hands it the GIL; sent from the event loop, that does not lengthen the caller's
        # event (such as the window's handling of a new result), and requests made meanwhile go as the latest one.
        self._send_timer = QTimer(self, singleShot=True, interval=0)
        self._send_timer.timeout.connect(self._send_analysis)
        self.pool = SegmenterPool()
        self._analyst, self._scorer = ImageAnalyst(self.pool), DatasetScorer(self.pool)
        self._threads: list[QThread] = []
        for worker, name in ((self._analyst, "fcn-viewer analysis"), (self._scorer, "fcn-viewer dataset")):
            thread = QThread()
            thread.setObjectName(name)
            worker.moveToThread(thread)
            worker.failed.connect(self.failed)
            self._threads.append(thread)
        self._analyseRequested.connect(self._analyst.analyse)
        self._datasetRequested.connect(self._scorer.score)
        self._analyst.analysed.connect(self.analysed)
        self._scorer.imageScored.connect(self.imageScored)
        self._scorer.datasetDone.connect(self.datasetDone)
        for thread in self._threads:
            start_in_background(thread)

    def _new_job(self) -> int:
        self._last_job += 1
        return self._last_job

    def analyse(self, request: AnalysisRequest) -> int:
        """Numbers the request now and sends it to the image thread on the event loop's next pass."""
        job = self._new_job()
        self._analyst.latest = job
        self._pending = (job, request)
        self._send_timer.start()
        return job

    def _send_analysis(self) -> None:
        if self._pending is not None:
            self._analyseRequested.emit(*self._pending)
            self._pending = None

    def score_dataset(self, request: DatasetRequest) -> int:
        job = self._new_job()
        self._scorer.stop_through = job - 1  # a run in progress stops before its next image
        self._datasetRequested.emit(job, request)
        return job

    def cancel_dataset(self) -> None:
        self._scorer.stop_through = self._last_job

    def shutdown(self) -> None:
        """Stops both threads after the jobs in hand (a dataset run is cancelled first, an unsent request dropped)."""
        self._send_timer.stop()
        self.cancel_dataset()
        for thread in self._threads:
            thread.quit()
        for thread in self._threads:
            thread.wait()
