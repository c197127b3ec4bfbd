"""Video files: frames read in order and by seeking, under the image rule's limits with one-line errors naming the
file; overlay videos written at the source's frame rate; `fcn-viewer segment clip.mp4` (the acceptance test)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from fcn_viewer import imageio, videoio
from fcn_viewer.cli.main import main
from fcn_viewer.errors import ImageLoadError, UsageError
from fcn_viewer.teaching.sequence import FileFrames, open_sequence
from fcn_viewer.videoio import VideoFrames, VideoWriter

STEP = 20  # grey levels between consecutive frames: far more than the codec's error


def picture(index: int, size: tuple[int, int] = (48, 64)) -> np.ndarray:
    """A frame whose grey level encodes ``index`` (0 … 12)."""
    return np.full((*size, 3), 10 + STEP * index, dtype=np.uint8)


def index_of(frame: np.ndarray) -> int:
    return round((float(frame[8:-8, 8:-8].mean()) - 10) / STEP)


def write_video(path: Path, count: int, fps: int = 12, size: tuple[int, int] = (48, 64), container: str = "mp4",
                codec: str = "libx264", key_every: int = 4) -> Path:
    """A video of ``count`` frames made with PyAV, each frame's index in its grey level (``index % 12`` for long
    ones), a key frame every ``key_every`` frames."""
    with av.open(str(path), mode="w", format=container) as output:
        stream = output.add_stream(codec, rate=fps)
        stream.width, stream.height = size[1], size[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"g": str(key_every), "crf": "10"} if codec == "libx264" else {"g": str(key_every)}
        for index in range(count):
            frame = av.VideoFrame.from_ndarray(picture(index % 12, size), format="rgb24")
            for packet in stream.encode(frame):  # type: ignore[union-attr]
                output.mux(packet)
        for packet in stream.encode(None):  # type: ignore[union-attr]
            output.mux(packet)
    return path


def decoded(path: Path) -> tuple[int, Fraction, list[np.ndarray]]:
    """Frames, frame rate and pictures of a video, straight from PyAV."""
    with av.open(str(path)) as source:
        stream = source.streams.video[0]
        pictures = [frame.to_ndarray(format="rgb24") for frame in source.decode(stream)]
        assert stream.average_rate is not None
        return len(pictures), Fraction(stream.average_rate), pictures


@pytest.mark.parametrize(("name", "container", "codec"), [("clip.mp4", "mp4", "libx264"),
                                                          ("clip.mkv", "matroska", "libx264"),
                                                          ("clip.avi", "avi", "mpeg4")])
def test_frames_are_read_in_order_and_by_seeking(tmp_path: Path, name: str, container: str, codec: str) -> None:
    video = VideoFrames.open(write_video(tmp_path / name, 10, container=container, codec=codec))
    assert len(video) == 10 and video.fps == 12 and video.size == (64, 48)
    assert [index_of(video.frame(index)) for index in range(10)] == list(range(10))
    assert [index_of(video.frame(index)) for index in (9, 2, 0, 7)] == [9, 2, 0, 7]
    assert video.frame(0).shape == (48, 64, 3) and video.frame(0).dtype == np.uint8


def test_a_frame_far_ahead_or_behind_is_reached_by_seeking_to_a_key_frame(tmp_path: Path) -> None:
    video = VideoFrames.open(write_video(tmp_path / "long.mp4", 4 * videoio.SEEK_AHEAD, key_every=10))
    for index in (3 * videoio.SEEK_AHEAD + 5, 40, 4 * videoio.SEEK_AHEAD - 1, 1):
        assert index_of(video.frame(index)) == index % 12, index


def test_the_display_rotation_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "portrait.mp4"
    with av.open(str(path), mode="w") as output:
        stream = output.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"  # type: ignore[union-attr]
        stream.set_display_rotation(-90)  # type: ignore[union-attr]  # shown turned a quarter clockwise
        frame = np.zeros((32, 64, 3), np.uint8)
        frame[:, :16] = 255  # the left edge
        for packet in [*stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")), *stream.encode(None)]:  # type: ignore[union-attr]
            output.mux(packet)
    shown = VideoFrames.open(path).frame(0)
    assert shown.shape == (64, 32, 3)
    assert shown[:8].mean() > 200 and shown[-8:].mean() < 50  # the left edge is now the top


def test_a_video_is_a_sequence(tmp_path: Path) -> None:
    frames = open_sequence(write_video(tmp_path / "drive.mp4", 5))
    assert isinstance(frames, FileFrames) and len(frames) == 5
    assert frames.frame_name(2) == "drive.mp4 #3" and index_of(frames.frame(2)) == 2


def test_what_is_not_a_video_is_refused_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "fake.mp4").write_bytes(b"GIF89a" + bytes(100))
    with pytest.raises(ImageLoadError, match=r"fake.mp4: not a video, or not one of the containers read here"):
        VideoFrames.open(tmp_path / "fake.mp4")
    (tmp_path / "folder.mp4").mkdir()
    with pytest.raises(ImageLoadError, match=r"folder.mp4: is a folder, not a video"):
        FileFrames.open(tmp_path / "folder.mp4")
    with pytest.raises(ImageLoadError, match=r"missing.mkv: file not found"):
        VideoFrames.open(tmp_path / "missing.mkv")
    (tmp_path / "header.mp4").write_bytes(b"\0\0\0\x18ftypmp42" + bytes(20))
    with pytest.raises(ImageLoadError, match=r"^\S*header.mp4: damaged or unreadable video \(.+\)$"):
        VideoFrames.open(tmp_path / "header.mp4")
    with pytest.raises(ImageLoadError, match=r"notes.txt: not a folder of frames, an animated image"):
        open_sequence(tmp_path / "notes.txt")


def test_the_limits_of_images_hold_for_videos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_video(tmp_path / "clip.mp4", 10)
    monkeypatch.setattr(videoio, "MAX_FRAMES", 9)
    with pytest.raises(ImageLoadError, match=r"clip.mp4: 10 frames: a sequence plays at most 9"):
        VideoFrames.open(path)
    monkeypatch.setattr(videoio, "MAX_FRAMES", 10)
    monkeypatch.setattr(imageio, "MAX_SIDE", 60)
    with pytest.raises(ImageLoadError, match=r"clip.mp4: 64×48 pixels: a side longer than 60 px is refused"):
        VideoFrames.open(path)


def test_a_truncated_video_fails_on_the_missing_frame_naming_the_file(tmp_path: Path) -> None:
    path = write_video(tmp_path / "cut.mkv", 12, container="matroska")
    data = path.read_bytes()
    video = VideoFrames.open(path)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match=r"cut.mkv: frame \d+: (the video ends after \d+ frames|damaged or truncated video)"):
        for index in range(12):
            video.frame(index)


def test_an_overlay_video_keeps_the_frame_rate_and_fails_atomically(tmp_path: Path) -> None:
    target = tmp_path / "out.mp4"
    with VideoWriter(target, Fraction(30000, 1001)) as writer:
        for index in range(6):
            writer.add(picture(index, (37, 51)))  # odd sides: padded to even for 4:2:0
    count, fps, pictures = decoded(target)
    assert count == 6 and fps == Fraction(30000, 1001) and pictures[0].shape == (38, 52, 3)
    assert [index_of(p) for p in pictures] == list(range(6))
    with pytest.raises(RuntimeError, match="stop"), VideoWriter(tmp_path / "half.mp4", 10) as writer:
        writer.add(picture(0))
        raise RuntimeError("stop")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]  # no half file, no temporary file
    with pytest.raises(UsageError, match=r"missing.*cannot write the video"), VideoWriter(
            tmp_path / "missing" / "a.mp4", 10):
        pass


def test_segment_writes_an_overlay_video_of_every_frame_at_the_same_rate(
    tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The acceptance test of issue 22: a generated 10-frame MP4 gives an overlay video of 10 frames, same fps."""
    clip = write_video(tmp_path / "clip.mp4", 10, fps=12)
    out = tmp_path / "out"
    assert main(["segment", str(clip), "--weights", str(tiny_weights), "--out", str(out), "--masks"]) == 0
    count, fps, pictures = decoded(out / "clip_overlay.mp4")
    assert count == 10 and fps == 12 and pictures[0].shape == (48, 64, 3)
    masks = sorted((out / "clip_masks").iterdir())
    assert [p.name for p in masks] == [f"{n:05d}.png" for n in range(1, 11)]
    with Image.open(masks[0]) as mask:
        assert mask.mode == "P" and mask.size == (64, 48)
    assert "clip.mp4: 10 frames at 12 fps" in capsys.readouterr().err
    assert main(["segment", str(clip), "--weights", str(tiny_weights), "--out", str(out)]) == 1
    assert "clip_overlay.mp4: already exists; pass --overwrite" in capsys.readouterr().err


def test_segment_refuses_options_that_do_nothing_for_a_video(tmp_path: Path, tiny_weights: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "a.png"
    Image.fromarray(picture(1)).save(image)
    arguments = ["--weights", str(tiny_weights), "--out", str(tmp_path / "out")]
    assert main(["segment", str(image), "--masks", *arguments]) == 2
    assert "--masks does nothing without a video" in capsys.readouterr().err
    clip = write_video(tmp_path / "clip.mp4", 2)
    assert main(["segment", str(clip), "--save-scores", *arguments]) == 2
    assert "--save-scores: not written for a video" in capsys.readouterr().err
