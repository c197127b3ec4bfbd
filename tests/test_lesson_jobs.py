"""The Lessons tab without widgets: each lesson run on the viewer's net as the worker runs it, and the lessons model's
requests (the newest wins, a stale answer is never shown, a new cell reuses the image's crop run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fcn_viewer.errors import FCNViewerError
from fcn_viewer.inference import Segmenter
from fcn_viewer.teaching.lessons.classifier import cell_at
from fcn_viewer.view.classroom_jobs import Nets
from fcn_viewer.view.classroom_model import ClassroomModel
from fcn_viewer.view.lesson_jobs import LessonRequest, LessonResult, run_lesson
from fcn_viewer.view.outcome import JobFailed
from fcn_viewer.view.panel_content import ViewResult
from fcn_viewer.view.viewer_model import ModelInfo
from fcn_viewer.weights.loader import FileSource, LoadedModel
from tests.helpers import gradient_image, random_model, tiny_meta, tiny_paper_config
from tests.test_classroom_model import Backend, Listener, Viewer


def shown(variant: str = "fcn8s", size: tuple[int, int] = (64, 80)) -> tuple[Segmenter, ViewResult, Nets]:
    config = tiny_paper_config(variant)
    segmenter = Segmenter(LoadedModel(random_model(config), tiny_meta(config), "test"), "cpu")
    segmentation = segmenter.segment(gradient_image(*size))
    result = ViewResult.build(Path("photo.png"), segmentation, segmenter.meta, 0.0, "cpu")
    info = ModelInfo(segmenter.meta, FileSource(Path("tiny.safetensors")), "cpu", segmenter=segmenter)
    return segmenter, result, Nets("stages", info, (), "cpu", "auto")


def test_each_lesson_runs_on_the_shown_result_and_draws_its_slide() -> None:
    segmenter, result, nets = shown()
    classifier = run_lesson(segmenter, LessonRequest("classifier", result, nets, (1, 1), time_cap=0.5))
    assert classifier.slide.shape == (1080, 1920, 3) and classifier.slide.std() > 10
    assert classifier.window is not None and classifier.window.cell == (1, 1) and classifier.sliding is not None
    assert "conv7 cell (1, 1)" in classifier.summary and "crops" in classifier.summary
    commute = run_lesson(segmenter, LessonRequest("commute", result, nets))
    assert "bytes concatenated" in commute.summary and commute.slide.shape == (1080, 1920, 3)
    upsampling = run_lesson(segmenter, LessonRequest("upsampling", result, nets))
    lesson = upsampling.upsampling
    assert lesson is not None and lesson.learned_mask.shape == lesson.bilinear_mask.shape == (64, 80)
    stored = result.segmentation.mask()  # type: ignore[union-attr]
    np.testing.assert_array_equal(lesson.learned_mask, stored)  # replayed from the stored scores
    assert f"{lesson.changed_pixels:,} px" in upsampling.summary


def test_an_fcn32s_has_no_sum_to_explain() -> None:
    segmenter, result, nets = shown("fcn32s")
    with pytest.raises(FCNViewerError, match="FCN-32s"):
        run_lesson(segmenter, LessonRequest("commute", result, nets))


def lessons_room() -> tuple[ClassroomModel, Any, Listener, ViewResult]:
    segmenter, result, _ = shown()

    class LessonBackend(Backend):
        def lesson(self, job: int, request: LessonRequest) -> None:
            self.requests.append(("lesson", job, request))

    backend = LessonBackend()
    viewer = Viewer(ModelInfo(segmenter.meta, FileSource(Path("tiny.safetensors")), "cpu", segmenter=segmenter))
    classroom = ClassroomModel(backend, viewer, Listener())  # type: ignore[arg-type]
    listener = Listener()
    classroom.lessons.listener = listener  # type: ignore[assignment]
    return classroom, backend, listener, result


def answer(request: LessonRequest, sliding: Any = None) -> LessonResult:
    return LessonResult(request, np.zeros((4, 4, 3), np.uint8), "done", sliding=sliding)


def test_the_newest_lesson_request_wins_and_a_stale_answer_is_never_shown() -> None:
    classroom, backend, listener, result = lessons_room()
    lessons = classroom.lessons
    lessons.show(result, None)
    lessons.compute()
    first_job, first = backend.last("lesson")
    assert first.lesson == "classifier" and first.cell is None and first.base is None
    lessons.choose("upsampling")
    job, request = backend.last("lesson")
    assert request.lesson == "upsampling" and listener.named("lesson_started")[-1] == ("upsampling",)
    classroom.answer(first_job, answer(first))  # the classifier finished after the upsampling was asked for
    assert lessons.shown is None and listener.named("lesson_shown") == []
    classroom.answer(job, answer(request))
    assert lessons.shown is not None and lessons.shown.request is request
    lessons.choose("commute")
    failed_job, _ = backend.last("lesson")
    classroom.answer(failed_job, JobFailed("no pool4"))
    assert listener.named("lesson_failed") == [("no pool4",)]


def test_a_click_picks_the_conv7_cell_and_reuses_the_crop_run_of_the_image() -> None:
    classroom, backend, _, result = lessons_room()
    lessons = classroom.lessons
    lessons.show(result, None)
    lessons.compute()
    job, request = backend.last("lesson")
    sliding = object()
    classroom.answer(job, answer(request, sliding))
    lessons.click(40, 70)
    _, clicked = backend.last("lesson")
    assert clicked.cell == cell_at(result.meta.config, result.image_size, 40, 70)  # type: ignore[union-attr]
    assert clicked.base is sliding  # only the cell changed: the whole-image crops are not run again
    lessons.show(shown(size=(72, 72))[1], None)  # another image: its own cell and crop run
    assert lessons.cell is None
    lessons.choose("upsampling")
    lessons.click(1, 1)
    assert backend.last("lesson")[1].lesson == "upsampling" and backend.last("lesson")[1].cell is None
