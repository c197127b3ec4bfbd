"""The viewer model without Qt: job numbers, stale answers, busy state and one frame per image."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fcn_viewer.device_choice import DeviceChoice
from fcn_viewer.inference import Precision
from fcn_viewer.view.outcome import JobCancelled, JobFailed
from fcn_viewer.view.panel_content import ViewResult
from fcn_viewer.view.viewer_model import Failure, ModelInfo, ViewerFrame, ViewerModel
from fcn_viewer.weights.download import Progress
from fcn_viewer.weights.loader import FileSource, ModelSource
from tests.helpers import tiny_compact_config, tiny_meta


class Backend:
    """Records the requests; the test answers them."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, int, object]] = []
        self.cancelled = 0

    def load_model(self, job: int, source: ModelSource, device: DeviceChoice, precision: Precision) -> None:
        self.requests.append(("load", job, (source, device, precision)))

    def set_device(self, job: int, device: DeviceChoice, precision: Precision) -> None:
        self.requests.append(("device", job, (device, precision)))

    def segment(self, job: int, path: Path) -> None:
        self.requests.append(("segment", job, path))

    def cancel_download(self) -> None:
        self.cancelled += 1

    def shutdown(self) -> None:
        pass

    def last(self, kind: str) -> int:
        return next(job for name, job, _ in reversed(self.requests) if name == kind)


class Listener:
    """Records what the window would draw."""

    def __init__(self) -> None:
        self.frames: list[ViewerFrame] = []
        self.models: list[ModelInfo] = []
        self.busy: list[bool] = []
        self.failures: list[Failure] = []
        self.cancelled: list[str] = []
        self.progress: list[Progress] = []

    def frame_changed(self, frame: ViewerFrame) -> None:
        self.frames.append(frame)

    def model_changed(self, info: ModelInfo, classes_changed: bool) -> None:
        self.models.append(info)

    def busy_changed(self, busy: bool, message: str) -> None:
        self.busy.append(busy)

    def job_failed(self, failure: Failure) -> None:
        self.failures.append(failure)

    def job_cancelled(self, message: str) -> None:
        self.cancelled.append(message)

    def download_progress(self, progress: Progress) -> None:
        self.progress.append(progress)


def viewer() -> tuple[ViewerModel, Backend, Listener]:
    backend, listener = Backend(), Listener()
    return ViewerModel(backend, listener), backend, listener


def photo(path: Path) -> ViewResult:
    return ViewResult(path, np.zeros((4, 6, 3), np.uint8))


def info(name: str = "tiny") -> ModelInfo:
    return ModelInfo(tiny_meta(tiny_compact_config(), name), FileSource(Path(f"{name}.safetensors")), "cpu")


def test_only_the_current_images_result_becomes_a_frame(tmp_path: Path) -> None:
    model, backend, listener = viewer()
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    model.open_image(a)
    first = backend.last("segment")
    model.open_image(b)
    second = backend.last("segment")
    assert model.busy and second > first
    model.answer(first, photo(a))  # stale: b was asked for since
    assert listener.frames == [] and model.busy
    model.answer(second, photo(b))
    assert [frame.path for frame in listener.frames] == [b] and not model.busy
    assert listener.frames[0].title == "b.png — fcn-viewer" and model.frame is listener.frames[0]


def test_a_failed_image_keeps_the_frame_and_names_the_file(tmp_path: Path) -> None:
    model, backend, listener = viewer()
    a, broken = tmp_path / "a.png", tmp_path / "broken.png"
    model.open_image(a)
    model.answer(backend.last("segment"), photo(a))
    model.open_image(broken)
    model.answer(backend.last("segment"), JobFailed(f"{broken}: not an image"))
    assert [frame.path for frame in listener.frames] == [a]
    assert listener.failures[0].path == broken and not listener.failures[0].model_failed
    assert not model.busy


def test_a_ready_model_segments_the_current_image_again_and_a_failed_one_keeps_the_last(tmp_path: Path) -> None:
    model, backend, listener = viewer()
    a = tmp_path / "a.png"
    model.open_image(a)
    model.answer(backend.last("segment"), photo(a))
    model.load_model(FileSource(tmp_path / "tiny.safetensors"))
    model.answer(backend.last("load"), info())
    assert model.model == info() and [name for name, _, _ in backend.requests] == ["segment", "load", "segment"]
    model.load_model(FileSource(tmp_path / "bad.safetensors"))
    model.answer(backend.last("load"), JobFailed("cannot load model bad.safetensors: broken"))
    assert model.model == info()
    assert listener.failures[-1].shown.endswith("still using tiny test model on cpu.")


def test_progress_and_cancelling_belong_to_the_latest_model_job(tmp_path: Path) -> None:
    model, backend, listener = viewer()
    model.load_model(FileSource(tmp_path / "one.safetensors"))
    old = backend.last("load")
    model.load_model(FileSource(tmp_path / "two.safetensors"))
    new = backend.last("load")
    model.answer(old, Progress(1, 2))
    model.answer(old, JobCancelled("superseded"))
    assert listener.progress == [] and listener.cancelled == [] and model.busy
    model.answer(new, Progress(1, 2))
    model.cancel_download()
    model.answer(new, JobCancelled("download cancelled"))
    assert listener.progress == [Progress(1, 2)] and listener.cancelled == ["download cancelled"]
    assert backend.cancelled == 1 and not model.busy
    assert not model.choose_device("cpu")  # no model: nothing to move
