"""The classroom model without Qt: the teaching tabs' state and jobs, driven through a recording backend and
listener. Job numbers and stale answers, errors, cancelling, a model change mid-job, the one model copy (exact
fp32 on every path), the dataset run, the contributions split and sequence playback."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from fcn_viewer.device_choice import DeviceChoice
from fcn_viewer.evaluation import Evaluation, ImageScores
from fcn_viewer.inference import Segmenter
from fcn_viewer.options import DEFAULT_TOLERANCE, Precision
from fcn_viewer.teaching.compare import DEFAULT_BOUNDARY_RADIUS
from fcn_viewer.teaching.sequence import FramePictures
from fcn_viewer.view.classroom_jobs import (
    Analysed,
    AnalysisRequest,
    ContributionRequest,
    ContributionResult,
    DatasetRequest,
    Exported,
    ExportRequest,
    FrameRequest,
)
from fcn_viewer.view.classroom_model import (
    NO_FAMILY,
    NO_FRAMES,
    NO_MODEL_TO_PLAY,
    NO_MODEL_TO_SCORE,
    ClassroomModel,
    ShownFrame,
)
from fcn_viewer.view.outcome import JobCancelled, JobFailed
from fcn_viewer.view.panel_content import ViewResult
from fcn_viewer.view.viewer_model import ModelInfo, ViewerModel
from fcn_viewer.weights.loader import FileSource, LoadedModel, RegistrySource
from fcn_viewer.weights.registry import entry
from tests.helpers import gradient_image, random_model, tiny_compact_config, tiny_meta
from tests.test_evaluate import make_dataset
from tests.test_sequence import write_frames
from tests.test_viewer_model import Backend as InferenceBackend
from tests.test_viewer_model import Listener as ViewerListener

FAMILY = ("camvid-fcn32s", "camvid-fcn16s", "camvid-fcn8s")

pytestmark = pytest.mark.usefixtures("isolated")  # no installed model but those a test installs


class Backend:
    """Records the classroom's requests; the test answers them through ``ClassroomModel.answer``."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, int, Any]] = []
        self.dataset_cancels = 0
        self.analysis_cancels = 0
        self.forgotten = 0
        self.shut_down = False

    def analyse(self, job: int, request: AnalysisRequest) -> None:
        self.requests.append(("analyse", job, request))

    def cancel_analysis(self) -> None:
        self.analysis_cancels += 1

    def score_dataset(self, job: int, request: DatasetRequest) -> None:
        self.requests.append(("dataset", job, request))

    def cancel_dataset(self) -> None:
        self.dataset_cancels += 1

    def split(self, job: int, request: ContributionRequest) -> None:
        self.requests.append(("split", job, request))

    def play_frame(self, job: int, request: FrameRequest) -> None:
        self.requests.append(("frame", job, request))

    def export_frames(self, job: int, request: ExportRequest) -> None:
        self.requests.append(("export", job, request))

    def forget_nets(self) -> None:
        self.forgotten += 1

    def shutdown(self) -> None:
        self.shut_down = True

    def kinds(self) -> list[str]:
        return [kind for kind, _, _ in self.requests]

    def last(self, kind: str) -> tuple[int, Any]:
        return next((job, request) for name, job, request in reversed(self.requests) if name == kind)

    def all(self, kind: str) -> list[tuple[int, Any]]:
        return [(job, request) for name, job, request in self.requests if name == kind]


class Listener:
    """Records what the classroom, the contributions tab and the sequence tab would draw, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args: self.events.append((name, args))

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [args for event, args in self.events if event == name]


@dataclass
class Viewer:
    """The viewer model as the classroom reads it."""

    model: ModelInfo | None = None
    device: DeviceChoice = "cpu"
    precision: Precision = "auto"


@dataclass
class Clock:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Room:
    classroom: ClassroomModel
    backend: Backend
    listener: Listener
    viewer: Viewer
    clock: Clock
    split: Listener = field(default_factory=Listener)
    player: Listener = field(default_factory=Listener)


@functools.cache
def loaded(variant: str = "fcn8s", name: str = "tiny", classes: int = 11) -> LoadedModel:
    config = tiny_compact_config(variant, classes)
    return LoadedModel(random_model(config), tiny_meta(config, name), name)  # type: ignore[arg-type]


def info(variant: str = "fcn8s", name: str = "tiny", source: Any = None, device: str = "cpu",
         precision: Precision = "auto", classes: int = 11) -> ModelInfo:
    """A ready model as the inference backend answers it: with its one segmenter."""
    net = Segmenter(loaded(variant, name, classes), "cpu", precision=precision)
    return ModelInfo(net.meta, source or FileSource(Path(f"{name}.safetensors")), device, segmenter=net)


@functools.cache
def _segmented(variant: str) -> Any:
    return Segmenter(loaded(variant), "cpu").segment(gradient_image(40, 56))


def result(path: Path, variant: str = "fcn8s") -> ViewResult:
    """A shown result with a model, as the viewer model's frame carries it."""
    return ViewResult.build(path, _segmented(variant), loaded(variant).meta, 1.0, "cpu")


def photo(path: Path) -> ViewResult:
    """A shown image without a model."""
    return ViewResult(path, np.zeros((4, 6, 3), np.uint8))


def room(model: ModelInfo | None = None, viewer: Any = None) -> Room:
    backend, listener, clock = Backend(), Listener(), Clock()
    viewer = viewer if viewer is not None else Viewer(model if model is not None else info())
    classroom = ClassroomModel(backend, viewer, listener, clock)
    shown = Room(classroom, backend, listener, viewer, clock)
    classroom.contributions.listener = shown.split
    classroom.playback.listener = shown.player
    return shown


def analysed(path: Path) -> Analysed:
    return Analysed(SimpleNamespace(path=path), SimpleNamespace())  # type: ignore[arg-type]


