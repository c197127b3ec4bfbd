"""The viewer model without Qt: job numbers, stale answers, busy state and one frame per image; the device and
precision chosen, errors, cancelling, a model change mid-job and the one model copy it keeps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

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


class NamedListener(Listener):
    """Records the busy messages and the classes_changed flags too."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []
        self.classes_changed: list[bool] = []

    def model_changed(self, info: ModelInfo, classes_changed: bool) -> None:
        super().model_changed(info, classes_changed)
        self.classes_changed.append(classes_changed)

    def busy_changed(self, busy: bool, message: str) -> None:
        super().busy_changed(busy, message)
        self.messages.append(message)


def named_viewer(device: DeviceChoice = "auto", exact_fp32: bool = False) -> tuple[ViewerModel, Backend, NamedListener]:
    backend, listener = Backend(), NamedListener()
    return ViewerModel(backend, listener, device, exact_fp32), backend, listener


def loaded_viewer(tmp_path: Path, name: str = "tiny") -> tuple[ViewerModel, Backend, NamedListener]:
    """A viewer with ``name`` loaded and nothing pending."""
    model, backend, listener = named_viewer()
    model.load_model(FileSource(tmp_path / f"{name}.safetensors"))
    model.answer(backend.last("load"), info(name))
    return model, backend, listener


# ---- requests -----------------------------------------------------------------------------------


def test_nothing_is_pending_or_expected_before_the_first_request() -> None:
    model, backend, _listener = viewer()
    assert not model.busy and not model.model_expected and model.model is None
    assert model.frame is None and model.current_path is None and backend.requests == []
    assert model.precision == "auto" and model.device == "auto"


def test_job_numbers_increase_across_images_loads_and_moves(tmp_path: Path) -> None:
    model, backend, _ = viewer()
    model.open_image(tmp_path / "a.png")
    model.load_model(FileSource(tmp_path / "tiny.safetensors"))
    model.choose_device("cpu")
    model.open_image(tmp_path / "b.png")
    jobs = [job for _, job, _ in backend.requests]
    assert [name for name, _, _ in backend.requests] == ["segment", "load", "device", "segment"]
    assert jobs == sorted(jobs) and len(set(jobs)) == 4


def test_an_opened_image_is_current_at_once_by_its_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    model, backend, listener = viewer()
    model.open_image(Path("a.png"))
    assert model.current_path == tmp_path / "a.png" and backend.requests[-1][2] == tmp_path / "a.png"
    assert model.frame is None and model.busy and listener.busy == [True]


def test_the_busy_message_says_opening_without_a_model_and_segmenting_with_one(tmp_path: Path) -> None:
    model, _, listener = named_viewer()
    model.open_image(tmp_path / "a.png")
    model.load_model(FileSource(tmp_path / "tiny.safetensors"))
    assert listener.messages == ["Opening a.png…", "Loading model tiny.safetensors…"]
    model, _, listener = loaded_viewer(tmp_path)
    model.open_image(tmp_path / "b.png")
    assert listener.messages[-1] == "Segmenting b.png…"


def test_busy_stays_until_the_last_pending_job_is_answered(tmp_path: Path) -> None:
    model, backend, listener = viewer()
    model.load_model(FileSource(tmp_path / "tiny.safetensors"))
    model.open_image(tmp_path / "a.png")
    image = backend.last("segment")
    model.answer(image, photo(tmp_path / "a.png"))
    assert model.busy and listener.busy[-1] is True
    model.answer(backend.last("load"), info())
    assert model.busy  # the model segments the image again
    model.answer(backend.last("segment"), photo(tmp_path / "a.png"))
    assert not model.busy and listener.busy[-1] is False


def test_an_image_superseded_before_it_answers_keeps_nobody_waiting(tmp_path: Path) -> None:
    model, backend, listener = viewer()
    model.open_image(tmp_path / "a.png")  # dropped by the backend unanswered, say
    model.open_image(tmp_path / "b.png")
    model.answer(backend.last("segment"), photo(tmp_path / "b.png"))
    assert not model.busy and listener.busy[-1] is False


def test_a_model_is_loaded_on_the_device_and_at_the_precision_chosen(tmp_path: Path) -> None:
    model, backend, _ = named_viewer("cuda", exact_fp32=True)
    source = FileSource(tmp_path / "tiny.safetensors")
    model.load_model(source)
    assert backend.requests == [("load", 1, (source, "cuda", "fp32"))]
    assert model.model_expected and model.precision == "fp32"


