"""Sequence playback offscreen: 100 generated frames through a tiny net, shown in order, never stale, memory flat;
frames overtaken while the net is busy dropped; pause and step; GIF export; shutdown stops an export."""

from __future__ import annotations

import gc
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pytestqt.qtbot import QtBot

from fcn_viewer.gui.main_window import MainWindow
from fcn_viewer.gui.panels import rgb_from_pixmap
from fcn_viewer.gui.sequence_view import SequenceView
from fcn_viewer.inference import Segmentation, Segmenter
from fcn_viewer.teaching.sequence import FramePictures
from fcn_viewer.weights.loader import LoadedModel, load_weights_file
from tests.gui_helpers import Teaching, fill_share
from tests.test_sequence import index_of, write_frames

WAIT_MS = 60_000


def resident_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096 / 2**20


@pytest.fixture
def player(qtbot: QtBot, isolated: None, tiny_weights: Path, teaching: Teaching):  # type: ignore[no-untyped-def]
    teaching.use(Segmenter(load_weights_file(tiny_weights), "cpu"))
    view = SequenceView(teaching.classroom.playback)
    qtbot.addWidget(view)
    view.resize(1200, 700)
    view.show()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny net on a busy shared machine: OpenMP threads would spin against each other
    yield view
    view.shutdown()
    torch.set_num_threads(threads)


def test_playing_100_frames_shows_them_in_order_never_stale_with_flat_memory(
    qtbot: QtBot, player: SequenceView, tmp_path: Path
) -> None:
    shown: list[int] = []
    mismatched: list[tuple[int, int]] = []
    memory: list[float] = []

    def drawn(index: int) -> None:
        shown.append(index)
        on_screen = index_of(rgb_from_pixmap(player.photo.view.pixmap_item.pixmap()))
        if on_screen != index:
            mismatched.append((index, on_screen))
        memory.append(resident_mb())

    def frames_alive() -> int:
        gc.collect()
        return sum(type(o) is FramePictures for o in gc.get_objects())

    before = frames_alive()  # earlier tests' frames, if any, are not this player's
    player.frameShown.connect(drawn)
    assert player.open_folder(write_frames(tmp_path / "frames", 100))
    qtbot.waitUntil(lambda: shown == [0], timeout=WAIT_MS)
    player.set_rate(25.0)
    player.play()
    qtbot.waitUntil(lambda: not player.playing and shown[-1] == 99, timeout=WAIT_MS)
    assert shown == sorted(set(shown)), "frames went backwards or repeated"
    assert not mismatched, "a panel showed another frame than the one announced"
    assert player.playback.shown_count == len(shown)
    assert len(shown) + player.playback.dropped >= 100  # every frame was either shown or counted as dropped
    assert frames_alive() - before <= 2  # the frame on screen, maybe one more
    assert memory[-1] - memory[min(5, len(memory) - 1)] < 40, memory  # MB: nothing accumulates per frame


class GatedSegmenter(Segmenter):
    """Segments once ``gate`` is open (or after ``delay`` s), saying when it starts."""

    def __init__(self, loaded: LoadedModel, gate: threading.Event | None = None, delay: float = 0.0) -> None:
        super().__init__(loaded, "cpu")
        self.gate, self.delay = gate, delay
        self.started = threading.Event()
        self.calls = 0

    def segment(self, image: np.ndarray) -> Segmentation:
        self.calls += 1
        self.started.set()
        if self.gate is not None:
            self.gate.wait(10)
        time.sleep(self.delay)
        return super().segment(image)


def test_frames_overtaken_while_the_net_is_busy_are_dropped_and_only_the_newest_is_shown(
    qtbot: QtBot, player: SequenceView, tmp_path: Path, tiny_weights: Path, teaching: Teaching
) -> None:
    loaded = load_weights_file(tiny_weights)
    gate = threading.Event()
    segmenter = GatedSegmenter(loaded, gate)
    teaching.use(segmenter)
    shown: list[int] = []
    player.frameShown.connect(shown.append)
    player.open_folder(write_frames(tmp_path / "frames", 10))  # frame 0: the net starts on it and waits at the gate
    assert segmenter.started.wait(10)
    for index in range(1, 10):
        player.request(index)  # each replaces the one before while the net is busy
    gate.set()
    qtbot.waitUntil(lambda: player.playback.shown_index == 9, timeout=WAIT_MS)
    qtbot.wait(50)
    assert shown == [0, 9]
    assert segmenter.calls == 2
    assert player.playback.dropped == 8 and player.playback.skipped == 0


