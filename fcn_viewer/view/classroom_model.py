"""The classroom without its widgets: the teaching tabs' state and jobs, in the shape of :class:`ViewerModel`.

:class:`ClassroomModel` owns the teaching mode, the separately trained family, the shown image's ground truth and
analysis, the dataset run, and (in :class:`ContributionsModel` and :class:`PlaybackModel`) the contributions split
and the sequence playback. It numbers every job, sends it to its :class:`ClassroomBackend`, and takes every answer
back through :meth:`ClassroomModel.answer`, dropping the stale ones, before it tells its listeners what to draw.

The net every tab runs is the viewer's, as the viewer runs it: each request carries the viewer model's
:class:`ModelInfo` (its one loaded copy, on the device and at the precision chosen), read at the time of the request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from fcn_viewer.classes import Color
from fcn_viewer.data import SegmentationDataset, available_splits, open_dataset
from fcn_viewer.device_choice import DeviceChoice
from fcn_viewer.errors import FCNViewerError
from fcn_viewer.evaluation import Evaluation, ImageScores
from fcn_viewer.model.stages import Stage
from fcn_viewer.options import DEFAULT_TOLERANCE, Lesson, Precision
from fcn_viewer.resources import bundled_sequence
from fcn_viewer.teaching.compare import DEFAULT_BOUNDARY_RADIUS, CompareMode, family_of
from fcn_viewer.teaching.contributions import TermScale
from fcn_viewer.teaching.dataset_table import TableRow, dataset_row, image_row
from fcn_viewer.teaching.gif import check_gif_target
from fcn_viewer.teaching.ground_truth import find_label, ignore_index_for
from fcn_viewer.teaching.image_analysis import GroundTruth, ImageAnalysis
from fcn_viewer.teaching.lessons.classifier import cell_at
from fcn_viewer.teaching.sequence import FramePictures, FrameSource, PlaybackClock, open_sequence
from fcn_viewer.view.classroom_jobs import (
    Analysed,
    AnalysisRequest,
    ContributionRequest,
    ContributionResult,
    DatasetRequest,
    Exported,
    ExportRequest,
    FrameRequest,
    Nets,
)
from fcn_viewer.view.lesson_jobs import LessonRequest, LessonResult
from fcn_viewer.view.outcome import JobCancelled, JobFailed
from fcn_viewer.view.panel_content import ViewResult
from fcn_viewer.view.viewer_model import ModelInfo
from fcn_viewer.weights.loader import RegistrySource
from fcn_viewer.weights.meta import ModelMeta
from fcn_viewer.weights.registry import RegistryEntry

DEFAULT_FPS = 5.0
NO_MODEL_TO_SCORE = "Load a model to score the images."
NO_FRAMES = "Open a video, an animated image or a folder of frames to play (Teaching ▸ Open Video or Animated Image…)."
NO_MODEL_TO_PLAY = "Load a model to play the frames (Model menu)."
NO_FAMILY = "No separately trained FCN-32s/16s/8s family is installed for this model's classes"

Answer = Callable[[int, object], None]
NewJob = Callable[[Answer], int]


class CurrentModel(Protocol):
    """The model every tab runs, as the viewer runs it: :class:`ViewerModel` is one."""

    @property
    def model(self) -> ModelInfo | None: ...

    @property
    def device(self) -> DeviceChoice: ...

    @property
    def precision(self) -> Precision: ...


class ClassroomBackend(Protocol):
    """Runs the classroom's jobs off the caller's thread and answers each through :meth:`ClassroomModel.answer`
    (a dataset run's :class:`ImageScores` too, as it goes). A newer job of a kind (analysis, dataset run, split,
    frame) supersedes a waiting one, which is answered :class:`JobCancelled`."""

    def analyse(self, job: int, request: AnalysisRequest) -> None: ...

    def cancel_analysis(self) -> None:
        """Stops the analysis waiting or running (a running one at its next check), answered JobCancelled."""
        ...

    def score_dataset(self, job: int, request: DatasetRequest) -> None: ...

    def cancel_dataset(self) -> None: ...

    def split(self, job: int, request: ContributionRequest) -> None: ...

    def play_frame(self, job: int, request: FrameRequest) -> None: ...

    def export_frames(self, job: int, request: ExportRequest) -> None: ...

    def lesson(self, job: int, request: LessonRequest) -> None: ...

    def forget_nets(self) -> None:
        """Drops every other net loaded for the tabs (the family), so the next request reads the files again."""
        ...

    def shutdown(self) -> None: ...


class ClassroomListener(Protocol):
    """What the classroom's window side does when the classroom model changes (all calls on the caller's thread)."""

    def mode_changed(self) -> None:
        """``mode`` or whether the separately trained nets are available changed."""
        ...

    def analysis_started(self, fresh: bool) -> None:
        """The shown image is being analysed (``fresh``: no analysis of it is shown yet); ``ground_truth`` is set."""
        ...

    def analysis_changed(self, analysed: Analysed) -> None: ...

    def analysis_failed(self, message: str) -> None: ...

    def dataset_opened(self, root: Path, splits: Sequence[str], split: str) -> None: ...

    def dataset_listed(self, paths: Sequence[Path], stages: Sequence[Stage], status: str) -> None: ...

    def dataset_started(self, what: str) -> None: ...

    def image_scored(self, row: TableRow, done: int) -> None: ...

    def dataset_finished(self, row: TableRow, what: str, scored: int | None, evaluation: Evaluation) -> None:
        """The run ended: every image scored, or (``scored`` given) that many before it was stopped."""
        ...

    def dataset_stopped(self, message: str) -> None:
        """No run is going (it failed, was stopped before it started, or cannot start): ``message`` says why."""
        ...

    def open_image(self, path: Path) -> None: ...

    def show_error(self, message: str) -> None: ...


class ContributionsListener(Protocol):
    """What the contributions tab draws."""

    def split_started(self) -> None:
        """A split of a result not shown yet is on its way."""
        ...

    def split_shown(self, done: ContributionResult) -> None: ...

    def split_failed(self, message: str) -> None: ...


class LessonsListener(Protocol):
    """What the lessons tab draws."""

    def lesson_started(self, lesson: Lesson) -> None: ...

    def lesson_shown(self, done: LessonResult) -> None: ...

    def lesson_failed(self, message: str) -> None: ...


class LessonsModel:
    """The lessons tab: the result, the lesson chosen, the conv7 cell clicked (classifier), the newest request (only
    its answer is shown: a stale one never is), and the lesson shown; the whole-image crop run is measured once per
    image, so a new cell runs only that cell's crop."""

    def __init__(self, backend: ClassroomBackend, new_job: NewJob, nets: Callable[[], Nets | None]) -> None:
        self.backend = backend
        self.listener: LessonsListener | None = None
        self._new_job = new_job
        self._nets = nets
        self.lesson: Lesson = "classifier"
        self.cell: tuple[int, int] | None = None
        self.result: ViewResult | None = None
        self.ground_truth: GroundTruth | None = None
        self.shown: LessonResult | None = None
        self._job = 0

    def show(self, result: ViewResult, ground_truth: GroundTruth | None) -> None:
        """The result the lessons use next (:meth:`compute` asks for the chosen one); a new image forgets the cell."""
        if self.result is None or self.result.path != result.path or self.result.image_size != result.image_size:
            self.cell = None
        self.result, self.ground_truth = result, ground_truth

    def clear(self) -> None:
        """Nothing to teach; an answer on its way is not shown."""
        self.result, self.shown = None, None

    def choose(self, lesson: Lesson) -> None:
        self.lesson = lesson
        self.compute()

    def click(self, row: int, column: int) -> None:
        """The classifier lesson at the conv7 cell whose crop is centred nearest image pixel (row, column)."""
        result = self.result
        if result is None or result.meta is None or self.lesson != "classifier":
            return
        self.cell = cell_at(result.meta.config, result.image_size, row, column)
        self.compute()

    def compute(self) -> None:
        """Asks for the chosen lesson on the result with the viewer's net (a request still waiting is dropped)."""
        result, nets = self.result, self._nets()
        if result is None or nets is None:
            return
        shown = self.shown
        base = None
        if (shown is not None and shown.request.result is result and shown.sliding is not None
                and self.lesson == "classifier"):
            base = shown.sliding
        if self.listener is not None:
            self.listener.lesson_started(self.lesson)
        self._job = self._new_job(self._answered)
        self.backend.lesson(self._job, LessonRequest(self.lesson, result, nets, self.cell, self.ground_truth, base))

    def _answered(self, job: int, answer: object) -> None:
        if job != self._job:
            return  # an older request: cancelled before it started, or finished after a newer one was made
        if isinstance(answer, JobFailed):
            if self.listener is not None:
                self.listener.lesson_failed(answer.message)
        elif isinstance(answer, LessonResult) and answer.request.result is self.result:
            self.shown = answer
            if self.listener is not None:
                self.listener.lesson_shown(answer)