def split_answer(request: ContributionRequest, truth_error: str | None = None) -> ContributionResult:
    analysis = request.base or SimpleNamespace(name="analysis")
    return ContributionResult(request, analysis, SimpleNamespace(class_index=request.class_index),  # type: ignore[arg-type]
                              truth_error)


def frame(index: int) -> FramePictures:
    return FramePictures(index, f"frame{index}.png", np.zeros((4, 6, 3), np.uint8), {}, {}, 12.0)


@pytest.fixture
def family(isolated: None, tmp_path: Path) -> Path:
    """The camvid family installed (as files: these tests load no net)."""
    models = tmp_path / "resources" / "models"  # FCN_VIEWER_RESOURCES points here (see `isolated`)
    for name in FAMILY:
        (models / f"{name}.safetensors").write_bytes(b"")
    return models


def camvid_fcn8s() -> ModelInfo:
    return info("fcn8s", "camvid-fcn8s", RegistrySource(entry("camvid-fcn8s")))


# ---- jobs ---------------------------------------------------------------------------------------


def test_job_numbers_are_unique_and_increasing_across_every_kind(tmp_path: Path) -> None:
    r = room()
    r.classroom.show_result(result(tmp_path / "a.png"))
    r.classroom.contributions.show(result(tmp_path / "a.png"), None)
    r.classroom.contributions.compute(None)
    r.classroom.open_dataset(make_dataset(tmp_path / "camvid", count=2))
    assert r.classroom.playback.open(write_frames(tmp_path / "frames", 3))
    jobs = [job for _, job, _ in r.backend.requests]
    assert sorted(set(r.backend.kinds())) == ["analyse", "dataset", "frame", "split"]
    assert jobs == sorted(jobs) and len(set(jobs)) == len(jobs)


def test_every_job_is_answered_once_and_a_repeated_or_unknown_answer_is_ignored(tmp_path: Path) -> None:
    r = room()
    r.classroom.show_result(result(tmp_path / "a.png"))
    job, _ = r.backend.last("analyse")
    assert r.classroom.waiting == 1
    r.classroom.answer(job, analysed(tmp_path / "a.png"))
    r.classroom.answer(job, analysed(tmp_path / "a.png"))
    r.classroom.answer(job + 100, analysed(tmp_path / "a.png"))
    assert len(r.listener.named("analysis_changed")) == 1 and r.classroom.waiting == 0


def test_shutdown_stops_playback_and_the_backend(tmp_path: Path) -> None:
    r = room()
    r.classroom.playback.open(write_frames(tmp_path / "frames", 3))
    r.classroom.playback.play()
    r.classroom.shutdown()
    assert r.backend.shut_down and not r.classroom.playback.playing
    assert r.player.named("playing_changed") == [(True,), (False,)]


# ---- the mode and the family ----------------------------------------------------------------------


def test_without_a_family_only_the_stages_can_be_compared() -> None:
    r = room()
    assert r.classroom.mode == "stages" and not r.classroom.separate_available
    assert r.classroom.separate_note == NO_FAMILY


def test_a_model_change_finds_its_family_and_forgets_the_nets_loaded_beside_the_last(family: Path) -> None:
    r = room()
    r.classroom.model_changed(camvid_fcn8s())
    assert [member.name for member in r.classroom.family] == list(FAMILY)
    assert r.classroom.separate_available and r.classroom.separate_note == ""
    assert r.backend.forgotten == 1 and r.listener.named("mode_changed") == [()]


def test_choosing_the_separate_nets_without_a_family_stays_on_the_stages(tmp_path: Path) -> None:
    r = room()
    r.classroom.show_result(result(tmp_path / "a.png"))
    r.classroom.set_mode("separate")
    assert r.classroom.mode == "stages" and r.listener.named("mode_changed") == [()]
    assert r.backend.last("analyse")[1].nets.mode == "stages"


def test_the_separate_mode_analyses_the_shown_image_with_the_family(family: Path, tmp_path: Path) -> None:
    r = room(camvid_fcn8s())
    r.classroom.model_changed(r.viewer.model)  # type: ignore[arg-type]
    r.classroom.show_result(result(tmp_path / "a.png"))
    r.classroom.set_mode("separate")
    nets = r.backend.last("analyse")[1].nets
    assert r.classroom.mode == "separate" and nets.mode == "separate"
    assert [member.name for member in nets.family] == list(FAMILY) and nets.model_name == "camvid-fcn8s"


def test_a_model_without_a_family_turns_the_separate_mode_back_to_the_stages(family: Path) -> None:
    r = room(camvid_fcn8s())
    r.classroom.model_changed(camvid_fcn8s())
    r.classroom.set_mode("separate")
    assert r.classroom.mode == "separate"
    r.classroom.model_changed(info(name="elsewhere", classes=5))  # a local file of other classes: no family
    assert r.classroom.family == () and not r.classroom.separate_available
    assert r.classroom.mode == "stages" and len(r.listener.named("mode_changed")) == 3


# ---- the shown image's analysis -------------------------------------------------------------------


def test_a_shown_result_is_analysed_with_the_viewers_one_model_and_the_viewers_colours(tmp_path: Path) -> None:
    r = room()
    shown = result(tmp_path / "a.png")
    r.classroom.set_colors([(1, 2, 3)] * 11, 0.3)
    r.classroom.show_result(shown)
    _, request = r.backend.last("analyse")
    assert request.result is shown and request.nets.model is r.viewer.model
    assert request.palette == ((1, 2, 3),) * 11 and request.opacity == 0.3
    assert request.radius == DEFAULT_BOUNDARY_RADIUS and r.classroom.result is shown