def test_closing_stops_an_export_between_frames(qtbot: QtBot, player: SequenceView, tmp_path: Path,
                                                tiny_weights: Path, teaching: Teaching) -> None:
    loaded = load_weights_file(tiny_weights)
    segmenter = GatedSegmenter(loaded, delay=0.05)
    teaching.use(segmenter)
    player.open_folder(write_frames(tmp_path / "frames", 200))  # 200 frames at ≥ 50 ms each: 10 s or more
    player.export(tmp_path / "panels.gif")
    qtbot.waitUntil(lambda: segmenter.calls >= 3, timeout=WAIT_MS)  # frame 0, then the export's first frames
    started = time.perf_counter()
    teaching.shutdown()  # as the window's close does
    assert time.perf_counter() - started < 5, "shutdown waited for the whole export"
    assert not (tmp_path / "panels.gif").exists()
    assert segmenter.calls < 100


def test_pause_and_step_frame_by_frame(qtbot: QtBot, player: SequenceView, tmp_path: Path) -> None:
    shown: list[int] = []
    player.frameShown.connect(shown.append)
    player.open_folder(write_frames(tmp_path / "frames", 10))
    qtbot.waitUntil(lambda: shown == [0], timeout=WAIT_MS)
    player.set_rate(2.0)
    player.play()
    assert player.playing
    player.pause()
    assert not player.playing
    qtbot.wait(50)
    base = player.playback.shown_index
    player.step(1)
    qtbot.waitUntil(lambda: player.playback.shown_index == base + 1, timeout=WAIT_MS)
    player.step(1)
    qtbot.waitUntil(lambda: player.playback.shown_index == base + 2, timeout=WAIT_MS)
    player.step(-1)
    qtbot.waitUntil(lambda: player.playback.shown_index == base + 1, timeout=WAIT_MS)
    assert index_of(rgb_from_pixmap(player.photo.view.pixmap_item.pixmap())) == base + 1
    assert all(player.masks[stage].isVisible() for stage in ("32s", "16s", "8s"))


def test_the_stage_panels_export_as_a_gif(qtbot: QtBot, player: SequenceView, tmp_path: Path) -> None:
    player.open_folder(write_frames(tmp_path / "frames", 6))
    player.export(tmp_path / "panels.gif")
    qtbot.waitUntil(lambda: "Saved 6 frames" in player.status.text(), timeout=WAIT_MS)
    with Image.open(tmp_path / "panels.gif") as gif:
        assert gif.n_frames == 6


def test_a_file_that_is_no_video_is_refused_with_a_clear_message(player: SequenceView, tmp_path: Path) -> None:
    (tmp_path / "clip.mp4").write_bytes(b"\0")
    assert not player.open_folder(tmp_path / "clip.mp4")
    assert "clip.mp4: not a video, or not one of the containers read here" in player.status.text()


def test_closing_the_window_stops_every_job_queue_the_tabs_too(
    qtbot: QtBot, isolated: None, tiny_weights: Path, tmp_path: Path
) -> None:
    from fcn_viewer.gui.jobs import JobQueue
    from tests.gui_helpers import load, make_window

    window = make_window(qtbot, tmp_path / "settings.ini")
    load(qtbot, window, tiny_weights)
    sequence = window.classroom.sequence
    window.classroom.show_view(sequence)
    with qtbot.waitSignal(sequence.frameShown, timeout=WAIT_MS):
        assert sequence.open_folder(write_frames(tmp_path / "frames", 30))
    sequence.set_rate(30.0)
    sequence.play()
    queues = window.findChildren(JobQueue)
    names = {queue._thread.objectName() for queue in queues}
    assert {"fcn-viewer inference", "fcn-viewer sequence", "fcn-viewer contributions"} <= names
    window.close()
    assert not sequence.playing
    assert all(queue._thread.isFinished() for queue in queues)


