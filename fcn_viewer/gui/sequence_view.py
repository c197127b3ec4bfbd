"""Sequence tab: plays a folder of frames (or an animated image) at a chosen rate with every stage panel live.

The newest frame wins: a timer says which frame is due, the view's job queue segments only the newest request
(an older one still waiting is cancelled), and late frames are dropped rather than queued, so the picture never
lags. Pause, step, and export a GIF."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QHideEvent
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from fcn_viewer.classes import Color
from fcn_viewer.errors import FCNViewerError
from fcn_viewer.gui.cells import TextCell
from fcn_viewer.gui.jobs import Job, JobQueue
from fcn_viewer.gui.panels import PanelGrid
from fcn_viewer.gui.tab import TabFrame, TabPage, status_line
from fcn_viewer.inference import Segmentation, Segmenter, release_device_memory
from fcn_viewer.model.stages import STAGE_STRIDES
from fcn_viewer.teaching.sequence import (
    SCORE_MAP_TITLES,
    FramePictures,
    FrameSource,
    PlaybackClock,
    export_gif,
    open_sequence,
    segment_frame,
)
from fcn_viewer.view.outcome import JobCancelled, JobFailed
from fcn_viewer.weights.meta import ModelMeta

STAGES = ("32s", "16s", "8s")
DEFAULT_FPS = 5.0
SHARE_CUTOFF = 0.005  # classes covering less of the frame are left out of its class list
GIF_FILTER = "Animated GIF (*.gif)"
Segment = Callable[[np.ndarray], Segmentation]


@dataclass(frozen=True)
class FrameRequest:
    """Segment frame ``index`` of ``source`` (or, with ``export``, write every frame's strips to that GIF)."""

    source: FrameSource
    index: int
    loader: Callable[[], Segmenter]
    palette: tuple[Color, ...]
    opacity: float
    export: Path | None = None
    fps: float = DEFAULT_FPS


@dataclass(frozen=True)
class Exported:
    path: Path
    frames: int


class SequenceView(TabPage):
    """Plays a frame source through the loaded model; ``frameShown(index)`` after each frame is drawn."""

    title = "Sequence"
    menu_title = "Play a Frame Se&quence"
    shortcut = "Ctrl+6"
    frameShown = Signal(int)
    playingChanged = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source: FrameSource | None = None
        self._loader: Callable[[], Segmenter] | None = None
        self._segmenter: tuple[Callable[[], Segmenter], Segmenter] | None = None  # used on the queue's thread only
        self._palette: tuple[Color, ...] = ()
        self._classes: tuple[str, ...] = ()
        self._opacity = 0.6
        self._clock: PlaybackClock | None = None
        self._requested = -1
        self._shown_job = 0
        self.shown_index = -1
        self._shown_size = (0, 0)
        self.frame_shares: dict[str, float] = {}  # the current frame's listed classes and their shares
        self._shown_pictures: tuple[FramePictures, str] | None = None
        self.shown_count = 0
        self.skipped = 0  # frames the clock passed over while the net was busy
        self.overtaken = 0  # frames requested but replaced by a newer request before the net got to them
        self._play_started = 0.0
        self._play_shown = 0
        self._exporting = False
        self.jobs = JobQueue("fcn-viewer sequence", self, on_error=release_device_memory)
        self.jobs.finished.connect(self._answered)
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._tick)

        self.open_button = QPushButton("Open Frames Folder…")
        self.open_button.clicked.connect(self.open_dialog)
        self.play_button = QPushButton("▶ Play")
        self.play_button.setToolTip("Play or pause (frames the net cannot keep up with are dropped, never queued)")
        self.play_button.clicked.connect(self.toggle_play)
        self.back_button = QPushButton("◀ Step")
        self.back_button.clicked.connect(lambda: self.step(-1))
        self.next_button = QPushButton("Step ▶")
        self.next_button.clicked.connect(lambda: self.step(1))
        self.rate = QDoubleSpinBox()
        self.rate.setRange(0.2, 60.0)
        self.rate.setValue(DEFAULT_FPS)
        self.rate.setSuffix(" fps")
        self.rate.setToolTip("The rate frames are due at; the achieved rate is shown beside")
        self.rate.valueChanged.connect(self.set_rate)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setEnabled(False)
        self.slider.sliderMoved.connect(self.seek)
        self.export_button = QPushButton("Export GIF…")
        self.export_button.setToolTip("Segment every frame and write the stage panels as an animated GIF")
        self.export_button.clicked.connect(self.export_dialog)
        self.status = status_line("Open a folder of frames (e.g. a CamVid split: it is cut from dashcam video) or an "
                                  "animated GIF. Videos: extract frames first (ffmpeg -i in.mp4 frames/%05d.png).", 15)
        self.photo = self._panel("input")
        self.score_maps = {stage: self._panel(f"scores-{stage}") for stage in STAGES}
        self.masks = {stage: self._panel(f"mask-{stage}") for stage in STAGES}
        # This frame's classes, where the Stages tab has its info panel (the window's legend is the Stages image's).
        self.shares_heading = QLabel()
        self.shares_heading.setStyleSheet("font-weight: 600;")
        self.shares = QLabel()
        self.shares.setObjectName("frameShares")
        self.shares.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.shares.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.shares_cell = TextCell()
        self.shares_cell.setToolTip("The share of this frame each class covers in the finest mask. The class legend "
                                    "at the window's side counts the image of the Stages tab.")
        cell_layout = QVBoxLayout(self.shares_cell)
        cell_layout.setContentsMargins(4, 0, 0, 0)
        cell_layout.addWidget(self.shares_heading)
        cell_layout.addWidget(self.shares, 1)
        self.grid = PanelGrid()
        for panel in [self.photo, *self.score_maps.values(), *self.masks.values()]:
            self.grid.add(panel.key, panel)
        self.grid.add("info", self.shares_cell)
        top = QHBoxLayout()
        for widget in (self.open_button, self.back_button, self.play_button, self.next_button, self.rate):
            top.addWidget(widget)
        top.addWidget(self.slider, 1)
        top.addWidget(self.export_button)
        self._arrange(top, self.status, (self.grid, 1))
        self._set_panels_visible((), (1, 1))

    def _set_panels_visible(self, stages: Sequence[str], image_size: tuple[int, int]) -> None:
        """The photo, the score maps and masks of ``stages`` and the frame's class list, laid out as the Stages tab
        lays out its panels: each the image's aspect ratio, as large as the tab allows."""
        stages = tuple(stage for stage in STAGES if stage in stages)
        keys = ["input", *(f"scores-{stage}" for stage in stages), *(f"mask-{stage}" for stage in stages), "info"]
        self.grid.show_panels(keys if stages else [], stages, image_size)

    # ---- what plays, through what ------------------------------------------------------------

    def set_model(self, meta: ModelMeta, loader: Callable[[], Segmenter]) -> None:
        """The net to segment frames with; ``loader`` runs on the playback thread when first needed."""
        self._loader = loader
        self._classes = tuple(meta.classes)
        if not self._palette:
            self._palette = tuple(meta.palette)

    def set_frame(self, frame: TabFrame) -> None:
        """Plays on in the frame's colours (the viewer's model reaches playback by :meth:`set_model`)."""
        self.set_colors(frame.palette, frame.opacity)

    def set_colors(self, palette: Sequence[Color], opacity: float) -> None:
        self._palette, self._opacity = tuple(palette), opacity
        if self._shown_pictures is not None:  # the class list's swatches now; the panels with the next frame
            self._show_shares(*self._shown_pictures)

    def clear(self) -> None:
        """Nothing to clear: the frames stay, and play through the next model loaded."""

    def ask_folder(self) -> Path | None:
        name = QFileDialog.getExistingDirectory(self, "Open a folder of frames")
        return Path(name) if name else None

    def ask_gif_path(self) -> Path | None:
        name, _ = QFileDialog.getSaveFileName(self, "Export the stage panels as a GIF", "", GIF_FILTER)
        return Path(name) if name else None

    def open_dialog(self) -> None:
        folder = self.ask_folder()
        if folder is not None:
            self.open_folder(folder)

    def open_folder(self, path: Path) -> bool:
        """Opens a folder of frames or an animated image and shows its first frame; False (with the reason shown)
        if it cannot be played."""
        try:
            source = open_sequence(path)
        except FCNViewerError as error:
            self.status.setText(str(error))
            return False
        self.pause()
        self.source = source
        self.slider.setRange(0, len(source) - 1)
        self.slider.setEnabled(True)
        self.shown_index, self._requested = -1, -1
        self.request(0)
        return True

    def hideEvent(self, event: QHideEvent) -> None:
        """Playback stops when the tab is left: the net should not keep a core busy for frames nobody sees."""
        super().hideEvent(event)
        self.pause()

    # ---- playback ----------------------------------------------------------------------------

    @property
    def playing(self) -> bool:
        return self.timer.isActive()

    def set_rate(self, fps: float) -> None:
        if abs(self.rate.value() - fps) > 1e-9:
            self.rate.setValue(fps)  # comes back here through valueChanged
            return
        self.timer.setInterval(max(1, round(1000 / fps / 2)))  # tick twice a frame: a due frame waits ≤ half a frame
        if self.playing:
            self._restart_clock()

    def toggle_play(self) -> None:
        self.pause() if self.playing else self.play()

    def play(self) -> None:
        if self.source is None or self._loader is None:
            self.status.setText("Open frames and load a model to play.")
            return
        if self.shown_index >= len(self.source) - 1:
            self.shown_index, self._requested = -1, -1  # from the start again
        self._restart_clock()
        self._play_started, self._play_shown = time.perf_counter(), self.shown_count
        self.set_rate(self.rate.value())
        self.timer.start()
        self.play_button.setText("❚❚ Pause")
        self.playingChanged.emit(True)

    def _restart_clock(self) -> None:
        self._clock = PlaybackClock(self.rate.value(), max(self.shown_index, self._requested, -1) + 1,
                                    time.perf_counter())

    def pause(self) -> None:
        was_playing = self.playing
        self.timer.stop()
        self.play_button.setText("▶ Play")
        if was_playing:
            self.playingChanged.emit(False)

    def step(self, delta: int) -> None:
        """Pauses and shows the next (+1) or previous (−1) frame."""
        self.pause()
        if self.source is not None:
            base = max(self.shown_index, 0)
            self.request(min(max(base + delta, 0), len(self.source) - 1))

    def seek(self, index: int) -> None:
        self.pause()
        self.request(index)

    def _tick(self) -> None:
        if self.source is None or self._clock is None:
            self.pause()
            return
        due = min(self._clock.due(time.perf_counter()), len(self.source) - 1)
        if due > self._requested:
            self.skipped += max(0, due - self._requested - 1)
            self.request(due)
        if due >= len(self.source) - 1:
            self.pause()  # the last frame is requested; it is shown when done

    def request(self, index: int) -> None:
        """Asks for frame ``index``; a request still waiting is replaced (the newest frame wins)."""
        if self.source is None or self._loader is None or self._exporting:
            return
        self._requested = index
        request = FrameRequest(self.source, index, self._loader, self._palette, self._opacity)
        self.jobs.submit(lambda job: self._work(request, job), key="frame")

    @property
    def dropped(self) -> int:
        """Frames passed over: skipped by the clock, or overtaken while waiting for the net."""
        return self.skipped + self.overtaken

    # ---- the playback thread -------------------------------------------------------------------

    def _work(self, request: FrameRequest, job: Job) -> FramePictures | Exported:
        cached = self._segmenter
        if cached is None or cached[0] is not request.loader:
            self._segmenter = cached = (request.loader, request.loader())
        segment: Segment = cached[1].segment
        if request.export is not None:  # stops between frames when the queue shuts down (the window closes)
            path = export_gif(request.export, request.source, segment, request.palette, request.opacity, request.fps,
                              progress=lambda _, __: not job.cancelled())
            return Exported(path, len(request.source))
        return segment_frame(request.source, request.index, segment, request.palette, request.opacity)

    # ---- drawing -------------------------------------------------------------------------------

    def _answered(self, job: int, answer: object) -> None:
        """Every job's answer, in order, on the GUI thread."""
        if isinstance(answer, JobCancelled):  # a frame overtaken by a newer request before it started
            self.overtaken += 1
        elif isinstance(answer, JobFailed):
            self._fail(answer.message)
        elif isinstance(answer, Exported):
            self._exported(answer)
        elif isinstance(answer, FramePictures):
            self._show(job, answer)

    def _fail(self, message: str) -> None:
        self._exporting = False
        self.pause()
        self.status.setText(f"Cannot play this frame: {message}")

    def _exported(self, done: Exported) -> None:
        self._exporting = False
        self.status.setText(f"Saved {done.frames} frames of stage panels to {done.path}")

    def _show(self, job: int, pictures: FramePictures) -> None:
        if job <= self._shown_job:  # an older request finishing late: never shown over a newer frame
            return
        self._shown_job = job
        height, width = pictures.photo.shape[:2]
        stages = tuple(pictures.masks)
        first = self.shown_index < 0 or (height, width) != self._shown_size
        self._shown_size = (height, width)
        self._set_panels_visible(stages, (height, width))
        self.photo.set_title(f"frame {pictures.index + 1} · {pictures.name} · 3×{height}×{width}",
                             f"frame {pictures.index + 1}", pictures.name)
        self.photo.view.set_pixels(pictures.photo, (height, width))
        for stage in stages:
            scores = pictures.score_maps[stage]
            shape = pictures.score_shapes.get(stage) or (len(self._classes), *scores.shape[:2])
            self.score_maps[stage].set_title(
                f"{SCORE_MAP_TITLES[stage]} · stride {STAGE_STRIDES[stage]} · {'×'.join(map(str, shape))}",
                f"{SCORE_MAP_TITLES[stage]} · {'×'.join(map(str, shape))}")
            self.score_maps[stage].view.set_pixels(scores, (height, width))
            self.masks[stage].set_title(
                f"{stage} mask · stride {STAGE_STRIDES[stage]} · {shape[0]}×{height}×{width}", f"{stage} mask")
            self.masks[stage].view.set_pixels(pictures.masks[stage], (height, width))
        self.shown_index = pictures.index
        self.shown_count += 1
        self.slider.blockSignals(True)
        self.slider.setValue(pictures.index)
        self.slider.blockSignals(False)
        if first:
            self.link.fit()
        self._shown_pictures = (pictures, stages[-1] if stages else "")
        self._show_shares(*self._shown_pictures)
        self._describe(pictures)
        self.frameShown.emit(pictures.index)

    def _show_shares(self, pictures: FramePictures, finest: str) -> None:
        """This frame's classes by the share of it they cover in the finest mask, largest first."""
        self.shares_heading.setText(f"Frame {pictures.index + 1}: classes in the {finest} mask")
        order = sorted(range(len(pictures.shares)), key=lambda index: -pictures.shares[index])
        rows = []
        self.frame_shares = {}
        for index in order:
            share = float(pictures.shares[index])
            if share < SHARE_CUTOFF:
                break
            name = self._classes[index] if index < len(self._classes) else f"class {index}"
            color = self._palette[index] if index < len(self._palette) else (128, 128, 128)
            rows.append(f"<tr><td><span style='color: rgb{tuple(color)}'>■</span> {name}</td>"
                        f"<td align='right'>&nbsp;&nbsp;{share:.1%}</td></tr>")
            self.frame_shares[name] = share
        self.shares.setText("<table>" + "".join(rows) + "</table>")

    def _describe(self, pictures: FramePictures) -> None:
        assert self.source is not None
        line = f"frame {pictures.index + 1} / {len(self.source)} · net {pictures.inference_ms:.0f} ms"
        if self.playing:
            elapsed = time.perf_counter() - self._play_started
            shown = self.shown_count - self._play_shown
            achieved = shown / elapsed if elapsed > 0 else 0.0
            line += (f" · playing at {self.rate.value():g} fps: showing {achieved:.1f} fps, "
                     f"{self.dropped} frames dropped so far")
        self.status.setText(line)

    # ---- export --------------------------------------------------------------------------------

    def export_dialog(self) -> None:
        if self.source is None or self._loader is None:
            self.status.setText("Open frames and load a model first.")
            return
        target = self.ask_gif_path()
        if target is not None:
            self.export(target if target.suffix.lower() == ".gif" else target.with_suffix(".gif"))

    def export(self, target: Path) -> None:
        """Segments every frame on the playback thread and writes the stage panels as an animated GIF."""
        if self.source is None or self._loader is None:
            return
        self.pause()
        self._exporting = True
        self.status.setText(f"Exporting {len(self.source)} frames to {target}…")
        request = FrameRequest(self.source, 0, self._loader, self._palette, self._opacity, target, self.rate.value())
        # No key: a frame request never supersedes an export (none is made while exporting), only shutdown stops it.
        self.jobs.submit(lambda job: self._work(request, job))

    def shutdown(self) -> None:
        """Stops playback and the queue's thread: waiting frames are dropped, an export stops before its next frame."""
        self.pause()
        self.jobs.shutdown()