def test_a_result_without_a_model_clears_the_lessons_and_asks_for_nothing(tmp_path: Path) -> None:
    r = room()
    shown = result(tmp_path / "a.png")
    r.classroom.show_result(shown)
    r.classroom.contributions.show(shown, None)
    r.classroom.show_result(photo(tmp_path / "b.png"))
    assert r.classroom.result is None and r.classroom.analysis is None
    assert r.classroom.contributions.result is None
    assert r.backend.kinds() == ["analyse"]
    r.classroom.set_radius(5.0)  # nothing shown: nothing to analyse
    assert r.backend.kinds() == ["analyse"]


def test_only_the_newest_analysis_is_shown(tmp_path: Path) -> None:
    r = room()
    path = tmp_path / "a.png"
    r.classroom.show_result(result(path))
    old, _ = r.backend.last("analyse")
    r.classroom.set_radius(7.5)
    new, request = r.backend.last("analyse")
    assert new > old and request.radius == 7.5
    r.classroom.answer(old, analysed(path))
    assert r.listener.named("analysis_changed") == [] and r.classroom.analysis is None
    answer = analysed(path)
    r.classroom.answer(new, answer)
    assert r.listener.named("analysis_changed") == [(answer,)] and r.classroom.analysis is answer.analysis


def test_an_analysis_of_an_image_no_longer_shown_is_dropped(tmp_path: Path) -> None:
    r = room()
    r.classroom.show_result(result(tmp_path / "a.png"))
    job, _ = r.backend.last("analyse")
    r.classroom.show_result(photo(tmp_path / "b.png"))  # no model for it: nothing is analysed now
    r.classroom.answer(job, analysed(tmp_path / "a.png"))
    assert r.listener.named("analysis_changed") == [] and r.classroom.analysis is None


def test_an_analysis_answer_for_another_path_is_dropped(tmp_path: Path) -> None:
    r = room()
    r.classroom.show_result(result(tmp_path / "a.png"))
    r.classroom.answer(r.backend.last("analyse")[0], analysed(tmp_path / "other.png"))
    assert r.listener.named("analysis_changed") == []


def test_a_new_image_starts_fresh_and_a_change_of_the_same_image_updates(tmp_path: Path) -> None:
    r = room()
    a = tmp_path / "a.png"
    r.classroom.show_result(result(a))
    r.classroom.answer(r.backend.last("analyse")[0], analysed(a))
    r.classroom.set_radius(4.0)
    r.classroom.show_result(result(tmp_path / "b.png"))
    assert r.listener.named("analysis_started") == [(True,), (False,), (True,)]


def test_a_failed_analysis_is_told_only_while_it_is_the_newest(tmp_path: Path) -> None:
    r = room()
    r.classroom.show_result(result(tmp_path / "a.png"))
    old, _ = r.backend.last("analyse")
    r.classroom.set_radius(3.0)
    new, _ = r.backend.last("analyse")
    r.classroom.answer(old, JobFailed("a.png: comparison failed (old)"))
    assert r.listener.named("analysis_failed") == []
    r.classroom.answer(new, JobFailed("a.png: comparison failed (MemoryError)"))
    assert r.listener.named("analysis_failed") == [("a.png: comparison failed (MemoryError)",)]


def test_a_superseded_analysis_says_nothing(tmp_path: Path) -> None:
    r = room()
    r.classroom.show_result(result(tmp_path / "a.png"))
    job, _ = r.backend.last("analyse")
    r.classroom.answer(job, JobCancelled("cancelled before it started"))
    assert [name for name, _ in r.listener.events] == ["analysis_started"] and r.classroom.waiting == 0


def test_while_no_tab_draws_the_analysis_it_waits_and_then_runs_for_the_image_shown(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "camvid", count=2)
    r = room()
    r.classroom.want_analysis(False)  # the stage panels are shown, not the compare or ground-truth tab
    first, second = data / "val" / "frame0.png", data / "val" / "frame1.png"
    r.classroom.show_result(result(first))
    r.classroom.show_result(result(second))
    assert r.backend.all("analyse") == [] and r.listener.named("analysis_started") == []
    assert r.classroom.ground_truth is not None and r.classroom.ground_truth.path.name == "frame1.png"  # frames carry it
    r.classroom.want_analysis(True)
    job, request = r.backend.last("analyse")
    assert request.result.path == second and r.listener.named("analysis_started") == [(True,)]
    r.classroom.want_analysis(True)  # shown again: nothing new to analyse
    assert r.backend.last("analyse")[0] == job
    r.classroom.answer(job, analysed(second))
    assert r.classroom.analysis is not None and r.classroom.analysis.path == second


def test_an_analysis_under_way_stops_when_the_next_image_arrives_with_no_tab_drawing_it(tmp_path: Path) -> None:
    r = room()
    r.classroom.show_result(result(tmp_path / "a.png"))
    job, _ = r.backend.last("analyse")
    r.classroom.want_analysis(False)
    r.classroom.show_result(result(tmp_path / "b.png"))
    assert r.backend.analysis_cancels == 1
    r.classroom.answer(job, analysed(tmp_path / "a.png"))  # it finished anyway: dropped
    assert r.listener.named("analysis_changed") == [] and r.classroom.analysis is None


def test_the_label_beside_the_image_is_its_ground_truth(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "camvid", count=1)
    r = room()
    r.classroom.show_result(result(data / "val" / "frame0.png"))
    truth = r.classroom.ground_truth
    assert truth is not None and truth.path == data / "valannot" / "frame0.png"
    assert truth.num_classes == 11 and truth.ignore_index == 11 and truth.tolerance == DEFAULT_TOLERANCE
    assert r.backend.last("analyse")[1].ground_truth == truth


def test_an_image_without_a_label_has_no_ground_truth(tmp_path: Path) -> None:
    r = room()
    r.classroom.show_result(result(tmp_path / "a.png"))
    assert r.classroom.ground_truth is None and r.backend.last("analyse")[1].ground_truth is None