def test_the_panels_fill_their_cells_with_shapes_as_in_the_stages_tab(
    qtbot: QtBot, player: SequenceView, tmp_path: Path, tiny_weights: Path
) -> None:
    player.resize(1070, 690)  # the tab's size in a 1280×800 window
    player.open_folder(write_frames(tmp_path / "frames", 3, size=(36, 48)))
    qtbot.waitUntil(lambda: player.playback.shown_index == 0, timeout=WAIT_MS)
    qtbot.wait(50)
    player.link.fit()
    for panel in [player.photo, *player.score_maps.values(), *player.masks.values()]:
        share = fill_share(panel.view, (36, 48), player.link.scale)
        assert share > 0.9, (panel.key, share)  # no dark band above or below the picture
    classes = len(load_weights_file(tiny_weights).meta.classes)
    for stage in ("32s", "16s", "8s"):
        title = player.score_maps[stage].title.text()
        shape = [int(n) for n in title.rsplit(" · ", 1)[1].split("×")]
        assert len(shape) == 3 and shape[0] == classes, title  # classes × rows × columns, as the Stages tab
        assert shape[1] <= shape[2], title  # a landscape frame: fewer rows than columns (not width × height)
    assert player.photo.title.text().endswith("3×36×48") and player.masks["8s"].title.text().endswith("36×48")


def test_the_tab_lists_the_shown_frames_classes(qtbot: QtBot, player: SequenceView, tmp_path: Path,
                                                tiny_weights: Path) -> None:
    loaded = load_weights_file(tiny_weights)
    segmenter = Segmenter(loaded, "cpu")
    folder = write_frames(tmp_path / "frames", 3)
    player.open_folder(folder)
    qtbot.waitUntil(lambda: player.playback.shown_index == 0, timeout=WAIT_MS)
    first = dict(player.frame_shares)
    player.step(1)
    qtbot.waitUntil(lambda: player.playback.shown_index == 1, timeout=WAIT_MS)
    image = np.asarray(Image.open(folder / "frame1.png").convert("RGB"))
    mask = segmenter.segment(image).mask()
    expected = np.bincount(mask.ravel(), minlength=len(loaded.meta.classes)) / mask.size
    listed = {name: float(expected[index]) for index, name in enumerate(loaded.meta.classes) if expected[index] >= 0.005}
    assert player.frame_shares == pytest.approx(listed)
    assert player.shares_cell.isVisible() and "Frame 2" in player.shares_heading.text()
    assert first and sum(first.values()) <= 1.0 + 1e-9


def test_play_with_a_model_loaded_and_nothing_open_asks_for_frames_not_for_a_model(
    qtbot: QtBot, isolated: None, ready: MainWindow
) -> None:
    """Issue 22: "Play" said "load a model" while one was loaded (no frames were open: it named both)."""
    sequence = ready.classroom.sequence
    assert ready.viewer.model is not None and sequence.playback.source is None  # no bundled sequence (isolated)
    ready.classroom.show_view(sequence)
    sequence.play_button.click()
    assert not sequence.playing
    assert "model" not in sequence.status.text().lower() and "Open a video" in sequence.status.text()
    sequence.export_button.click()
    assert "model" not in sequence.status.text().lower() and "Open a video" in sequence.status.text()


def test_the_tab_shown_empty_plays_the_bundled_sequence(
    qtbot: QtBot, isolated: None, tmp_path: Path, tiny_weights: Path, teaching: Teaching
) -> None:
    write_frames(tmp_path / "resources" / "sequence", 4)  # FCN_VIEWER_RESOURCES (see `isolated`)
    teaching.use(Segmenter(load_weights_file(tiny_weights), "cpu"))
    view = SequenceView(teaching.classroom.playback)
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.frameShown, timeout=WAIT_MS):
        view.show()
    assert view.slider.maximum() == 3 and "frame 1 / 4" in view.status.text()
    view.play()
    qtbot.waitUntil(lambda: not view.playing and view.playback.shown_index == 3, timeout=WAIT_MS)


def test_a_video_file_opens_from_the_file_dialog_and_plays(
    qtbot: QtBot, player: SequenceView, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_video import index_of as video_index_of
    from tests.test_video import write_video

    clip = write_video(tmp_path / "drive.mp4", 6)
    monkeypatch.setattr(player, "ask_file", lambda: clip)
    shown: list[int] = []
    player.frameShown.connect(shown.append)
    player.open_button.click()
    qtbot.waitUntil(lambda: shown == [0], timeout=WAIT_MS)
    assert player.slider.maximum() == 5 and "drive.mp4 #1" in player.photo.title.toolTip()
    player.set_rate(30.0)
    player.play()
    qtbot.waitUntil(lambda: not player.playing and shown[-1] == 5, timeout=WAIT_MS)
    assert video_index_of(rgb_from_pixmap(player.photo.view.pixmap_item.pixmap())) == 5