@dataclass(frozen=True)
class ShownFrame:
    """A played frame to draw: its pictures, the classes of the net that segmented it, whether it is the first
    frame shown since the sequence was opened, and the status line."""

    pictures: FramePictures
    classes: tuple[str, ...]
    fresh: bool
    status: str


class PlaybackListener(Protocol):
    """What the sequence tab draws."""

    def opened(self, frames: int) -> None:
        """A sequence of ``frames`` frames is open."""
        ...

    def playing_changed(self, playing: bool) -> None:
        """Playback started (the tab ticks :meth:`PlaybackModel.tick` at ``rate``) or stopped."""
        ...

    def frame_shown(self, shown: ShownFrame) -> None: ...

    def playback_status(self, message: str) -> None: ...


class ContributionsModel:
    """The contributions tab's split: the result and label to split, the newest request (only its answer is
    shown), and the split shown, reused when only the class changes."""

    def __init__(self, backend: ClassroomBackend, new_job: NewJob) -> None:
        self.backend = backend
        self.listener: ContributionsListener | None = None
        self._new_job = new_job
        self.result: ViewResult | None = None
        self.ground_truth: GroundTruth | None = None
        self.shown: ContributionResult | None = None
        self._keep_base = False  # the next split may reuse the shown one (only the class changed)
        self._job = 0

    def show(self, result: ViewResult, ground_truth: GroundTruth | None) -> None:
        """The result to split next (:meth:`compute` asks for it)."""
        self.result, self.ground_truth = result, ground_truth
        self._keep_base = False

    def clear(self) -> None:
        """Nothing to split; an answer on its way is not shown."""
        self.result, self.shown = None, None

    def compute(self, class_index: int | None, scale: TermScale = "shared") -> None:
        """Asks for the split of the result, its term maps drawn for ``class_index`` (None: the predicted class) on
        ``scale`` (one for all terms, or each its own); the split shown is reused when only these changed."""
        result = self.result
        if result is None:
            return
        shown, keep_base, self._keep_base = self.shown, self._keep_base, True
        base = shown.analysis if keep_base and shown is not None and shown.request.result is result else None
        if (shown is None or shown.request.result is not result) and self.listener is not None:
            self.listener.split_started()
        self._job = self._new_job(self._answered)
        self.backend.split(self._job, ContributionRequest(result, self.ground_truth, class_index, base, scale))

    def _answered(self, job: int, answer: object) -> None:
        if job != self._job:
            return  # an older request: cancelled before it started, or finished after a newer one was made
        if isinstance(answer, JobFailed):
            self.clear()
            if self.listener is not None:
                self.listener.split_failed(answer.message)
        elif isinstance(answer, ContributionResult) and answer.request.result is self.result:
            shown = self.shown
            if answer.request.base is not None and shown is not None and answer.truth_error is None:
                answer = ContributionResult(answer.request, answer.analysis, answer.pictures, shown.truth_error)
            self.shown = answer
            if self.listener is not None:
                self.listener.split_shown(answer)