def test_a_picked_label_is_scored_now_and_remembered_for_its_image(tmp_path: Path) -> None:
    r = room()
    a, label = tmp_path / "a.png", tmp_path / "mine.png"
    r.classroom.show_result(result(a))
    assert r.classroom.pick_label(label)
    assert r.backend.last("analyse")[1].ground_truth.path == label
    r.classroom.show_result(result(tmp_path / "b.png"))
    assert r.classroom.ground_truth is None
    r.classroom.show_result(result(a))
    assert r.classroom.ground_truth is not None and r.classroom.ground_truth.path == label


def test_a_label_cannot_be_picked_without_a_shown_image(tmp_path: Path) -> None:
    r = room()
    assert not r.classroom.pick_label(tmp_path / "mine.png")
    assert r.backend.requests == [] and r.classroom.picked_labels == {}


def test_the_colours_set_reach_the_next_requests_of_every_tab(tmp_path: Path) -> None:
    r = room()
    r.classroom.show_result(result(tmp_path / "a.png"))
    r.classroom.set_colors([(9, 9, 9)], 0.8)
    r.classroom.set_radius(2.0)
    r.classroom.playback.open(write_frames(tmp_path / "frames", 2))
    assert r.backend.last("analyse")[1].palette == ((9, 9, 9),)
    assert r.backend.last("frame")[1].palette == ((9, 9, 9),) and r.backend.last("frame")[1].opacity == 0.8


# ---- one model copy, exact fp32 -------------------------------------------------------------------


def test_exact_fp32_and_the_device_chosen_reach_every_path_through_the_viewers_one_model(tmp_path: Path) -> None:
    viewer = ViewerModel(InferenceBackend(), ViewerListener(), device="cuda", exact_fp32=True)
    viewer.load_model(FileSource(tmp_path / "tiny.safetensors"))
    assert viewer.backend.requests[-1][2][1:] == ("cuda", "fp32")  # type: ignore[attr-defined]
    ready = info(precision="fp32")
    viewer.answer(viewer.backend.last("load"), ready)  # type: ignore[attr-defined]
    r = room(viewer=viewer)
    r.classroom.model_changed(ready)
    data = make_dataset(tmp_path / "camvid", count=1)
    r.classroom.show_result(result(data / "val" / "frame0.png"))
    r.classroom.open_dataset(data)
    r.classroom.playback.open(write_frames(tmp_path / "frames", 2))
    r.classroom.playback.export(tmp_path / "out.gif")
    nets = [r.backend.last(kind)[1].nets for kind in ("analyse", "dataset", "frame", "export")]
    assert all(n.precision == "fp32" and n.device == "cuda" for n in nets)
    assert all(n.model is ready for n in nets)  # the viewer's ModelInfo itself: no second copy is asked for
    assert {id(n.model.segmenter) for n in nets} == {id(ready.segmenter)}
    assert ready.segmenter is not None and ready.segmenter.precision == "fp32"


def test_switching_precision_reaches_the_requests_made_after_it(tmp_path: Path) -> None:
    viewer = ViewerModel(InferenceBackend(), ViewerListener())
    viewer.load_model(FileSource(tmp_path / "tiny.safetensors"))
    viewer.answer(viewer.backend.last("load"), info())  # type: ignore[attr-defined]
    r = room(viewer=viewer)
    r.classroom.show_result(result(tmp_path / "a.png"))
    assert r.backend.last("analyse")[1].nets.precision == "auto"
    assert viewer.choose_exact_fp32(True)
    exact = info(precision="fp32")
    viewer.answer(viewer.backend.last("device"), exact)  # type: ignore[attr-defined]
    r.classroom.model_changed(exact)
    r.classroom.set_radius(1.0)
    nets = r.backend.last("analyse")[1].nets
    assert nets.precision == "fp32" and nets.model is exact


def test_a_frame_asked_for_before_a_model_change_is_shown_with_the_classes_of_its_own_model(tmp_path: Path) -> None:
    r = room(info(name="first"))
    r.classroom.playback.open(write_frames(tmp_path / "frames", 3))
    job, request = r.backend.last("frame")
    assert request.nets.model.meta.name == "first"
    other = info("fcn32s", "second", classes=5)
    r.viewer.model = other
    r.classroom.model_changed(other)
    r.classroom.playback.step(1)
    assert r.backend.last("frame")[1].nets.model is other
    r.classroom.answer(job, frame(0))  # the first model's frame, finishing after the change
    shown: ShownFrame = r.player.named("frame_shown")[0][0]
    assert shown.pictures.index == 0 and shown.classes == tuple(loaded("fcn8s", "first").meta.classes)


# ---- datasets -------------------------------------------------------------------------------------


def test_opening_a_dataset_lists_it_opens_its_first_image_and_scores_it_with_the_viewers_model(tmp_path: Path) -> None:
    r = room()
    data = make_dataset(tmp_path / "camvid", count=2)
    r.classroom.open_dataset(data)
    images = [data / "val" / "frame0.png", data / "val" / "frame1.png"]
    assert [name for name, _ in r.listener.events] == [
        "dataset_opened", "dataset_listed", "open_image", "dataset_listed", "dataset_started"]
    assert r.listener.named("dataset_opened") == [(data, ["val"], "val")]
    assert r.listener.named("dataset_listed") == [(images, (), NO_MODEL_TO_SCORE), (images, ("32s", "16s", "8s"), "")]
    assert r.listener.named("open_image") == [(images[0],)]
    assert r.listener.named("dataset_started") == [("every stage of tiny test model",)]
    request = r.backend.last("dataset")[1]
    assert request.nets.model is r.viewer.model and request.tolerance == DEFAULT_TOLERANCE
    assert r.classroom.dataset is request.dataset and r.classroom.dataset_root == data