def test_a_device_chosen_without_a_model_is_used_by_the_next_load(tmp_path: Path) -> None:
    model, backend, listener = viewer()
    assert not model.choose_device("cpu") and not model.choose_exact_fp32(True)
    assert backend.requests == [] and listener.busy == []
    model.load_model(FileSource(tmp_path / "tiny.safetensors"))
    assert backend.requests[-1][2][1:] == ("cpu", "fp32")


def test_choosing_a_device_moves_the_model_at_its_precision(tmp_path: Path) -> None:
    model, backend, listener = loaded_viewer(tmp_path)
    assert model.choose_device("cuda")
    assert backend.requests[-1] == ("device", backend.last("device"), ("cuda", "auto"))
    assert model.busy and listener.messages[-1] == "Moving the model to cuda…"


def test_choosing_exact_fp32_runs_the_model_again_at_fp32_and_back(tmp_path: Path) -> None:
    model, backend, listener = loaded_viewer(tmp_path)
    assert model.choose_exact_fp32(True)
    assert backend.requests[-1][2] == ("auto", "fp32") and listener.messages[-1] == "Switching precision…"
    model.answer(backend.last("device"), info())
    assert model.choose_exact_fp32(False)
    assert backend.requests[-1][2] == ("auto", "auto")


def test_a_move_while_a_load_is_on_its_way_supersedes_the_load(tmp_path: Path) -> None:
    model, backend, listener = viewer()
    model.load_model(FileSource(tmp_path / "tiny.safetensors"))
    load = backend.last("load")
    assert model.choose_device("cpu")  # a model is expected: the move follows it
    move = backend.last("device")
    model.answer(load, info("as loaded"))
    assert model.model is None and listener.models == []
    model.answer(move, info("as moved"))
    assert model.model == info("as moved") and not model.busy


def test_an_older_model_finishing_last_does_not_replace_the_newer(tmp_path: Path) -> None:
    model, backend, listener = viewer()
    model.load_model(FileSource(tmp_path / "one.safetensors"))
    one = backend.last("load")
    model.load_model(FileSource(tmp_path / "two.safetensors"))
    two = backend.last("load")
    model.answer(two, info("two"))
    model.answer(one, info("one"))
    assert model.model == info("two") and listener.models == [info("two")]


def test_the_model_in_use_is_the_backends_one_copy(tmp_path: Path) -> None:
    model, backend, listener = viewer()
    model.load_model(FileSource(tmp_path / "tiny.safetensors"))
    ready = info()
    model.answer(backend.last("load"), ready)
    assert model.model is ready and listener.models[0] is ready  # kept as given: every tab runs its segmenter


def test_a_model_change_says_whether_the_classes_changed(tmp_path: Path) -> None:
    model, backend, listener = loaded_viewer(tmp_path)
    model.choose_device("cpu")
    model.answer(backend.last("device"), info())  # the same net moved: same classes
    model.load_model(FileSource(tmp_path / "other.safetensors"))
    model.answer(backend.last("load"), info("other"))
    assert listener.classes_changed == [True, False, True]


# ---- a model change mid-job -----------------------------------------------------------------------


def test_a_model_ready_while_the_image_is_segmented_by_the_old_one_segments_it_again(tmp_path: Path) -> None:
    model, backend, listener = loaded_viewer(tmp_path)
    a = tmp_path / "a.png"
    model.open_image(a)
    old_image = backend.last("segment")
    model.load_model(FileSource(tmp_path / "new.safetensors"))
    model.answer(backend.last("load"), info("new"))
    new_image = backend.last("segment")
    assert new_image > old_image
    model.answer(old_image, photo(a))  # the old model's result: stale
    assert listener.frames == []
    model.answer(new_image, photo(a))
    assert [frame.path for frame in listener.frames] == [a] and not model.busy


def test_an_image_asked_for_after_the_load_is_not_segmented_twice(tmp_path: Path) -> None:
    model, backend, _listener = viewer()
    model.load_model(FileSource(tmp_path / "tiny.safetensors"))
    model.open_image(tmp_path / "a.png")  # queued after the load: the new model segments it
    model.answer(backend.last("load"), info())
    assert [name for name, _, _ in backend.requests] == ["load", "segment"]


def test_a_ready_model_without_an_image_segments_nothing(tmp_path: Path) -> None:
    _model, backend, listener = loaded_viewer(tmp_path)
    assert [name for name, _, _ in backend.requests] == ["load"] and listener.frames == []


# ---- answers ------------------------------------------------------------------------------------


def test_a_result_for_another_path_is_not_drawn(tmp_path: Path) -> None:
    model, backend, listener = viewer()
    model.open_image(tmp_path / "a.png")
    model.answer(backend.last("segment"), photo(tmp_path / "elsewhere.png"))
    assert listener.frames == [] and model.frame is None


