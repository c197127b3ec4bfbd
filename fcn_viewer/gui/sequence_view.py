"""Sequence tab: plays a video, an animated image or a folder of frames at a chosen rate with every stage panel live;
shown with nothing open, it opens the bundled CamVid sequence.

The newest frame wins: a timer ticks the playback model (view/classroom_model.py's PlaybackModel), which asks for
the frame due, supersedes a request still waiting and never shows a frame over a newer one, so the picture never
lags. Pause, step, and export a GIF."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QHideEvent, QShowEvent
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
from fcn_viewer.gui.cells import TextCell
from fcn_viewer.gui.panels import PanelGrid
from fcn_viewer.gui.tab import TabFrame, TabPage, status_line
from fcn_viewer.model.stages import STAGE_STRIDES
from fcn_viewer.teaching.sequence import MULTI_FRAME_SUFFIXES, SCORE_MAP_TITLES
from fcn_viewer.videoio import VIDEO_SUFFIXES
from fcn_viewer.view.classroom_model import NO_FRAMES, PlaybackModel, ShownFrame

STAGES = ("32s", "16s", "8s")
SHARE_CUTOFF = 0.005  # classes covering less of the frame are left out of its class list
GIF_FILTER = "Animated GIF (*.gif)"
SEQUENCE_FILTER = (f"Videos and animated images ({' '.join(f'*{s}' for s in sorted(VIDEO_SUFFIXES | MULTI_FRAME_SUFFIXES))})"
                   ";;All files (*)")


class SequenceView(TabPage):
    """Plays a frame source through the loaded model; ``frameShown(index)`` after each frame is drawn."""

    title = "Sequence"
    menu_title = "Play a Frame Se&quence"
    shortcut = "Ctrl+7"
    frameShown = Signal(int)
    playingChanged = Signal(bool)

    def __init__(self, playback: PlaybackModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.playback = playback
        playback.listener = self

        def forget() -> None:  # deleted before the model, the view is told nothing more: no call to a dead widget
            if playback.listener is self:
                playback.listener = None

        self.destroyed.connect(forget)
        self._shown_size = (0, 0)
        self.frame_shares: dict[str, float] = {}  # the current frame's listed classes and their shares
        self._shown_frame: ShownFrame | None = None
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(playback.tick)

        self.open_button = QPushButton("Open File…")
        self.open_button.setToolTip("Open a video (MP4, MOV, AVI, MKV, WebM) or an animated GIF / APNG / WebP / TIFF")
        self.open_button.clicked.connect(self.open_file_dialog)
        self.folder_button = QPushButton("Open Folder…")
        self.folder_button.setToolTip("Open a folder of frames, played in natural name order (f2 before f10)")
        self.folder_button.clicked.connect(self.open_dialog)
        self.play_button = QPushButton("▶ Play")
        self.play_button.setToolTip("Play or pause (frames the net cannot keep up with are dropped, never queued)")
        self.play_button.clicked.connect(self.toggle_play)
        self.back_button = QPushButton("◀ Step")
        self.back_button.clicked.connect(lambda: self.step(-1))
        self.next_button = QPushButton("Step ▶")
        self.next_button.clicked.connect(lambda: self.step(1))
        self.rate = QDoubleSpinBox()
        self.rate.setRange(0.2, 60.0)
        self.rate.setValue(playback.rate)
        self.rate.setSuffix(" fps")
        self.rate.setToolTip("The rate frames are due at; the achieved rate is shown beside")
        self.rate.valueChanged.connect(self.set_rate)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setEnabled(False)
        self.slider.sliderMoved.connect(self.seek)
        self.export_button = QPushButton("Export GIF…")
        self.export_button.setToolTip("Segment every frame and write the stage panels as an animated GIF")
        self.export_button.clicked.connect(self.export_dialog)
        self.status = status_line(NO_FRAMES, 15)
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
        for widget in (self.open_button, self.folder_button, self.back_button, self.play_button, self.next_button, self.rate):
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

    # ---- what plays ---------------------------------------------------------------------------

    def set_frame(self, frame: TabFrame) -> None:
        """Plays on in the frame's colours (the classroom model plays the viewer's model)."""
        self.set_colors(frame.palette, frame.opacity)

    def set_colors(self, palette: Sequence[Color], opacity: float) -> None:
        self.playback.set_colors(palette, opacity)
        if self._shown_frame is not None:  # the class list's swatches now; the panels with the next frame
            self._show_shares(self._shown_frame)

    def clear(self) -> None:
        """Nothing to clear: the frames stay, and play through the next model loaded."""

    def ask_folder(self) -> Path | None:
        name = QFileDialog.getExistingDirectory(self, "Open a folder of frames")
        return Path(name) if name else None

    def ask_file(self) -> Path | None:
        name, _ = QFileDialog.getOpenFileName(self, "Open a video or an animated image", "", SEQUENCE_FILTER)
        return Path(name) if name else None

    def ask_gif_path(self) -> Path | None:
        name, _ = QFileDialog.getSaveFileName(self, "Export the stage panels as a GIF", "", GIF_FILTER)
        return Path(name) if name else None

    def open_dialog(self) -> None:
        folder = self.ask_folder()
        if folder is not None:
            self.open_folder(folder)

    def open_file_dialog(self) -> None:
        path = self.ask_file()
        if path is not None:
            self.open_folder(path)

    def open_folder(self, path: Path) -> bool:
        """Opens a folder of frames, an animated image or a video and shows its first frame; False (with the reason
        shown) if it cannot be played."""
        return self.playback.open(path)

    def open_bundled(self) -> bool:
        """Opens the bundled CamVid sequence unless something is open; whether it did."""
        return self.playback.open_bundled()

    def showEvent(self, event: QShowEvent) -> None:
        """Shown with nothing open, the tab opens the bundled sequence, so Play works with no setup."""
        super().showEvent(event)
        self.open_bundled()

    def hideEvent(self, event: QHideEvent) -> None:
        """Playback stops when the tab is left: the net should not keep a core busy for frames nobody sees."""
        super().hideEvent(event)
        self.pause()

    # ---- playback (forwarded to the model) ------------------------------------------------------

    @property
    def playing(self) -> bool:
        return self.playback.playing

    def set_rate(self, fps: float) -> None:
        if abs(self.rate.value() - fps) > 1e-9:
            self.rate.setValue(fps)  # comes back here through valueChanged
            return
        self._set_interval(fps)
        self.playback.set_rate(fps)

    def _set_interval(self, fps: float) -> None:
        self.timer.setInterval(max(1, round(1000 / fps / 2)))  # tick twice a frame: a due frame waits ≤ half a frame

    def toggle_play(self) -> None:
        self.pause() if self.playing else self.play()

    def play(self) -> None:
        self.playback.play()

    def pause(self) -> None:
        self.playback.pause()

    def step(self, delta: int) -> None:
        """Pauses and shows the next (+1) or previous (−1) frame."""
        self.playback.step(delta)

    def seek(self, index: int) -> None:
        self.playback.seek(index)

    def request(self, index: int) -> None:
        """Asks for frame ``index``; a request still waiting is replaced (the newest frame wins)."""
        self.playback.request(index)

    # ---- the playback model's news (PlaybackListener) -------------------------------------------

    def opened(self, frames: int) -> None:
        self.slider.setRange(0, frames - 1)
        self.slider.setEnabled(True)

    def playing_changed(self, playing: bool) -> None:
        if playing:
            self._set_interval(self.playback.rate)
            self.timer.start()
            self.play_button.setText("❚❚ Pause")
        else:
            self.timer.stop()
            self.play_button.setText("▶ Play")
        self.playingChanged.emit(playing)

    def playback_status(self, message: str) -> None:
        self.status.setText(message)

    # ---- drawing -------------------------------------------------------------------------------

    def frame_shown(self, shown: ShownFrame) -> None:
        pictures = shown.pictures
        height, width = pictures.photo.shape[:2]
        stages = tuple(pictures.masks)
        first = shown.fresh or (height, width) != self._shown_size
        self._shown_size = (height, width)
        self._set_panels_visible(stages, (height, width))
        self.photo.set_title(f"frame {pictures.index + 1} · {pictures.name} · 3×{height}×{width}",
                             f"frame {pictures.index + 1}", pictures.name)
        self.photo.view.set_pixels(pictures.photo, (height, width))
        for stage in stages:
            scores = pictures.score_maps[stage]
            shape = pictures.score_shapes.get(stage) or (len(shown.classes), *scores.shape[:2])
            self.score_maps[stage].set_title(
                f"{SCORE_MAP_TITLES[stage]} · stride {STAGE_STRIDES[stage]} · {'×'.join(map(str, shape))}",
                f"{SCORE_MAP_TITLES[stage]} · {'×'.join(map(str, shape))}")
            self.score_maps[stage].view.set_pixels(scores, (height, width))
            self.masks[stage].set_title(
                f"{stage} mask · stride {STAGE_STRIDES[stage]} · {shape[0]}×{height}×{width}", f"{stage} mask")
            self.masks[stage].view.set_pixels(pictures.masks[stage], (height, width))
        self.slider.blockSignals(True)
        self.slider.setValue(pictures.index)
        self.slider.blockSignals(False)
        if first:
            self.link.fit()
        self._shown_frame = shown
        self._show_shares(shown)
        self.status.setText(shown.status)
        self.frameShown.emit(pictures.index)

    def _show_shares(self, shown: ShownFrame) -> None:
        """This frame's classes by the share of it they cover in the finest mask, largest first."""
        pictures, classes, palette = shown.pictures, shown.classes, self.playback.palette
        finest = tuple(pictures.masks)[-1] if pictures.masks else ""
        self.shares_heading.setText(f"Frame {pictures.index + 1}: classes in the {finest} mask")
        order = sorted(range(len(pictures.shares)), key=lambda index: -pictures.shares[index])
        rows = []
        self.frame_shares = {}
        for index in order:
            share = float(pictures.shares[index])
            if share < SHARE_CUTOFF:
                break
            name = classes[index] if index < len(classes) else f"class {index}"
            color = palette[index] if index < len(palette) else (128, 128, 128)
            rows.append(f"<tr><td><span style='color: rgb{tuple(color)}'>■</span> {name}</td>"
                        f"<td align='right'>&nbsp;&nbsp;{share:.1%}</td></tr>")
            self.frame_shares[name] = share
        self.shares.setText("<table>" + "".join(rows) + "</table>")

    # ---- export --------------------------------------------------------------------------------

    def export_dialog(self) -> None:
        if self.playback.missing:
            self.status.setText(self.playback.missing)
            return
        target = self.ask_gif_path()
        if target is not None:
            self.export(target if target.suffix.lower() == ".gif" else target.with_suffix(".gif"))

    def export(self, target: Path) -> None:
        """Segments every frame on the playback thread and writes the stage panels as an animated GIF."""
        self.playback.export(target)

    def shutdown(self) -> None:
        """Stops playback (the classroom model's backend stops the playback thread)."""
        self.pause()