def test_a_dataset_opened_without_a_model_waits_for_one(tmp_path: Path) -> None:
    r = room(viewer=Viewer(None))
    r.classroom.open_dataset(make_dataset(tmp_path / "camvid", count=1))
    assert "dataset" not in r.backend.kinds()
    r.classroom.score_dataset()
    assert r.listener.named("dataset_stopped") == [(NO_MODEL_TO_SCORE,)] and "dataset" not in r.backend.kinds()


def test_scoring_without_a_dataset_does_nothing() -> None:
    r = room()
    r.classroom.score_dataset()
    r.classroom.choose_split("val")
    assert r.backend.requests == [] and r.listener.events == []


def test_a_folder_that_is_not_a_dataset_is_an_error(tmp_path: Path) -> None:
    r = room()
    r.classroom.open_dataset(tmp_path)
    assert len(r.listener.named("show_error")) == 1
    assert "not a dataset folder" in r.listener.named("show_error")[0][0]
    assert r.classroom.dataset is None and r.backend.requests == []


def test_an_unknown_split_opens_val(tmp_path: Path) -> None:
    r = room()
    data = make_dataset(tmp_path / "camvid", count=1)
    r.classroom.open_dataset(data, "test")
    r.classroom.choose_split("train")
    assert r.listener.named("dataset_opened") == [(data, ["val"], "val")] * 2


def test_scores_on_their_way_fill_rows_of_the_newest_run_only(tmp_path: Path) -> None:
    r = room()
    data = make_dataset(tmp_path / "camvid", count=2)
    r.classroom.open_dataset(data)
    old, _ = r.backend.last("dataset")
    r.classroom.score_dataset()
    new, _ = r.backend.last("dataset")
    r.classroom.answer(old, ImageScores(0, data / "val" / "frame0.png", {}))
    assert r.listener.named("image_scored") == []
    r.classroom.answer(new, ImageScores(1, data / "val" / "frame1.png", {}, "unreadable"))
    [(row, done)] = r.listener.named("image_scored")
    assert done == 2 and row.path == data / "val" / "frame1.png" and row.error == "unreadable"
    assert len(row.values) == 9 and all(math.isnan(value) for value in row.values)
    assert r.classroom.waiting == 2  # scores on their way answer no job


def test_a_finished_run_fills_the_dataset_row(tmp_path: Path) -> None:
    r = room()
    r.classroom.open_dataset(make_dataset(tmp_path / "camvid", count=2))
    evaluation = Evaluation({}, images=2)
    r.classroom.answer(r.backend.last("dataset")[0], evaluation)
    [(row, what, scored, told)] = r.listener.named("dataset_finished")
    assert row.is_dataset and row.name == "dataset (2 images)" and len(row.values) == 9
    assert what == "every stage of tiny test model" and scored is None and told is evaluation


def test_a_stopped_run_says_how_many_images_it_scored(tmp_path: Path) -> None:
    r = room()
    r.classroom.open_dataset(make_dataset(tmp_path / "camvid", count=3))
    r.classroom.stop_dataset()
    assert r.backend.dataset_cancels == 2  # opening stops any earlier run, then Stop
    r.classroom.answer(r.backend.last("dataset")[0], Evaluation({}, images=1, cancelled=True))
    [(row, _, scored, _)] = r.listener.named("dataset_finished")
    assert scored == 1 and row.name == "dataset (1 images, stopped early)"


def test_a_run_stopped_before_it_started_or_failed_says_so(tmp_path: Path) -> None:
    r = room()
    r.classroom.open_dataset(make_dataset(tmp_path / "camvid", count=1))
    r.classroom.answer(r.backend.last("dataset")[0], JobCancelled("cancelled before it started"))
    r.classroom.score_dataset()
    r.classroom.answer(r.backend.last("dataset")[0], JobFailed("dataset scoring failed: out of memory"))
    assert r.listener.named("dataset_stopped") == [("Stopped before any image was scored.",),
                                                   ("dataset scoring failed: out of memory",)]
    assert r.listener.named("dataset_finished") == []


def test_opening_a_dataset_again_stops_the_run_going_on_and_drops_its_answers(tmp_path: Path) -> None:
    r = room()
    data = make_dataset(tmp_path / "camvid", count=2)
    r.classroom.open_dataset(data)
    old, _ = r.backend.last("dataset")
    r.classroom.open_dataset(data)
    assert r.backend.dataset_cancels == 2
    r.classroom.answer(old, ImageScores(0, data / "val" / "frame0.png", {}))
    r.classroom.answer(old, Evaluation({}, images=1, cancelled=True))
    r.classroom.answer(old, JobFailed("late"))
    assert r.listener.named("image_scored") == r.listener.named("dataset_finished") == []
    assert r.listener.named("dataset_stopped") == []


def test_a_run_in_separate_mode_scores_the_installed_family_each_at_its_own_stage(family: Path, tmp_path: Path) -> None:
    (family / "camvid-fcn16s.safetensors").unlink()  # not installed: not scored
    r = room(camvid_fcn8s())
    r.classroom.model_changed(camvid_fcn8s())
    r.classroom.set_mode("separate")
    r.classroom.open_dataset(make_dataset(tmp_path / "camvid", count=1))
    assert r.listener.named("dataset_started") == [("the separately trained camvid-fcn32s, camvid-fcn8s",)]
    assert r.listener.named("dataset_listed")[-1][1] == ("32s", "8s")
    assert r.backend.last("dataset")[1].nets.mode == "separate"