def test_a_frame_without_a_model_has_a_title_and_no_timing(tmp_path: Path) -> None:
    model, backend, listener = viewer()
    model.open_image(tmp_path / "a.png")
    model.answer(backend.last("segment"), photo(tmp_path / "a.png"))
    assert listener.frames[0].status == "" and listener.frames[0].title == "a.png — fcn-viewer"


def test_a_failure_of_a_superseded_image_is_not_told(tmp_path: Path) -> None:
    model, backend, listener = viewer()
    model.open_image(tmp_path / "a.png")
    old = backend.last("segment")
    model.open_image(tmp_path / "b.png")
    model.answer(old, JobFailed("a.png: broken"))
    assert listener.failures == [] and model.busy


def test_a_failed_image_without_a_model_says_so(tmp_path: Path) -> None:
    model, backend, listener = viewer()
    model.open_image(tmp_path / "a.png")
    model.answer(backend.last("segment"), JobFailed("a.png: not an image"))
    [failure] = listener.failures
    assert failure.no_model and not failure.model_failed and failure.shown == "a.png: not an image"


def test_a_first_model_that_fails_leaves_no_model(tmp_path: Path) -> None:
    model, backend, listener = viewer()
    model.load_model(FileSource(tmp_path / "bad.safetensors"))
    model.answer(backend.last("load"), JobFailed("cannot load model bad.safetensors: truncated"))
    [failure] = listener.failures
    assert failure.model_failed and failure.no_model and failure.path is None
    assert failure.shown == failure.message == "cannot load model bad.safetensors: truncated"
    assert model.model is None and not model.model_expected and not model.busy


def test_a_failed_move_keeps_the_model_where_it_was(tmp_path: Path) -> None:
    model, backend, listener = loaded_viewer(tmp_path)
    model.choose_device("cuda")
    model.answer(backend.last("device"), JobFailed("cannot move the model to cuda: out of memory; it stays on cpu"))
    assert model.model == info() and listener.failures[0].model_failed and not listener.failures[0].no_model
    assert listener.failures[0].shown.endswith("— still using tiny test model on cpu.")


def test_a_superseded_image_says_nothing_when_it_is_cancelled(tmp_path: Path) -> None:
    model, backend, listener = viewer()
    model.open_image(tmp_path / "a.png")
    old = backend.last("segment")
    model.open_image(tmp_path / "b.png")
    model.answer(old, JobCancelled("cancelled before it started"))
    assert listener.cancelled == [] and listener.failures == [] and model.busy


def test_progress_of_an_image_job_is_not_download_progress(tmp_path: Path) -> None:
    model, backend, listener = viewer()
    model.open_image(tmp_path / "a.png")
    model.answer(backend.last("segment"), Progress(1, 2))
    assert listener.progress == [] and model.busy  # progress answers no job


def test_shutdown_and_cancel_reach_the_backend() -> None:
    class Stopping(Backend):
        stopped = 0

        def shutdown(self) -> None:
            self.stopped += 1

    backend = Stopping()
    model = ViewerModel(backend, Listener())
    model.cancel_download()
    model.shutdown()
    assert backend.cancelled == 1 and backend.stopped == 1


def test_the_stages_info_and_tooltip_call_a_deconvolution_still_bilinear_fixed_and_a_trained_one_learned() -> None:
    from fcn_viewer.inference import LoadedModel, Segmenter
    from fcn_viewer.model import build_fcn
    from fcn_viewer.view.panel_content import PANELS_BY_KEY
    from tests.helpers import gradient_image, random_model, tiny_paper_config

    config = tiny_paper_config("fcn8s")
    for model, fixed in ((build_fcn(config), True), (random_model(config), False)):  # bilinear start, random weights
        segmenter = Segmenter(LoadedModel(model, tiny_meta(config), "test"), "cpu")
        result = ViewResult.build(Path("photo.png"), segmenter.segment(gradient_image(40, 52)), segmenter.meta, 0.0,
                                  "cpu")
        tooltip = result.tooltip(PANELS_BY_KEY["mask-8s"])
        assert ("fixed at the bilinear kernel, not learned" in tooltip) is fixed
        assert ("(learned deconvolution)" in tooltip) is not fixed
        assert ("  8s: upscore8 (fixed bilinear)" in result.summary_lines()) is fixed
        assert "a fixed bilinear kernel" in result.tooltip(PANELS_BY_KEY["mask-32s"])  # no ×32 layer of its own
