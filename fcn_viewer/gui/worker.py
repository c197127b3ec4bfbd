"""The viewer's inference backend: model loading, device moves and segmentation on a job queue, so the window
never waits on the network or the disk."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import torch
from PySide6.QtCore import QObject

from fcn_viewer.device_choice import DeviceChoice
from fcn_viewer.errors import DeviceError, FCNViewerError
from fcn_viewer.gui.jobs import Job, JobQueue
from fcn_viewer.imageio import load_image
from fcn_viewer.inference import Segmenter, release_device_memory, resolve_device
from fcn_viewer.options import Precision
from fcn_viewer.view.outcome import JobCancelled, JobFailed, error_message
from fcn_viewer.view.panel_content import ViewResult
from fcn_viewer.view.viewer_model import ModelInfo
from fcn_viewer.weights.download import DownloadCancelled, Progress
from fcn_viewer.weights.loader import LoadedModel, ModelSource, load_model


class SegmenterFactory(Protocol):
    """Makes the segmenter of a loaded model (tests pass one that downscales sooner, say)."""

    def __call__(self, loaded: LoadedModel, device: torch.device, *, precision: Precision = "auto") -> Segmenter: ...


ModelLoader = Callable[[ModelSource, Callable[[Progress], None], Callable[[], bool]], LoadedModel]


def load_source(source: ModelSource, progress: Callable[[Progress], None], cancel: Callable[[], bool]) -> LoadedModel:
    return load_model(source, progress=progress, cancel=cancel)


def device_or_cpu(choice: DeviceChoice) -> tuple[torch.device, str]:
    """The device chosen or, when this machine lacks it, the CPU and a note saying so."""
    try:
        return resolve_device(choice), ""
    except DeviceError as error:
        return torch.device("cpu"), f"{error}: the model runs on the CPU instead."


def describe_device(segmenter: Segmenter) -> str:
    """Where and how the net runs, e.g. ``cuda (NVIDIA H100), bfloat16`` or ``cpu``."""
    device = segmenter.device
    where = f"cuda ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else device.type
    return where if segmenter.dtype == torch.float32 else f"{where}, {str(segmenter.dtype).removeprefix('torch.')}"


class InferenceService:
    """Loads models, moves them between devices and segments images, one job at a time on its own thread.

    The caller numbers the jobs; answers (ModelInfo, ViewResult, JobFailed, JobCancelled, download Progress)
    arrive through ``jobs.finished`` and ``jobs.progress``. An image job is dropped unrun when a newer one
    comes; a model load or device move that fails, for whatever reason, leaves the previous model in use.
    """

    def __init__(self, parent: QObject | None = None, make_segmenter: SegmenterFactory = Segmenter,
                 load: ModelLoader = load_source) -> None:
        self.jobs = JobQueue("fcn-viewer inference", parent, on_error=release_device_memory)
        self._make_segmenter = make_segmenter
        self._load = load
        self._segmenter: Segmenter | None = None  # read and written on the queue's thread only
        self._source: ModelSource | None = None

    @property
    def segmenter(self) -> Segmenter | None:
        """The segmenter in use (for tests and diagnostics; it changes on the queue's thread)."""
        return self._segmenter

    def load_model(self, job: int, source: ModelSource, device: DeviceChoice, precision: Precision) -> None:
        def work(handle: Job) -> object:
            target, note = device_or_cpu(device)
            try:
                loaded = self._load(source, handle.progress, handle.cancelled)
            except DownloadCancelled as error:
                return JobCancelled(str(error))
            segmenter = self._make_segmenter(loaded, target, precision=precision)
            self._use(segmenter, source)
            return ModelInfo(loaded.meta, source, describe_device(segmenter), note, segmenter)

        self.jobs.submit(work, key="load", number=job,
                         describe=lambda error: f"cannot load model {source.label}: {error_message(error)}")

    def set_device(self, job: int, device: DeviceChoice, precision: Precision) -> None:
        """Moves the model to another device, or runs it at another precision (a new segmenter either way)."""
        def work(_: Job) -> object:
            current, source = self._segmenter, self._source
            if current is None or source is None:
                return JobFailed("no model is loaded: the device is used for the next model you load")
            target, note = device_or_cpu(device)
            try:
                segmenter = current.moved_to(target, precision)
            except Exception as error:  # e.g. out of GPU memory: the model stays where it was
                release_device_memory()
                where = describe_device(current)
                return JobFailed(f"cannot move the model to {target.type}: {error_message(error)}; it stays on {where}")
            self._use(segmenter, source)
            return ModelInfo(current.meta, source, describe_device(segmenter), note, segmenter)

        self.jobs.submit(work, number=job)

    def _use(self, segmenter: Segmenter, source: ModelSource) -> None:
        """Swaps in a ready segmenter; the previous model's device memory is given back."""
        self._segmenter, self._source = segmenter, source
        release_device_memory()

    def segment(self, job: int, path: Path) -> None:
        def work(_: Job) -> object:
            opened = time.perf_counter()
            image = load_image(path)
            segmenter = self._segmenter
            if segmenter is None:
                return ViewResult(path, image)
            started = time.perf_counter()
            segmentation = segmenter.segment(image)
            elapsed = (time.perf_counter() - started) * 1000
            return ViewResult.build(path, segmentation, segmenter.meta, elapsed, describe_device(segmenter),
                                    segmenter.precision_note, 1000 * (started - opened))

        def describe(error: Exception) -> str:
            if isinstance(error, FCNViewerError):
                return str(error)
            return f"{path}: inference failed ({error_message(error)})"

        self.jobs.submit(work, key="image", number=job, describe=describe)

    def cancel_download(self) -> None:
        self.jobs.cancel("load")

    def shutdown(self) -> None:
        """Stops the thread after the job in hand (a download is cancelled first)."""
        self.jobs.shutdown()