def test_a_model_change_mid_run_keeps_the_runs_own_columns(tmp_path: Path) -> None:
    r = room(info("fcn8s"))
    data = make_dataset(tmp_path / "camvid", count=2)
    r.classroom.open_dataset(data)
    job, _ = r.backend.last("dataset")
    r.viewer.model = info("fcn32s", "coarse")
    r.classroom.model_changed(r.viewer.model)
    r.classroom.answer(job, ImageScores(0, data / "val" / "frame0.png", {}))
    r.classroom.answer(job, Evaluation({}, images=2))
    assert len(r.listener.named("image_scored")[0][0].values) == 9  # 32s, 16s and 8s: the run's model
    assert r.listener.named("dataset_finished")[0][1] == "every stage of tiny test model"


# ---- the contributions split ----------------------------------------------------------------------


def test_the_split_is_asked_for_the_given_result_label_and_class(tmp_path: Path) -> None:
    r = room()
    shown, truth = result(tmp_path / "a.png"), SimpleNamespace(path=tmp_path / "label.png")
    lesson = r.classroom.contributions
    lesson.show(shown, truth)  # type: ignore[arg-type]
    lesson.compute(3)
    request = r.backend.last("split")[1]
    assert request.result is shown and request.ground_truth is truth and request.class_index == 3
    assert request.base is None and r.split.named("split_started") == [()]


def test_nothing_is_split_without_a_result() -> None:
    r = room()
    r.classroom.contributions.compute(None)
    assert r.backend.requests == []


def test_only_the_newest_split_is_shown(tmp_path: Path) -> None:
    r = room()
    lesson = r.classroom.contributions
    lesson.show(result(tmp_path / "a.png"), None)
    lesson.compute(None)
    old, old_request = r.backend.last("split")
    lesson.compute(4)  # the same result, another class, while the first split is on its way
    new, new_request = r.backend.last("split")
    assert new_request.result is old_request.result
    r.classroom.answer(old, split_answer(old_request))
    assert r.split.named("split_shown") == [] and lesson.shown is None
    done = split_answer(new_request)
    r.classroom.answer(new, done)
    assert r.split.named("split_shown") == [(done,)] and lesson.shown is done


def test_a_new_class_reuses_the_split_shown_and_a_new_result_does_not(tmp_path: Path) -> None:
    r = room()
    lesson = r.classroom.contributions
    shown = result(tmp_path / "a.png")
    lesson.show(shown, None)
    lesson.compute(None)
    job, request = r.backend.last("split")
    done = split_answer(request)
    r.classroom.answer(job, done)
    lesson.compute(2)  # only the class changed
    assert r.backend.last("split")[1].base is done.analysis and r.backend.last("split")[1].class_index == 2
    assert r.split.named("split_started") == [()]  # the split shown stays until the new class is drawn
    lesson.show(result(tmp_path / "b.png"), None)
    lesson.compute(2)
    assert r.backend.last("split")[1].base is None and r.split.named("split_started") == [(), ()]


def test_a_split_of_a_result_no_longer_shown_is_dropped(tmp_path: Path) -> None:
    r = room()
    lesson = r.classroom.contributions
    lesson.show(result(tmp_path / "a.png"), None)
    lesson.compute(None)
    job, request = r.backend.last("split")
    lesson.show(result(tmp_path / "b.png"), None)  # hidden tab: the new split is asked for when it is shown
    r.classroom.answer(job, split_answer(request))
    assert r.split.named("split_shown") == [] and lesson.shown is None


def test_a_reused_split_keeps_the_reason_its_label_was_not_scored(tmp_path: Path) -> None:
    r = room()
    lesson = r.classroom.contributions
    lesson.show(result(tmp_path / "a.png"), None)
    lesson.compute(None)
    job, request = r.backend.last("split")
    r.classroom.answer(job, split_answer(request, "small.png: label is 10×10, image 40×56"))
    lesson.compute(1)
    job, request = r.backend.last("split")
    r.classroom.answer(job, split_answer(request))
    assert lesson.shown is not None and lesson.shown.truth_error == "small.png: label is 10×10, image 40×56"


def test_a_failed_split_clears_the_tab_and_says_why(tmp_path: Path) -> None:
    r = room()
    lesson = r.classroom.contributions
    lesson.show(result(tmp_path / "a.png"), None)
    lesson.compute(None)
    r.classroom.answer(r.backend.last("split")[0], JobFailed("MemoryError: "))
    assert r.split.named("split_failed") == [("MemoryError: ",)]
    assert lesson.result is None and lesson.shown is None
    lesson.compute(None)
    assert len(r.backend.all("split")) == 1  # nothing to split until the next result


def test_clearing_drops_the_split_on_its_way(tmp_path: Path) -> None:
    r = room()
    lesson = r.classroom.contributions
    lesson.show(result(tmp_path / "a.png"), None)
    lesson.compute(None)
    job, request = r.backend.last("split")
    lesson.clear()
    r.classroom.answer(job, split_answer(request))
    assert r.split.named("split_shown") == [] and lesson.shown is None


# ---- sequence playback ----------------------------------------------------------------------------


def test_opening_frames_asks_for_the_first_with_the_viewers_model(tmp_path: Path) -> None:
    r = room()
    playback = r.classroom.playback
    assert playback.open(write_frames(tmp_path / "frames", 4))
    request = r.backend.last("frame")[1]
    assert r.player.named("opened") == [(4,)] and request.index == 0 and request.nets.model is r.viewer.model
    assert playback.requested == 0 and playback.shown_index == -1 and playback.can_play


def test_a_sequence_that_cannot_be_played_says_why(tmp_path: Path) -> None:
    r = room()
    (tmp_path / "clip.mp4").write_bytes(b"\0")
    assert not r.classroom.playback.open(tmp_path / "clip.mp4")
    [(message,)] = r.player.named("playback_status")
    assert "clip.mp4: not a video, or not one of the containers read here" in message and r.backend.requests == []


