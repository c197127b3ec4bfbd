"""The viewer's request state machine without Qt: which image and model are current, which answers are stale,
whether work is pending, and the one immutable frame per image that the window draws in one step."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from fcn_viewer.device_choice import DeviceChoice
from fcn_viewer.options import Precision
from fcn_viewer.view.outcome import JobCancelled, JobFailed
from fcn_viewer.view.panel_content import ViewResult
from fcn_viewer.weights.download import Progress
from fcn_viewer.weights.loader import ModelSource
from fcn_viewer.weights.meta import ModelMeta

if TYPE_CHECKING:
    from fcn_viewer.inference import Segmenter

APP_NAME = "fcn-viewer"


@dataclass(frozen=True)
class ModelInfo:
    """A model the worker has ready, the device it runs on, and why that is not the device chosen (if not).

    ``segmenter`` is the loaded net itself, on that device at the precision chosen: every tab runs this one copy
    (None from a backend that loads no net)."""

    meta: ModelMeta
    source: ModelSource
    device: str
    note: str = ""
    segmenter: Segmenter | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ViewerFrame:
    """Everything the window shows of one image (photo, panels, legend shares, info, title, status): drawn in
    one step, so no two of them can belong to different images."""

    result: ViewResult

    @property
    def path(self) -> Path:
        return self.result.path

    @property
    def title(self) -> str:
        return f"{self.result.path.name} — {APP_NAME}"

    @property
    def status(self) -> str:
        """The timing line for the status bar ("" when no model ran)."""
        result = self.result
        if result.segmentation is None:
            return ""
        return "; ".join([f"{result.path.name}: {result.elapsed_ms:.0f} ms on {result.device}", *result.notes])


@dataclass(frozen=True)
class Failure:
    """A load, device move or image that failed: what to tell the user."""

    message: str  # the worker's message, naming the file
    shown: str  # the message as shown (with the model still in use, after a model failure)
    model_failed: bool  # a model load or move failed (else an image)
    path: Path | None  # the image that failed, for an image failure
    no_model: bool  # no model is loaded now


class InferenceBackend(Protocol):
    """Runs the viewer's jobs off the caller's thread and answers each through :meth:`ViewerModel.answer`."""

    def load_model(self, job: int, source: ModelSource, device: DeviceChoice, precision: Precision) -> None: ...

    def set_device(self, job: int, device: DeviceChoice, precision: Precision) -> None: ...

    def segment(self, job: int, path: Path) -> None: ...

    def cancel_download(self) -> None: ...

    def shutdown(self) -> None: ...


class ViewerListener(Protocol):
    """What the window does when the viewer model changes (all calls on the caller's thread)."""

    def frame_changed(self, frame: ViewerFrame) -> None: ...

    def model_changed(self, info: ModelInfo, classes_changed: bool) -> None: ...

    def busy_changed(self, busy: bool, message: str) -> None: ...

    def job_failed(self, failure: Failure) -> None: ...

    def job_cancelled(self, message: str) -> None: ...

    def download_progress(self, progress: Progress) -> None: ...


class ViewerModel:
    """Owns the current image, model, device and precision, numbers every job and drops stale answers.

    Requests go to the backend; its answers come back through :meth:`answer` (on this model's thread). An image's
    result becomes the new :class:`ViewerFrame` only while that image is still the current one.
    """

    def __init__(self, backend: InferenceBackend, listener: ViewerListener, device: DeviceChoice = "auto",
                 exact_fp32: bool = False) -> None:
        self.backend = backend
        self.listener = listener
        self.device: DeviceChoice = device
        self.exact_fp32 = exact_fp32
        self.model: ModelInfo | None = None
        self.current_path: Path | None = None  # the image asked for last (its frame may still be on its way)
        self.frame: ViewerFrame | None = None  # the image shown
        self._last_job = 0
        self._image_job = 0
        self._model_job = 0
        self._pending: set[int] = set()

    # ---- requests -----------------------------------------------------------------------------

    @property
    def precision(self) -> Precision:
        return "fp32" if self.exact_fp32 else "auto"

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    @property
    def model_expected(self) -> bool:
        """A model is in use or on its way."""
        return self.model is not None or self._model_job in self._pending

    def _new_job(self) -> int:
        self._last_job += 1
        return self._last_job

    def open_image(self, path: Path) -> None:
        """Makes ``path`` the current image; it is shown once the backend has read (and segmented) it."""
        self.current_path = Path(path).absolute()
        self._request_image(self.current_path)

    def _request_image(self, path: Path) -> None:
        self._pending.discard(self._image_job)  # an older image job's answer no longer matters
        self._image_job = self._new_job()
        self._pending.add(self._image_job)
        self.backend.segment(self._image_job, path)
        self.listener.busy_changed(True, f"Segmenting {path.name}…" if self.model else f"Opening {path.name}…")

    def load_model(self, source: ModelSource) -> None:
        """Loads ``source`` on the chosen device; the current image is segmented again once it is ready."""
        self._pending.discard(self._model_job)  # an older model job's answer no longer matters
        self._model_job = self._new_job()
        self._pending.add(self._model_job)
        self.backend.load_model(self._model_job, source, self.device, self.precision)
        self.listener.busy_changed(True, f"Loading model {source.label}…")

    def choose_device(self, device: DeviceChoice) -> bool:
        """Moves the model (if any) to ``device``; whether a move was asked for."""
        self.device = device
        return self._move(f"Moving the model to {device}…")

    def choose_exact_fp32(self, exact: bool) -> bool:
        """Runs the model in exact fp32 or at auto precision (bf16 where it qualifies); whether a change was asked for."""
        self.exact_fp32 = exact
        return self._move("Switching precision…")

    def _move(self, message: str) -> bool:
        if not self.model_expected:
            return False
        self._pending.discard(self._model_job)
        self._model_job = self._new_job()
        self._pending.add(self._model_job)
        self.backend.set_device(self._model_job, self.device, self.precision)
        self.listener.busy_changed(True, message)
        return True

    def cancel_download(self) -> None:
        self.backend.cancel_download()

    def shutdown(self) -> None:
        self.backend.shutdown()

    # ---- answers ------------------------------------------------------------------------------

    def answer(self, job: int, value: object) -> None:
        """An answer of the backend: a ViewResult, a ModelInfo, a JobFailed or a JobCancelled."""
        if isinstance(value, Progress):
            if job == self._model_job:
                self.listener.download_progress(value)
            return
        self._pending.discard(job)
        self.listener.busy_changed(self.busy, "")
        if isinstance(value, ViewResult):
            self._result_ready(job, value)
        elif isinstance(value, ModelInfo):
            self._model_ready(job, value)
        elif isinstance(value, JobFailed):
            self._failed(job, value.message)
        elif isinstance(value, JobCancelled) and job == self._model_job:  # a superseded image job says nothing
            self.listener.job_cancelled(value.message)

    def _result_ready(self, job: int, result: ViewResult) -> None:
        if job != self._image_job or result.path != self.current_path:
            return  # a stale answer for an image that is no longer the current one
        self.frame = ViewerFrame(result)
        self.listener.frame_changed(self.frame)

    def _model_ready(self, job: int, info: ModelInfo) -> None:
        if job != self._model_job:
            return
        changed = self.model is None or self.model.meta != info.meta
        self.model = info
        self.listener.model_changed(info, changed)
        image_job_follows = self._image_job > job and self._image_job in self._pending
        if self.current_path is not None and not image_job_follows:
            self._request_image(self.current_path)

    def _failed(self, job: int, message: str) -> None:
        if job not in (self._image_job, self._model_job):
            return
        model_failed = job == self._model_job
        kept = self.model if model_failed else None
        shown = f"{message} — still using {kept.meta.title} on {kept.device}." if kept else message
        path = None if model_failed else self.current_path
        self.listener.job_failed(Failure(message, shown, model_failed, path, self.model is None))
