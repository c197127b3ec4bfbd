"""The classroom's backend: the teaching tabs' work on job queues, so neither the window, nor opening an image,
nor the shown image's comparison waits: one queue compares, scores and draws the shown image, one scores whole
datasets, one splits the logits for the contributions tab, one plays a frame sequence, one runs the lessons. Every answer goes to
:meth:`fcn_viewer.view.classroom_model.ClassroomModel.answer`, which numbered the job."""

from __future__ import annotations

import threading
from collections.abc import Callable

import torch
from PySide6.QtCore import QObject

from fcn_viewer.evaluation import EvaluatedModel, Evaluation, evaluate_models
from fcn_viewer.gui.jobs import Job, JobQueue
from fcn_viewer.gui.worker import ModelLoader, device_or_cpu, load_source
from fcn_viewer.inference import Segmenter, release_device_memory
from fcn_viewer.options import Precision
from fcn_viewer.teaching.image_analysis import analyse, analysis_pictures
from fcn_viewer.teaching.sequence import FramePictures, export_gif, segment_frame
from fcn_viewer.view.classroom_jobs import (
    Analysed,
    AnalysisRequest,
    ContributionRequest,
    DatasetRequest,
    Exported,
    ExportRequest,
    FrameRequest,
    Nets,
    split_contributions,
)
from fcn_viewer.view.lesson_jobs import LessonRequest, run_lesson
from fcn_viewer.view.outcome import error_message
from fcn_viewer.weights.loader import ModelSource, RegistrySource
from fcn_viewer.weights.registry import RegistryEntry


def placement(nets: Nets) -> tuple[torch.device, Precision]:
    """Where and how every other net runs: as the viewer's model does (as chosen, where it runs no net)."""
    net = nets.model.segmenter if nets.model is not None else None
    if net is not None:
        return net.device, net.precision
    return device_or_cpu(nets.device)[0], nets.precision


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
        return self.get(nets.model.source, *placement(nets), cancel)

    def member(self, member: RegistryEntry, nets: Nets) -> Segmenter:
        """A net of the family: the viewer's own where it is that net, else a copy where and as the viewer runs."""
        if nets.model is not None and member.name == nets.model_name:
            return self.model(nets)
        return self.get(RegistrySource(member), *placement(nets))

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


def play_frame(pool: SegmenterPool, request: FrameRequest) -> FramePictures:
    """One frame of a sequence segmented by the viewer's net and drawn."""
    segmenter = pool.model(request.nets)
    return segment_frame(request.source, request.index, segmenter.segment, request.palette, request.opacity)


def export_frames(pool: SegmenterPool, request: ExportRequest, job: Job) -> Exported:
    """Every frame's stage panels as an animated GIF; stops between frames when the job is cancelled."""
    segmenter = pool.model(request.nets)
    path = export_gif(request.target, request.source, segmenter.segment, request.palette, request.opacity,
                      request.fps, progress=lambda _, __: not job.cancelled())
    return Exported(path, len(request.source))


class ClassroomService:
    """The classroom model's backend (:class:`~fcn_viewer.view.classroom_model.ClassroomBackend`): four job
    queues sharing one pool of nets, so no kind of work waits for another. Answers arrive through each queue's
    ``finished`` (and the dataset queue's ``progress``, ImageScores); :meth:`answer_to` connects them all."""

    def __init__(self, parent: QObject | None = None, load: ModelLoader = load_source) -> None:
        self.pool = SegmenterPool(load)
        # wake_later: work asked for while the window handles a result does not lengthen that event
        self.images = JobQueue("fcn-viewer analysis", parent, on_error=release_device_memory, wake_later=True)
        self.datasets = JobQueue("fcn-viewer dataset", parent, on_error=release_device_memory)
        self.splits = JobQueue("fcn-viewer contributions", parent, on_error=release_device_memory, wake_later=True)
        self.frames = JobQueue("fcn-viewer sequence", parent, on_error=release_device_memory)
        self.lessons = JobQueue("fcn-viewer lessons", parent, on_error=release_device_memory, wake_later=True)
        self.queues = (self.images, self.datasets, self.splits, self.frames, self.lessons)

    def answer_to(self, answer: Callable[[int, object], None]) -> None:
        """Sends every answer, and every dataset run's scores on their way, to ``answer``."""
        for queue in self.queues:
            queue.finished.connect(answer)
        self.datasets.progress.connect(answer)

    def analyse(self, job: int, request: AnalysisRequest) -> None:
        """Queues the analysis; an older one not started yet is dropped."""
        name = request.result.path.name
        self.images.submit(lambda _: analyse_image(self.pool, request), key="image", number=job,
                           describe=lambda error: f"{name}: comparison failed ({error_message(error)})")

    def cancel_analysis(self) -> None:
        self.images.cancel("image")

    def score_dataset(self, job: int, request: DatasetRequest) -> None:
        """Queues the run; a run in progress stops before its next image."""
        self.datasets.submit(lambda handle: score_dataset(self.pool, request, handle), key="dataset", number=job,
                             describe=lambda error: f"dataset scoring failed: {error_message(error)}")

    def cancel_dataset(self) -> None:
        self.datasets.cancel("dataset")

    def split(self, job: int, request: ContributionRequest) -> None:
        """Queues the split; an older one not started yet is dropped."""
        self.splits.submit(lambda _: split_contributions(request), key="split", number=job)

    def play_frame(self, job: int, request: FrameRequest) -> None:
        """Queues the frame; a frame still waiting is dropped (the newest frame wins)."""
        self.frames.submit(lambda _: play_frame(self.pool, request), key="frame", number=job)

    def export_frames(self, job: int, request: ExportRequest) -> None:
        """Queues the export. No key: a frame never supersedes an export (none is asked for while exporting);
        only shutdown stops it."""
        self.frames.submit(lambda handle: export_frames(self.pool, request, handle), number=job)

    def lesson(self, job: int, request: LessonRequest) -> None:
        """Queues the lesson; an older one not started yet is dropped, a running one cut short (the newest wins)."""
        self.lessons.submit(lambda handle: run_lesson(self.pool.model(request.nets), request, handle.cancelled),
                            key="lesson", number=job,
                            describe=lambda error: f"the lesson failed: {error_message(error)}")

    def forget_nets(self) -> None:
        self.pool.clear()

    def shutdown(self) -> None:
        """Stops every thread after the job in hand (a dataset run or an export stops before its next image,
        queued requests are dropped)."""
        for queue in self.queues:
            queue.shutdown()