def test_nothing_plays_without_a_model(tmp_path: Path) -> None:
    r = room(viewer=Viewer(None))
    playback = r.classroom.playback
    assert playback.open(write_frames(tmp_path / "frames", 3))
    playback.play()
    playback.export(tmp_path / "out.gif")
    assert r.backend.requests == [] and not playback.playing and not playback.can_play
    assert r.player.named("playback_status") == [(NO_MODEL_TO_PLAY,)]


def test_play_says_what_is_missing_and_only_that() -> None:
    r = room()  # a model, no frames (issue 22: it asked for a model too)
    r.classroom.playback.play()
    assert r.player.named("playback_status") == [(NO_FRAMES,)] and not r.classroom.playback.playing


def test_frames_opened_before_a_model_show_their_first_frame_when_it_comes(tmp_path: Path) -> None:
    r = room(viewer=Viewer(None))
    playback = r.classroom.playback
    assert playback.open(write_frames(tmp_path / "frames", 3)) and r.backend.requests == []
    r.viewer.model = info()
    r.classroom.model_changed(r.viewer.model)
    assert r.backend.last("frame")[1].index == 0 and playback.missing == ""


def test_the_bundled_sequence_opens_when_nothing_else_is_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FCN_VIEWER_RESOURCES", str(tmp_path / "resources"))
    r = room()
    playback = r.classroom.playback
    assert not playback.open_bundled() and not playback.open_bundled(replace=True)  # none installed
    assert "No bundled sequence is installed" in r.player.named("playback_status")[-1][0]
    write_frames(tmp_path / "resources" / "sequence", 4)
    assert playback.open_bundled() and len(playback.source or ()) == 4
    assert playback.open(write_frames(tmp_path / "mine", 2))
    assert not playback.open_bundled() and len(playback.source or ()) == 2  # what the user opened stays
    assert playback.open_bundled(replace=True) and len(playback.source or ()) == 4  # Open Bundled Sequence


def test_a_frame_finishing_after_a_newer_one_is_never_shown_and_overtaken_frames_count_as_dropped(
    tmp_path: Path
) -> None:
    r = room()
    playback = r.classroom.playback
    playback.open(write_frames(tmp_path / "frames", 5))
    first, _ = r.backend.last("frame")
    playback.request(1)
    overtaken, _ = r.backend.last("frame")
    playback.request(2)
    newest, _ = r.backend.last("frame")
    r.classroom.answer(overtaken, JobCancelled("cancelled before it started"))
    r.classroom.answer(newest, frame(2))
    r.classroom.answer(first, frame(0))  # the net was on it when the others came: it finishes last
    assert [shown.pictures.index for (shown,) in r.player.named("frame_shown")] == [2]
    assert playback.shown_index == 2 and playback.shown_count == 1 and playback.dropped == 1


def test_the_first_frame_after_opening_is_fresh(tmp_path: Path) -> None:
    r = room()
    playback = r.classroom.playback
    playback.open(write_frames(tmp_path / "frames", 3))
    r.classroom.answer(r.backend.last("frame")[0], frame(0))
    playback.step(1)
    r.classroom.answer(r.backend.last("frame")[0], frame(1))
    playback.open(write_frames(tmp_path / "frames", 3))
    r.classroom.answer(r.backend.last("frame")[0], frame(0))
    assert [shown.fresh for (shown,) in r.player.named("frame_shown")] == [True, False, True]
    assert r.player.named("frame_shown")[1][0].status == "frame 2 / 3 · net 12 ms"


def test_playing_asks_for_the_frame_due_and_counts_the_frames_the_clock_passed_over(tmp_path: Path) -> None:
    r = room()
    playback = r.classroom.playback
    playback.open(write_frames(tmp_path / "frames", 20))
    r.classroom.answer(r.backend.last("frame")[0], frame(0))
    playback.set_rate(10.0)
    playback.play()  # from frame 1, at t = 100 s
    assert playback.playing and r.player.named("playing_changed") == [(True,)]
    playback.tick()
    assert r.backend.last("frame")[1].index == 1 and playback.skipped == 0
    r.clock.now += 0.45  # frame 5 is due: 2, 3 and 4 were passed over
    playback.tick()
    assert r.backend.last("frame")[1].index == 5 and playback.skipped == 3 and playback.dropped == 3
    playback.tick()  # nothing newer is due
    assert [request.index for _, request in r.backend.all("frame")] == [0, 1, 5]


def test_playback_stops_at_the_last_frame_and_starts_again_from_the_first(tmp_path: Path) -> None:
    r = room()
    playback = r.classroom.playback
    playback.open(write_frames(tmp_path / "frames", 4))
    playback.play()
    r.clock.now += 10
    playback.tick()
    assert r.backend.last("frame")[1].index == 3 and not playback.playing
    assert r.player.named("playing_changed") == [(True,), (False,)]
    r.classroom.answer(r.backend.last("frame")[0], frame(3))
    playback.play()
    playback.tick()
    assert r.backend.last("frame")[1].index == 0 and playback.playing


def test_the_status_while_playing_tells_the_rate_achieved_and_the_frames_dropped(tmp_path: Path) -> None:
    r = room()
    playback = r.classroom.playback
    playback.open(write_frames(tmp_path / "frames", 40))
    playback.set_rate(20.0)
    playback.play()
    r.clock.now += 0.5  # frame 11 due: 1 to 10 were passed over
    playback.tick()
    r.classroom.answer(r.backend.last("frame")[0], frame(11))
    [(shown,)] = r.player.named("frame_shown")
    assert shown.status == ("frame 12 / 40 · net 12 ms · playing at 20 fps: showing 2.0 fps, "
                            "10 frames dropped so far")


