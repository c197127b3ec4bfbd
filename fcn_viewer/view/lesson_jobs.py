"""What the Lessons tab asks its backend to run, and the work itself (no Qt): one of the paper's three lessons on the
viewer's own net and the shown image, computed by the Qt-free lesson cores and drawn as a slide."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from fcn_viewer.errors import FCNViewerError
from fcn_viewer.inference import Segmenter
from fcn_viewer.model.fcn import FCN
from fcn_viewer.options import DEFAULT_TIME_CAP, Lesson
from fcn_viewer.teaching.ground_truth import load_truth
from fcn_viewer.teaching.image_analysis import GroundTruth
from fcn_viewer.teaching.lessons.classifier import (
    ClassifierWindow,
    SlidingComparison,
    compare_cell,
    default_cell,
    sliding_comparison,
)
from fcn_viewer.teaching.lessons.commute import commute_lesson
from fcn_viewer.teaching.lessons.upsampling import UpsamplingLesson, upsampling_lesson
from fcn_viewer.view.classroom_jobs import Nets
from fcn_viewer.view.panel_content import ViewResult

LESSON_TITLES: dict[Lesson, str] = {"classifier": "Classifier → FCN", "commute": "Why scores are summed",
                                    "upsampling": "Learned vs bilinear upsampling"}


@dataclass(frozen=True)
class LessonRequest:
    """One lesson on the shown result with the viewer's net: the conv7 ``cell`` for the classifier (None: an interior
    one), the label for the upsampling scores, and the whole-image crop run already measured on this image (``base``:
    only the cell changed, so it is not run again)."""

    lesson: Lesson
    result: ViewResult
    nets: Nets
    cell: tuple[int, int] | None = None
    ground_truth: GroundTruth | None = None
    base: SlidingComparison | None = None
    time_cap: float = DEFAULT_TIME_CAP


@dataclass(frozen=True)
class LessonResult:
    """The lesson's slide (1920×1080 RGB), its numbers in one line, and what the tab draws beside it."""

    request: LessonRequest
    slide: np.ndarray
    summary: str
    window: ClassifierWindow | None = None
    sliding: SlidingComparison | None = None
    upsampling: UpsamplingLesson | None = None


def lesson_net(segmenter: Segmenter, image: np.ndarray) -> tuple[FCN, torch.Tensor]:
    """The viewer's net in fp32 on the CPU (a copy only where it runs elsewhere or at another precision) and the image
    as its prepared input: the lessons compare numbers to float tolerance."""
    model = segmenter.loaded.model
    parameter = next(model.parameters())
    if parameter.device.type != "cpu" or parameter.dtype != torch.float32:
        model = copy.deepcopy(model).float().cpu()
    pixels = torch.from_numpy(np.ascontiguousarray(image[None]))
    return model.eval(), segmenter.loaded.meta.preprocessing.from_uint8(pixels)


def run_lesson(segmenter: Segmenter, request: LessonRequest, cancel: Callable[[], bool] | None = None) -> LessonResult:
    """Off the GUI thread: the lesson's numbers from its Qt-free core and its slide's pixels. ``cancel`` (a newer
    request came) cuts the classifier's crop run short; that answer is not shown."""
    from fcn_viewer.teaching.lessons.slides import classifier_slide, commute_slide  # matplotlib: on first use
    from fcn_viewer.teaching.step_slides import slide_pixels

    result = request.result
    assert result.segmentation is not None and result.meta is not None
    meta = result.meta
    title = f"{result.path.name} — {meta.title}"
    image = result.image
    if request.lesson == "upsampling":
        return _upsampling(request, title)
    if request.lesson == "commute":
        if meta.config.fusion == "fcn32s":
            raise FCNViewerError(f"{meta.name} is an FCN-32s: it fuses no pool4 skip; load an FCN-16s or FCN-8s")
        model, x = lesson_net(segmenter, image)
        lesson = commute_lesson(model, x)
        summary = (f"max |difference| {lesson.max_abs_difference:.2g} (score range {lesson.score_range:.3g}) · "
                   f"{lesson.bytes_concatenated:,} bytes concatenated against {lesson.bytes_summed:,} summed")
        return LessonResult(request, slide_pixels(commute_slide(lesson, meta.palette, title)), summary)
    model, x = lesson_net(segmenter, image)
    size = (int(image.shape[0]), int(image.shape[1]))
    cell = request.cell if request.cell is not None else default_cell(meta.config, size)
    sliding = request.base or sliding_comparison(model, x, request.time_cap, cancel)
    comparison = compare_cell(model, x, cell, sliding.fcn_scores)
    figure = classifier_slide(image, comparison, sliding, meta.classes, meta.preprocessing, title)
    summary = (f"conv7 cell {cell} · {sliding.crops} crops · one FCN pass {sliding.seconds_fcn:.3g} s against "
               f"{sliding.seconds_crops:.3g} s for the crops{' (extrapolated)' if sliding.extrapolated else ''} · "
               f"classes agree at {sliding.agreement:.0%} · {comparison.sentence(meta.classes)}")
    return LessonResult(request, slide_pixels(figure), summary, comparison.window, sliding)


def _upsampling(request: LessonRequest, title: str) -> LessonResult:
    """From the pass's stored score maps only (no forward pass): the kernels, and the mask with bilinear kernels."""
    from fcn_viewer.teaching.lessons.slides import upsampling_slide
    from fcn_viewer.teaching.step_slides import slide_pixels

    result = request.result
    assert result.segmentation is not None and result.meta is not None
    truth, gt = None, request.ground_truth
    if gt is not None:
        try:
            truth = load_truth(gt.path, result.segmentation.image_size)
        except FCNViewerError:
            truth = None  # the lesson is still worth showing, unscored
    lesson = upsampling_lesson(result.segmentation.outputs, truth, result.meta.config.num_classes,
                               gt.ignore_index if gt else 255, gt.tolerance if gt else 2.0)
    summary = (f"{lesson.kernels_in_words()} · bilinear kernels change "
               f"{lesson.changed_pixels:,} px ({lesson.changed_fraction:.1%})")
    slide = slide_pixels(upsampling_slide(lesson, result.meta.palette, title))
    return LessonResult(request, slide, summary, upsampling=lesson)
