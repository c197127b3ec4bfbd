"""Sequence playback offscreen: 100 generated frames through a tiny net, shown in order, never stale, memory flat;
pause and step; GIF export."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
import torch
from PIL import Image
from pytestqt.qtbot import QtBot

from fcn_viewer.gui.panels import rgb_from_pixmap
from fcn_viewer.gui.sequence_view import SequenceView
from fcn_viewer.inference import Segmenter
from fcn_viewer.sequence import FramePictures
from fcn_viewer.weights.loader import load_weights_file
from tests.test_sequence import index_of, write_frames

WAIT_MS = 60_000


def resident_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096 / 2**20


@pytest.fixture
def player(qtbot: QtBot, tiny_weights: Path):  # type: ignore[no-untyped-def]
    loaded = load_weights_file(tiny_weights)
    view = SequenceView()
    qtbot.addWidget(view)
    view.resize(1200, 700)
    view.show()
    view.set_model(loaded.meta, lambda: Segmenter(loaded, "cpu"))
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

    player.frameShown.connect(drawn)
    assert player.open_folder(write_frames(tmp_path / "frames", 100))
    qtbot.waitUntil(lambda: shown == [0], timeout=WAIT_MS)
    player.set_rate(25.0)
    player.play()
    qtbot.waitUntil(lambda: not player.playing and shown[-1] == 99, timeout=WAIT_MS)
    assert shown == sorted(set(shown)), "frames went backwards or repeated"
    assert not mismatched, "a panel showed another frame than the one announced"
    assert player.shown_count == len(shown)
    assert len(shown) + player.dropped >= 100  # every frame was either shown or counted as dropped
    gc.collect()
    assert sum(type(o) is FramePictures for o in gc.get_objects()) <= 2  # the frame on screen, maybe one more
    assert memory[-1] - memory[min(5, len(memory) - 1)] < 40, memory  # MB: nothing accumulates per frame


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
    base = player.shown_index
    player.step(1)
    qtbot.waitUntil(lambda: player.shown_index == base + 1, timeout=WAIT_MS)
    player.step(1)
    qtbot.waitUntil(lambda: player.shown_index == base + 2, timeout=WAIT_MS)
    player.step(-1)
    qtbot.waitUntil(lambda: player.shown_index == base + 1, timeout=WAIT_MS)
    assert index_of(rgb_from_pixmap(player.photo.view.pixmap_item.pixmap())) == base + 1
    assert all(player.masks[stage].isVisible() for stage in ("32s", "16s", "8s"))


def test_the_stage_panels_export_as_a_gif(qtbot: QtBot, player: SequenceView, tmp_path: Path) -> None:
    player.open_folder(write_frames(tmp_path / "frames", 6))
    player.export(tmp_path / "panels.gif")
    qtbot.waitUntil(lambda: "Saved 6 frames" in player.status.text(), timeout=WAIT_MS)
    with Image.open(tmp_path / "panels.gif") as gif:
        assert gif.n_frames == 6


def test_a_video_file_is_refused_with_a_clear_message(player: SequenceView, tmp_path: Path) -> None:
    (tmp_path / "clip.mp4").write_bytes(b"\0")
    assert not player.open_folder(tmp_path / "clip.mp4")
    assert "clip.mp4: video files need a decoder" in player.status.text()