def test_one_frame_dropped_is_said_in_the_singular(tmp_path: Path) -> None:
    r = room()
    playback = r.classroom.playback
    playback.open(write_frames(tmp_path / "frames", 40))
    playback.set_rate(20.0)
    playback.play()
    r.clock.now += 0.05  # frame 2 due: frame 1 was passed over
    playback.tick()
    r.classroom.answer(r.backend.last("frame")[0], frame(1))
    [(shown,)] = r.player.named("frame_shown")
    assert shown.status.startswith("frame 2 / 40") and shown.status.endswith(", 1 frame dropped so far")


def test_a_rate_change_while_playing_counts_from_the_frame_asked_for(tmp_path: Path) -> None:
    r = room()
    playback = r.classroom.playback
    playback.open(write_frames(tmp_path / "frames", 50))
    playback.play()
    r.clock.now += 1.0  # 5 fps: frame 6
    playback.tick()
    playback.set_rate(1.0)  # the clock starts again: frame 7 is due now, frame 8 a second later
    playback.tick()
    r.clock.now += 0.9
    playback.tick()
    r.clock.now += 0.1
    playback.tick()
    assert [request.index for _, request in r.backend.all("frame")] == [0, 6, 7, 8]


def test_pause_step_and_seek_ask_for_one_frame_each(tmp_path: Path) -> None:
    r = room()
    playback = r.classroom.playback
    playback.open(write_frames(tmp_path / "frames", 5))
    playback.play()
    playback.step(-1)  # from nothing shown: frame 0 (never below)
    assert not playback.playing
    r.classroom.answer(r.backend.last("frame")[0], frame(0))
    playback.step(1)
    playback.seek(4)
    r.classroom.answer(r.backend.last("frame")[0], frame(4))
    playback.step(1)  # never past the last
    assert [request.index for _, request in r.backend.all("frame")] == [0, 0, 1, 4, 4]
    assert r.player.named("playing_changed") == [(True,), (False,)]


def test_an_export_pauses_holds_back_frames_and_says_when_it_is_saved(tmp_path: Path) -> None:
    r = room()
    playback = r.classroom.playback
    playback.open(write_frames(tmp_path / "frames", 6))
    playback.set_rate(8.0)
    playback.play()
    playback.export(tmp_path / "out.gif")
    job, request = r.backend.last("export")
    assert request.target == tmp_path / "out.gif" and request.fps == 8.0 and request.nets.model is r.viewer.model
    assert not playback.playing and playback.exporting
    playback.request(2)
    assert "frame" not in r.backend.kinds()[-1:] and len(r.backend.all("frame")) == 1
    r.classroom.answer(job, Exported(tmp_path / "out.gif", 6))
    assert not playback.exporting
    assert r.player.named("playback_status") == [(f"Exporting 6 frames to {tmp_path / 'out.gif'}…",),
                                                 (f"Saved 6 frames of stage panels to {tmp_path / 'out.gif'}",)]


def test_a_failed_frame_stops_playback_and_says_why(tmp_path: Path) -> None:
    r = room()
    playback = r.classroom.playback
    playback.open(write_frames(tmp_path / "frames", 6))
    playback.play()
    r.classroom.answer(r.backend.last("frame")[0], JobFailed("frame0.png: not an image"))
    assert not playback.playing
    assert r.player.named("playback_status") == [("Cannot play this frame: frame0.png: not an image",)]


def test_a_failed_export_ends_the_export_and_says_so_naming_the_gif(tmp_path: Path) -> None:
    r = room()
    playback = r.classroom.playback
    playback.open(write_frames(tmp_path / "frames", 2))
    playback.export(tmp_path / "out.gif")
    failure = f"{tmp_path / 'out.gif'}: cannot write the GIF (the disk is full)"
    r.classroom.answer(r.backend.last("export")[0], JobFailed(failure))
    assert not playback.exporting
    assert r.player.named("playback_status")[-1] == (f"GIF not exported: {failure}",)
    playback.step(1)
    assert r.backend.last("frame")[1].index == 1


def test_a_cancelled_export_ends_the_export(tmp_path: Path) -> None:
    r = room()
    playback = r.classroom.playback
    playback.open(write_frames(tmp_path / "frames", 2))
    playback.export(tmp_path / "out.gif")
    r.classroom.answer(r.backend.last("export")[0], JobCancelled("cancelled"))
    assert not playback.exporting and playback.overtaken == 0
    assert r.player.named("playback_status")[-1] == ("GIF export stopped; nothing was written.",)


def test_a_gif_that_cannot_be_written_is_refused_before_any_frame_is_segmented(tmp_path: Path) -> None:
    r = room()
    playback = r.classroom.playback
    playback.open(write_frames(tmp_path / "frames", 2))
    target = tmp_path / "out.gif"
    target.write_bytes(b"kept")
    target.chmod(0o444)
    playback.export(target)
    assert "export" not in r.backend.kinds() and not playback.exporting
    [(message,)] = r.player.named("playback_status")
    assert message == f"GIF not exported: {target}: is read-only, so it is not replaced; choose another name"
    playback.export(tmp_path / "missing" / "out.gif")
    assert "export" not in r.backend.kinds()
    assert r.player.named("playback_status")[-1][0].startswith(f"GIF not exported: {tmp_path / 'missing' / 'out.gif'}")


def test_a_new_model_lends_playback_its_palette_until_the_viewers_colours_come(tmp_path: Path) -> None:
    r = room()
    playback = r.classroom.playback
    model = info()
    r.classroom.model_changed(model)
    assert playback.palette == tuple(model.meta.palette)
    r.classroom.set_colors([(0, 0, 0)] * 11, 0.5)
    r.classroom.model_changed(info("fcn16s", "other"))
    assert playback.palette == ((0, 0, 0),) * 11 and playback.opacity == 0.5
