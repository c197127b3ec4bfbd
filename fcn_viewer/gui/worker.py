"""Model loading and inference on a QThread, so the window never waits on the network or the disk."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from PySide6.QtCore import QObject, QThread, Signal, Slot

from fcn_viewer.errors import DeviceError, FCNViewerError
from fcn_viewer.gui.background import start_in_background
from fcn_viewer.gui.panel_content import ViewResult
from fcn_viewer.imageio import load_image
from fcn_viewer.inference import Precision, Segmenter, release_device_memory, resolve_device
from fcn_viewer.model.config import Variant
from fcn_viewer.weights.download import DownloadCancelled, Progress
from fcn_viewer.weights.loader import LoadedModel, load_entry, load_weights_file
from fcn_viewer.weights.meta import ModelMeta
from fcn_viewer.weights.registry import RegistryEntry


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: a registry entry (downloaded first if allowed) or a weights file."""

    entry: RegistryEntry | None = None
    path: Path | None = None
    arch: Variant | None = None
    allow_download: bool = False

    @property
    def label(self) -> str:
        return self.entry.name if self.entry is not None else Path(str(self.path)).name

    @property
    def setting(self) -> str:
        """How the settings remember it: the registry name or the file path."""
        return self.entry.name if self.entry is not None else str(Path(str(self.path)).absolute())

    def load(self, progress: Callable[[Progress], None], cancel: Callable[[], bool]) -> LoadedModel:
        if self.entry is not None:
            return load_entry(self.entry, allow_download=self.allow_download, progress=progress, cancel=cancel)
        return load_weights_file(Path(str(self.path)), arch=self.arch)


@dataclass(frozen=True)
class ModelInfo:
    """A model the worker has ready, the device it runs on, and why that is not the device chosen (if not)."""

    meta: ModelMeta
    source: ModelSource
    device: str
    note: str = ""


def device_or_cpu(choice: str) -> tuple[torch.device, str]:
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


class InferenceWorker(QObject):
    """Lives on the inference thread: loads models, moves them between devices, segments images.

    Requests arrive in order; an image request older than the newest one is skipped unrun. A model
    load or device move that fails, for whatever reason, leaves the previous model in use.
    """

    modelReady = Signal(int, object)  # job id, ModelInfo
    resultReady = Signal(int, object)  # job id, ViewResult
    failed = Signal(int, str)  # job id, message naming the file
    cancelled = Signal(int, str)  # job id, message
    downloadProgress = Signal(int, object)  # job id, Progress

    def __init__(self) -> None:
        super().__init__()
        self.cancel_download = threading.Event()
        self.latest_image_job = 0  # written by the GUI thread before each image request
        self._segmenter: Segmenter | None = None
        self._source: ModelSource | None = None

    @Slot(int, object, str, str)
    def load_model(self, job: int, source: ModelSource, device_choice: str, precision: Precision) -> None:
        self.cancel_download.clear()
        device, note = device_or_cpu(device_choice)
        try:
            loaded = source.load(lambda p: self.downloadProgress.emit(job, p), self.cancel_download.is_set)
            segmenter = Segmenter(loaded, device, precision=precision)
        except DownloadCancelled as error:
            self.cancelled.emit(job, str(error))
            return
        except Exception as error:  # a hostile or broken file must never take the worker (or its model) down
            release_device_memory()
            self.failed.emit(job, f"cannot load model {source.label}: {_reason(error)}")
            return
        self._use(segmenter, source)
        self.modelReady.emit(job, ModelInfo(loaded.meta, source, describe_device(segmenter), note))

    @Slot(int, str, str)
    def set_device(self, job: int, device_choice: str, precision: Precision) -> None:
        current, source = self._segmenter, self._source
        if current is None or source is None:
            self.failed.emit(job, "no model is loaded: the device is used for the next model you load")
            return
        device, note = device_or_cpu(device_choice)
        try:
            segmenter = current.moved_to(device, precision)
        except Exception as error:  # e.g. out of GPU memory: the model stays where it was
            release_device_memory()
            where = describe_device(current)
            self.failed.emit(job, f"cannot move the model to {device.type}: {_reason(error)}; it stays on {where}")
            return
        self._use(segmenter, source)
        self.modelReady.emit(job, ModelInfo(current.meta, source, describe_device(segmenter), note))

    def _use(self, segmenter: Segmenter, source: ModelSource) -> None:
        """Swaps in a ready segmenter; the previous model's device memory is given back."""
        self._segmenter, self._source = segmenter, source
        release_device_memory()

    @Slot(int, object)
    def segment(self, job: int, path: Path) -> None:
        if job < self.latest_image_job:
            return
        try:
            image = load_image(path)
            if self._segmenter is None:
                self.resultReady.emit(job, ViewResult(path, image))
                return
            started = time.perf_counter()
            segmentation = self._segmenter.segment(image)
            elapsed = (time.perf_counter() - started) * 1000
            meta, device = self._segmenter.meta, describe_device(self._segmenter)
            result = ViewResult.build(path, segmentation, meta, elapsed, device)
        except FCNViewerError as error:
            self.failed.emit(job, str(error))
            return
        except Exception as error:  # e.g. out of GPU memory: report it and free what can be freed
            release_device_memory()
            self.failed.emit(job, f"{path}: inference failed ({_reason(error)})")
            return
        self.resultReady.emit(job, result)


def _reason(error: Exception) -> str:
    """The message of one of our errors; other exceptions are named too, as their text alone may be cryptic."""
    return str(error) if isinstance(error, FCNViewerError) else f"{type(error).__name__}: {error}"


class InferenceService(QObject):
    """The GUI thread's handle on the worker: numbers every request and forwards the worker's answers."""

    modelReady = Signal(int, object)
    resultReady = Signal(int, object)
    failed = Signal(int, str)
    cancelled = Signal(int, str)
    downloadProgress = Signal(int, object)
    _loadRequested = Signal(int, object, str, str)
    _deviceRequested = Signal(int, str, str)
    _segmentRequested = Signal(int, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._last_job = 0
        self._thread = QThread()
        self._thread.setObjectName("fcn-viewer inference")
        self._worker = InferenceWorker()
        self._worker.moveToThread(self._thread)
        self._loadRequested.connect(self._worker.load_model)
        self._deviceRequested.connect(self._worker.set_device)
        self._segmentRequested.connect(self._worker.segment)
        for name in ("modelReady", "resultReady", "failed", "cancelled", "downloadProgress"):
            getattr(self._worker, name).connect(getattr(self, name))
        start_in_background(self._thread)

    def _new_job(self) -> int:
        self._last_job += 1
        return self._last_job

    def load_model(self, source: ModelSource, device_choice: str, precision: Precision = "auto") -> int:
        job = self._new_job()
        self._loadRequested.emit(job, source, device_choice, precision)
        return job

    def set_device(self, device_choice: str, precision: Precision = "auto") -> int:
        """Moves the model to another device, or runs it at another precision (a new segmenter either way)."""
        job = self._new_job()
        self._deviceRequested.emit(job, device_choice, precision)
        return job

    def segment(self, path: Path) -> int:
        job = self._new_job()
        self._worker.latest_image_job = job
        self._segmentRequested.emit(job, path)
        return job

    def cancel_download(self) -> None:
        self._worker.cancel_download.set()

    def shutdown(self) -> None:
        """Stops the thread after the job in hand (a download is cancelled first)."""
        self._worker.cancel_download.set()
        self._thread.quit()
        self._thread.wait()
