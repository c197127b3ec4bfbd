"""Frame sources, the playback clock, stage strips and GIF export (no Qt; the newest-frame-wins queue is tested
in test_gui_sequence.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fcn_viewer.errors import ImageLoadError
from fcn_viewer.inference import Segmenter
from fcn_viewer.teaching.sequence import (
    FolderFrames,
    PlaybackClock,
    export_gif,
    open_sequence,
    segment_frame,
    stage_strip,
)
from fcn_viewer.weights.loader import load_weights_file
from tests.helpers import gradient_image


def write_frames(folder: Path, count: int, size: tuple[int, int] = (36, 44)) -> Path:
    """Frames whose top-left 4×4 block encodes their index, named without zero padding."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        image = gradient_image(*size, seed=index % 7)
        image[:4, :4] = (index, 255 - index, 77)
        Image.fromarray(image).save(folder / f"frame{index}.png")
    return folder


def index_of(photo: np.ndarray) -> int:
    return int(photo[1, 1, 0])


def test_a_folder_plays_in_natural_name_order(tmp_path: Path) -> None:
    frames = open_sequence(write_frames(tmp_path / "f", 12))
    assert isinstance(frames, FolderFrames) and len(frames) == 12
    assert [frames.frame_name(i) for i in (1, 2, 10)] == ["frame1.png", "frame2.png", "frame10.png"]
    assert [index_of(frames.frame(i)) for i in range(12)] == list(range(12))


def test_an_animated_gif_is_a_sequence_and_a_damaged_video_is_refused_naming_it(tmp_path: Path) -> None:
    pictures = [Image.fromarray(np.full((8, 10, 3), 40 * i, dtype=np.uint8)) for i in range(4)]
    pictures[0].save(tmp_path / "a.gif", save_all=True, append_images=pictures[1:], duration=100)
    frames = open_sequence(tmp_path / "a.gif")
    assert len(frames) == 4 and frames.frame(2)[0, 0, 0] == 80
    (tmp_path / "drive.mp4").write_bytes(b"\0\0\0\x18ftypmp42")  # a header and nothing else (videos: test_video.py)
    with pytest.raises(ImageLoadError, match=r"drive.mp4: damaged or unreadable video \(Invalid data found"):
        open_sequence(tmp_path / "drive.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageLoadError, match="no images"):
        open_sequence(tmp_path / "empty")


def test_the_clock_skips_late_frames() -> None:
    clock = PlaybackClock(fps=10, start=5, started=100.0)
    assert [clock.due(t) for t in (100.0, 100.05, 100.1, 101.0)] == [5, 5, 6, 15]


def test_stage_strips_export_as_an_animated_gif(tmp_path: Path, tiny_weights: Path) -> None:
    frames = open_sequence(write_frames(tmp_path / "f", 5))
    segmenter = Segmenter(load_weights_file(tiny_weights), "cpu")
    palette = segmenter.meta.palette
    pictures = segment_frame(frames, 3, segmenter.segment, palette, 0.6)
    assert pictures.index == 3 and index_of(pictures.photo) == 3
    assert set(pictures.masks) == set(pictures.score_maps) == {"32s", "16s", "8s"}
    strip = stage_strip(pictures, tile_height=90)
    assert strip.shape[0] == 90 + 22 and strip.shape[1] > 7 * 90
    progress: list[int] = []
    target = export_gif(tmp_path / "out.gif", frames, segmenter.segment, palette, 0.6, fps=4,
                        progress=lambda done, total: progress.append(done) or True)
    assert progress == [1, 2, 3, 4, 5]
    with Image.open(target) as gif:
        assert gif.n_frames == 5 and gif.info["duration"] == 250
        assert gif.size[1] == 180 + 22