class PlaybackModel:
    """Sequence playback: the frames, the rate, which frame is due, asked for and shown, and the counts of frames
    dropped. The newest frame wins: a frame asked for supersedes a waiting one, and a frame finishing after a newer
    one was shown is not shown."""

    def __init__(self, backend: ClassroomBackend, new_job: NewJob, nets: Callable[[], Nets | None],
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.backend = backend
        self.listener: PlaybackListener | None = None
        self._new_job = new_job
        self._nets = nets
        self._now = clock
        self.source: FrameSource | None = None
        self.rate = DEFAULT_FPS
        self.playing = False
        self.palette: tuple[Color, ...] = ()
        self.opacity = 0.6
        self.exporting = False
        self.requested = -1  # the newest frame asked for
        self.shown_index = -1
        self.shown_count = 0
        self.skipped = 0  # frames the clock passed over while the net was busy
        self.overtaken = 0  # frames asked for but replaced by a newer request before the net got to them
        self._clock: PlaybackClock | None = None
        self._shown_job = 0
        self._play_started = 0.0
        self._play_shown = 0

    @property
    def dropped(self) -> int:
        """Frames passed over: skipped by the clock, or overtaken while waiting for the net."""
        return self.skipped + self.overtaken

    @property
    def can_play(self) -> bool:
        """Frames are open and a model is loaded."""
        return self.source is not None and self._nets() is not None

    def set_colors(self, palette: Sequence[Color], opacity: float) -> None:
        """The colours of the frames asked for from now on."""
        self.palette, self.opacity = tuple(palette), opacity

    @property
    def missing(self) -> str:
        """What to do before frames can play ("" when they can): open frames, or load a model."""
        if self.source is None:
            return NO_FRAMES
        return "" if self.can_play else NO_MODEL_TO_PLAY

    def model_changed(self, meta: ModelMeta) -> None:
        """A new model plays the next frames; its palette until the viewer's colours come. Frames opened before any
        model have their first frame asked for now."""
        if not self.palette:
            self.palette = tuple(meta.palette)
        if self.source is not None and self.requested < 0:
            self.request(0)

    def open_bundled(self, replace: bool = False) -> bool:
        """Opens the bundled CamVid sequence, if one is installed and nothing is open yet (or ``replace``); whether it
        did. Asked for (``replace``), a missing one is told."""
        if self.source is not None and not replace:
            return False
        folder = bundled_sequence()
        if folder is None:
            if replace:
                self._status("No bundled sequence is installed (its folder, sequence/, is not among the bundled files).")
            return False
        return self.open(folder)

    def open(self, path: Path) -> bool:
        """Opens a folder of frames, an animated image or a video and asks for its first frame; False (with the
        reason told) if it cannot be played."""
        try:
            source = open_sequence(path)
        except FCNViewerError as error:
            self._status(str(error))
            return False
        self.pause()
        self.source = source
        self.shown_index, self.requested = -1, -1
        if self.listener is not None:
            self.listener.opened(len(source))
        self.request(0)
        return True

    def set_rate(self, fps: float) -> None:
        self.rate = fps
        if self.playing:
            self._restart_clock()

    def play(self) -> None:
        if self.missing:
            self._status(self.missing)
            return
        assert self.source is not None
        if self.shown_index >= len(self.source) - 1:
            self.shown_index, self.requested = -1, -1  # from the start again
        self._restart_clock()
        self._play_started, self._play_shown = self._now(), self.shown_count
        self.playing = True
        if self.listener is not None:
            self.listener.playing_changed(True)

    def _restart_clock(self) -> None:
        self._clock = PlaybackClock(self.rate, max(self.shown_index, self.requested, -1) + 1, self._now())

    def pause(self) -> None:
        if self.playing:
            self.playing = False
            if self.listener is not None:
                self.listener.playing_changed(False)

    def step(self, delta: int) -> None:
        """Pauses and asks for the next (+1) or previous (−1) frame."""
        self.pause()
        if self.source is not None:
            base = max(self.shown_index, 0)
            self.request(min(max(base + delta, 0), len(self.source) - 1))

    def seek(self, index: int) -> None:
        self.pause()
        self.request(index)

    def tick(self) -> None:
        """Asks for the frame due now, if it is newer than the one asked for; the last frame ends playback."""
        if self.source is None or self._clock is None:
            self.pause()
            return
        due = min(self._clock.due(self._now()), len(self.source) - 1)
        if due > self.requested:
            self.skipped += max(0, due - self.requested - 1)
            self.request(due)
        if due >= len(self.source) - 1:
            self.pause()  # the last frame is asked for; it is shown when done

    def request(self, index: int) -> None:
        """Asks for frame ``index``; a request still waiting is replaced (the newest frame wins)."""
        nets = self._nets()
        if self.source is None or nets is None or nets.model is None or self.exporting:
            return
        self.requested = index
        classes = tuple(nets.model.meta.classes)
        job = self._new_job(lambda number, answer: self._answered(number, answer, classes))
        self.backend.play_frame(job, FrameRequest(self.source, index, nets, self.palette, self.opacity))

    def export(self, target: Path) -> None:
        """Segments every frame and writes the stage panels to ``target`` as an animated GIF; a target that cannot
        be written is told at once, before any frame is segmented."""
        nets = self._nets()
        if self.source is None or nets is None:
            return
        self.pause()
        try:
            check_gif_target(target)
        except FCNViewerError as error:
            self._status(f"GIF not exported: {error}")
            return
        self.exporting = True
        self._status(f"Exporting {len(self.source)} frames to {target}…")
        request = ExportRequest(self.source, target, nets, self.palette, self.opacity, self.rate)
        self.backend.export_frames(self._new_job(lambda _, answer: self._exported(answer)), request)

    def _exported(self, answer: object) -> None:
        self.exporting = False
        if isinstance(answer, Exported):
            self._status(f"Saved {answer.frames} frames of stage panels to {answer.path}")
        elif isinstance(answer, JobFailed):  # its message names the GIF, or the frame that could not be read
            self._status(f"GIF not exported: {answer.message}")
        elif isinstance(answer, JobCancelled):
            self._status("GIF export stopped; nothing was written.")

    def _answered(self, job: int, answer: object, classes: tuple[str, ...]) -> None:
        if isinstance(answer, JobCancelled):  # a frame overtaken by a newer request before it started
            self.overtaken += 1
        elif isinstance(answer, JobFailed):
            self.pause()
            self._status(f"Cannot play this frame: {answer.message}")
        elif isinstance(answer, FramePictures):
            if job <= self._shown_job:  # an older request finishing late: never shown over a newer frame
                return
            self._shown_job = job
            fresh = self.shown_index < 0
            self.shown_index = answer.index
            self.shown_count += 1
            if self.listener is not None:
                self.listener.frame_shown(ShownFrame(answer, classes, fresh, self._describe(answer)))

    def _describe(self, pictures: FramePictures) -> str:
        assert self.source is not None
        line = f"frame {pictures.index + 1} / {len(self.source)} · net {pictures.inference_ms:.0f} ms"
        if self.playing:
            elapsed = self._now() - self._play_started
            shown = self.shown_count - self._play_shown
            achieved = shown / elapsed if elapsed > 0 else 0.0
            line += (f" · playing at {self.rate:g} fps: showing {achieved:.1f} fps, "
                     f"{self.dropped} frame{'' if self.dropped == 1 else 's'} dropped so far")
        return line

    def _status(self, message: str) -> None:
        if self.listener is not None:
            self.listener.playback_status(message)


class ClassroomModel:
    """Owns the teaching mode, the family, the shown image's ground truth and analysis and the dataset run, and
    (``contributions``, ``playback``) the tabs with work of their own; numbers every job and drops stale answers.

    The window side tells it of each result shown (:meth:`show_result`), model in use (:meth:`model_changed`) and
    colour change (:meth:`set_colors`); the current model, device and precision are read from ``viewer``.
    """

    def __init__(self, backend: ClassroomBackend, viewer: CurrentModel, listener: ClassroomListener,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.backend = backend
        self.viewer = viewer
        self.listener = listener
        self.mode: CompareMode = "stages"
        self.family: tuple[RegistryEntry, ...] = ()
        self.radius = DEFAULT_BOUNDARY_RADIUS
        self.palette: tuple[Color, ...] = ()
        self.opacity = 0.6
        self.result: ViewResult | None = None  # the shown result with a model (None: nothing to teach)
        self.analysis: ImageAnalysis | None = None  # the analysis shown
        # Whether a tab that draws the analysis (compare, ground truth) is shown: while none is, a new image's
        # analysis waits (:meth:`want_analysis`), so it takes no CPU from the next image's pass and the drawing.
        self.analysis_wanted = True
        self._analysis_due = False
        self.ground_truth: GroundTruth | None = None
        self.picked_labels: dict[Path, Path] = {}
        self.dataset: SegmentationDataset | None = None
        self.dataset_root: Path | None = None
        self._last_job = 0
        self._answers: dict[int, Answer] = {}  # each job waiting for its answer, and who takes it
        self._analysis_job = 0
        self._dataset_job = 0
        self._dataset_nets: Nets | None = None
        self.contributions = ContributionsModel(backend, self._new_job)
        self.playback = PlaybackModel(backend, self._new_job, self._playback_nets, clock)
        self.lessons = LessonsModel(backend, self._new_job, self._playback_nets)

    # ---- jobs ---------------------------------------------------------------------------------

    def _new_job(self, answer: Answer) -> int:
        """A new job number; the job's answer goes to ``answer``."""
        self._last_job += 1
        self._answers[self._last_job] = answer
        return self._last_job

    @property
    def waiting(self) -> int:
        """How many jobs are not answered yet."""
        return len(self._answers)

    def answer(self, job: int, value: object) -> None:
        """An answer of the backend: a job's value (JobFailed or JobCancelled when it has none), or a dataset run's
        ImageScores on its way."""
        if isinstance(value, ImageScores):
            self._image_scored(job, value)
            return
        answer = self._answers.pop(job, None)
        if answer is not None:
            answer(job, value)

    def shutdown(self) -> None:
        """Playback stops and the backend stops its work."""
        self.playback.pause()
        self.backend.shutdown()

    # ---- the model, the mode, the colours ------------------------------------------------------

    def _nets(self, model: ModelInfo | None) -> Nets:
        """The nets to run with ``model`` (the viewer's): its own net, and the family on its device at its precision."""
        return Nets(self.mode, model, self.family, self.viewer.device, self.viewer.precision)

    def _playback_nets(self) -> Nets | None:
        model = self.viewer.model
        return None if model is None else Nets("stages", model, (), self.viewer.device, self.viewer.precision)

    @property
    def separate_available(self) -> bool:
        """An installed net of the family to compare with."""
        return any(member.available for member in self.family)

    @property
    def separate_note(self) -> str:
        """Why the separately trained nets cannot be chosen ("" when they can)."""
        return "" if self.separate_available else NO_FAMILY

    def model_changed(self, info: ModelInfo) -> None:
        """The viewer's model changed: its family, and the nets loaded beside it are forgotten."""
        name = info.source.label if isinstance(info.source, RegistrySource) else info.meta.name
        self.family = family_of(name, info.meta.classes)
        self.backend.forget_nets()
        self._check_mode()
        self.playback.model_changed(info.meta)

    def _check_mode(self) -> None:
        if not self.separate_available and self.mode == "separate":
            self.mode = "stages"
        self.listener.mode_changed()

    def set_mode(self, mode: CompareMode) -> None:
        """Stages of the one net, or the separately trained nets, in both the compare and ground-truth tabs."""
        self.mode = mode
        self._check_mode()
        self.request_analysis()

    def set_radius(self, radius: float) -> None:
        """The boundary zone of the comparison changed: the shown image is analysed again."""
        self.radius = radius
        self.request_analysis()

    def set_colors(self, palette: Sequence[Color], opacity: float) -> None:
        """The viewer's colours, for the pictures drawn from now on (the tabs recolour the ones shown)."""
        self.palette, self.opacity = tuple(palette), opacity
        self.playback.set_colors(palette, opacity)

    # ---- the shown image -----------------------------------------------------------------------

    def show_result(self, result: ViewResult) -> None:
        """The viewer shows ``result``: with a model, its label is looked for and its analysis asked for."""
        if result.segmentation is None or result.meta is None:
            self.result, self.analysis = None, None
            self.contributions.clear()
            self.lessons.clear()
            return
        self.result = result
        self.request_analysis()

    def pick_label(self, label: Path) -> bool:
        """Uses ``label`` as the shown image's ground truth; False when no image is shown."""
        if self.result is None:
            return False
        self.picked_labels[self.result.path] = label
        self.request_analysis()
        return True

    def want_analysis(self, wanted: bool) -> None:
        """Whether a tab that draws the analysis is shown; shown again, it gets the analysis of the image shown now."""
        self.analysis_wanted = wanted
        if wanted and self._analysis_due:
            self.request_analysis()

    def request_analysis(self) -> None:
        """Finds the shown image's label (the tabs' frames carry it) and asks for its analysis, now if a tab that
        draws it is shown, else when one is (:meth:`want_analysis`)."""
        result = self.result
        if result is None or result.meta is None:
            return
        label = self.picked_labels.get(result.path) or find_label(result.path)
        meta = result.meta
        self.ground_truth = None if label is None else GroundTruth(
            label, meta.config.num_classes, ignore_index_for(label, meta.classes), DEFAULT_TOLERANCE
        )
        self._analysis_due = not self.analysis_wanted
        if self._analysis_due:
            if self._analysis_job:  # one asked for an image no longer shown: stopped, its answer dropped
                self.backend.cancel_analysis()
                self._analysis_job = 0
            return
        self.listener.analysis_started(self.analysis is None or self.analysis.path != result.path)
        request = AnalysisRequest(result, self._nets(self.viewer.model), self.radius, self.ground_truth,
                                  self.palette, self.opacity)
        self._analysis_job = self._new_job(self._analysed)
        self.backend.analyse(self._analysis_job, request)

    def _analysed(self, job: int, answer: object) -> None:
        if job != self._analysis_job:
            return  # superseded by a newer request
        if isinstance(answer, JobFailed):
            self.listener.analysis_failed(answer.message)
        elif isinstance(answer, Analysed):
            result = self.result
            if result is None or answer.analysis.path != result.path:
                return
            self.analysis = answer.analysis
            self.listener.analysis_changed(answer)

    # ---- datasets ------------------------------------------------------------------------------

    def open_dataset(self, root: Path, split: str | None = None) -> None:
        """Lists a split's images (and opens the first); scores them all when a model is loaded."""
        splits = available_splits(root)
        if not splits:
            self.listener.show_error(f"{root}: not a dataset folder; expected <split>/ with <split>annot/ beside it "
                                     "(CamVid layout) or a VOCdevkit/VOC20xx folder")
            return
        split = split if split in splits else ("val" if "val" in splits else splits[0])
        try:
            dataset = open_dataset(root, split)
        except FCNViewerError as error:
            self.listener.show_error(str(error))
            return
        self.backend.cancel_dataset()
        self._dataset_job = 0  # the answers of an earlier run are not shown
        self.dataset, self.dataset_root = dataset, Path(root)
        self.listener.dataset_opened(Path(root), splits, split)
        self._list_images(NO_MODEL_TO_SCORE)
        self.listener.open_image(dataset.samples[0].image_path)
        if self.viewer.model is not None:
            self.score_dataset()

    def choose_split(self, split: str) -> None:
        if self.dataset_root is not None:
            self.open_dataset(self.dataset_root, split)

    def _list_images(self, status: str, nets: Nets | None = None) -> None:
        assert self.dataset is not None
        stages = dataset_stages(nets) if nets is not None else ()
        self.listener.dataset_listed([sample.image_path for sample in self.dataset.samples], stages, status)

    def score_dataset(self) -> None:
        """Scores every image of the open dataset with the nets of the mode chosen (a run going on stops)."""
        if self.dataset is None:
            return
        if self.viewer.model is None:
            self.listener.dataset_stopped(NO_MODEL_TO_SCORE)
            return
        nets = self._nets(self.viewer.model)
        self._dataset_nets = nets
        self._list_images("", nets)
        self.listener.dataset_started(describe_nets(nets))
        self._dataset_job = self._new_job(self._dataset_done)
        self.backend.score_dataset(self._dataset_job, DatasetRequest(self.dataset, nets, DEFAULT_TOLERANCE))

    def stop_dataset(self) -> None:
        """The run going on stops before its next image (and reports what it scored)."""
        self.backend.cancel_dataset()

    def _image_scored(self, job: int, scores: ImageScores) -> None:
        if job == self._dataset_job and self._dataset_nets is not None:
            self.listener.image_scored(image_row(scores, dataset_stages(self._dataset_nets)), scores.index + 1)

    def _dataset_done(self, job: int, answer: object) -> None:
        nets = self._dataset_nets
        if job != self._dataset_job or nets is None:
            return
        if isinstance(answer, JobFailed):
            self.listener.dataset_stopped(answer.message)
        elif isinstance(answer, JobCancelled):
            self.listener.dataset_stopped("Stopped before any image was scored.")
        elif isinstance(answer, Evaluation):
            self.listener.dataset_finished(dataset_row(answer, dataset_stages(nets)), describe_nets(nets),
                                           answer.images if answer.cancelled else None, answer)


def dataset_stages(nets: Nets) -> tuple[Stage, ...]:
    """The dataset table's stages: the model's, or the finest of each installed net of the family."""
    if nets.mode == "separate":
        return tuple(member.stages[-1] for member in nets.family if member.available)
    return nets.model.meta.config.stages if nets.model is not None else ()


def describe_nets(nets: Nets) -> str:
    """What a dataset run scores, e.g. "every stage of camvid FCN-8s"."""
    if nets.mode == "separate":
        return "the separately trained " + ", ".join(member.name for member in nets.family if member.available)
    return f"every stage of {nets.model.meta.title}" if nets.model is not None else "no model"
