"""Reads and writes video files (MP4/MOV, AVI, MKV/WebM) through PyAV, under the rule images are read by.

Reading (:class:`VideoFrames`), the rule of :mod:`fcn_viewer.imageio` for a file of many frames:

* only regular files are opened (a FIFO or a device is refused without blocking), and only the containers in
  ``CONTAINERS``, recognised by their first bytes whatever the file's name; FFmpeg is never left to guess the format
  (some of its demuxers open further files or URLs named inside the file);
* the frame size is checked from the header before any frame is decoded (each side 1 … ``MAX_SIDE`` px, at most
  ``MAX_PIXELS`` pixels), and again on each decoded frame (a stream may change size); the frames are counted from the
  header, at most ``MAX_FRAMES``;
* each frame is decoded only when asked for, by whoever asks (the viewer's worker thread, the command line), turned
  upright by the stream's display rotation, as H×W×3 uint8 RGB;
* every failure becomes an ``ImageLoadError`` naming the file.

Unlike an animated image's, a video's frames are not limited in total pixels (``MAX_SEQUENCE_PIXELS``): a minute of
1080p already holds 3,700 MP, and nothing holds more than one frame at a time.

Writing (:class:`VideoWriter`): an MP4 at a given frame rate, a frame at a time, under its final name only once
complete (:func:`fcn_viewer.atomic.atomic_output`).

PyAV is imported when a video is first opened or written, so commands that never touch one do not load FFmpeg.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from fcn_viewer.atomic import atomic_output
from fcn_viewer.errors import FCNViewerError, ImageLoadError, UsageError
from fcn_viewer.imageio import MAX_FRAMES, check_size, open_regular

if TYPE_CHECKING:
    from av.container import InputContainer, OutputContainer
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm"})
CONTAINERS = "MP4/MOV, AVI, MKV/WebM"
SEEK_AHEAD = 48  # frames: a frame further ahead than this is reached by seeking to a key frame, not by decoding on
DEFAULT_FPS = Fraction(25)  # for a stream that names no rate
_MP4_BOXES = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"})


def is_video_path(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def demuxer_for(head: bytes) -> str | None:
    """The FFmpeg demuxer of the container whose first bytes are ``head`` (at least 12), or None if not one read here."""
    if head[4:8] in _MP4_BOXES:
        return "mov"  # FFmpeg's "mov,mp4,m4a,3gp,3g2,mj2"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML
        return "matroska"  # FFmpeg's "matroska,webm"
    return None


class VideoFrames:
    """The frames of one video file's first video stream, counted and sized from its header when opened, each decoded
    when asked for.

    The file stays open between frames, so playing forward decodes on from the last frame; going back, or far ahead,
    seeks to the key frame before it. Thread-safe; closed by :meth:`close` or when no longer referenced."""

    def __init__(self, path: Path, count: int, fps: Fraction, size: tuple[int, int]) -> None:
        self.path = path
        self.count = count
        self.fps = fps
        self.size = size  # (width, height) as the header says, before any rotation
        self._lock = threading.Lock()
        self._files = ExitStack()
        self._container: InputContainer | None = None
        self._decoded: Iterator[VideoFrame] | None = None
        self._next = 0  # the index of the frame the decoder gives next
        weakref.finalize(self, self._files.close)

    @classmethod
    def open(cls, path: str | Path) -> VideoFrames:
        """Reads the header of ``path``; refuses it, naming the limit, if its frames break the rule."""
        path = Path(path)
        with _named(path), _opened(path) as (container, stream):
            width, height = stream.codec_context.width, stream.codec_context.height
            check_size(path, (width, height), 0)
            fps = _rate(stream)
            count = stream.frames or _counted_from_duration(container, stream, fps)
            if count < 1:
                raise ImageLoadError(f"{path}: the video holds no frames")
            if count > MAX_FRAMES:
                raise ImageLoadError(f"{path}: {count:,} frames: a sequence plays at most {MAX_FRAMES:,} "
                                     f"(cut the video shorter, e.g. `ffmpeg -i {path.name} -frames:v {MAX_FRAMES} "
                                     "short.mp4`)")
            return cls(path, count, fps, (width, height))

    def __len__(self) -> int:
        return self.count

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` (from 0) as H×W×3 uint8 RGB, upright."""
        if not 0 <= index < self.count:
            raise IndexError(f"{self.path}: no frame {index + 1} of {self.count}")
        with self._lock:
            try:
                with _named(self.path):
                    return _pixels(self.path, self._seek(index), index)
            except BaseException:
                self._close()  # its state is unknown: the next frame reopens the file
                raise

    def close(self) -> None:
        with self._lock:
            self._close()

    def _seek(self, index: int) -> VideoFrame:
        """The decoded frame ``index``: decoding on from the last one, or from the key frame before it."""
        import av

        if self._decoded is None or not self._next <= index <= self._next + SEEK_AHEAD:
            self._start(index)
        assert self._decoded is not None and self._container is not None
        after_seek = self._next < 0
        try:
            for frame in self._decoded:
                found = self._index_of(frame)
                if after_seek and found > index:  # the seek overshot: decode from the start instead
                    self._start(0)
                    return self._seek(index)
                after_seek = False
                self._next = found + 1
                if found >= index:
                    return frame
        except av.error.FFmpegError as error:
            raise ImageLoadError(
                f"{self.path}: frame {index + 1}: damaged or truncated video ({_short(error.strerror or error)})"
            ) from None
        raise ImageLoadError(f"{self.path}: frame {index + 1}: the video ends after {max(self._next, 0)} frames "
                             f"(its header promised {self.count})")

    def _start(self, index: int) -> None:
        """Decoding starts again: from the file's start (reopened) for an early frame, else from the key frame before
        ``index``."""
        if index <= SEEK_AHEAD // 2:
            self._close()
        if self._container is None:
            self._container, _ = self._files.enter_context(_opened(self.path))
        container = self._container
        stream = container.streams.video[0]
        self._next = 0
        if index > SEEK_AHEAD // 2 and stream.time_base is not None:
            container.seek(self._timestamp(stream, index), stream=stream, backward=True)
            self._next = -1  # unknown until the first frame is decoded
        self._decoded = container.decode(stream)

    def _timestamp(self, stream: VideoStream, index: int) -> int:
        assert stream.time_base is not None
        return (stream.start_time or 0) + int(Fraction(index) / self.fps / stream.time_base)

    def _index_of(self, frame: VideoFrame) -> int:
        """Which frame ``frame`` is, from its time stamp (or, without one, from the frames decoded before it)."""
        stream = self._container.streams.video[0] if self._container is not None else None
        if frame.pts is None or stream is None or stream.time_base is None:
            return max(self._next, 0)
        return round((frame.pts - (stream.start_time or 0)) * stream.time_base * self.fps)

    def _close(self) -> None:
        self._decoded = None
        self._container = None
        self._files.close()


def _rate(stream: VideoStream) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return Fraction(rate) if rate else DEFAULT_FPS


def _counted_from_duration(container: InputContainer, stream: VideoStream, fps: Fraction) -> int:
    """Frames in a stream whose header has no count (Matroska, WebM), from its duration or the container's."""
    if stream.duration is not None and stream.time_base is not None:
        return round(stream.duration * stream.time_base * fps)
    duration = container.duration  # in AV_TIME_BASE units (µs)
    return round(Fraction(duration, 1_000_000) * fps) if duration else 0


@contextmanager
def _opened(path: Path) -> Iterator[tuple[InputContainer, VideoStream]]:
    """``path`` opened as one of ``CONTAINERS``, chosen by its first bytes, and its first video stream."""
    import av

    with open_regular(path, "a video") as handle:
        demuxer = demuxer_for(handle.read(12))
        if demuxer is None:
            raise ImageLoadError(f"{path}: not a video, or not one of the containers read here ({CONTAINERS})")
        handle.seek(0)
        with av.open(handle, mode="r", format=demuxer) as container:
            if not container.streams.video:
                raise ImageLoadError(f"{path}: no video stream (an audio-only file?)")
            stream = container.streams.video[0]
            yield container, stream


@contextmanager
def _named(path: Path) -> Iterator[None]:
    """Any failure in the block becomes an ImageLoadError naming ``path``."""
    import av

    try:
        yield
    except FCNViewerError:
        raise
    except av.error.FFmpegError as error:  # before the OSErrors: FFmpeg's own codes come as their subclasses
        raise ImageLoadError(f"{path}: damaged or unreadable video ({_short(error.strerror or error)})") from None
    except FileNotFoundError:
        raise ImageLoadError(f"{path}: file not found") from None
    except PermissionError:
        raise ImageLoadError(f"{path}: permission denied") from None
    except MemoryError:
        raise ImageLoadError(f"{path}: not enough memory to decode it") from None
    except (OSError, ValueError, EOFError) as error:
        raise ImageLoadError(f"{path}: damaged or truncated video ({_short(error)})") from None


def _pixels(path: Path, frame: VideoFrame, index: int) -> np.ndarray:
    """``frame`` (frame ``index`` of ``path``, its size checked) as H×W×3 uint8 RGB, turned upright."""
    check_size(path, (frame.width, frame.height), index)
    pixels = frame.to_ndarray(format="rgb24")
    turns = round(frame.rotation / 90) % 4  # the display rotation, counter-clockwise
    return np.ascontiguousarray(np.rot90(pixels, turns)) if turns else pixels


def _short(error: BaseException | str) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text[:200]


class VideoWriter:
    """An MP4 at ``target`` playing at ``fps``, written as frames are added (H.264, or MPEG-4 Part 2 where PyAV's
    FFmpeg has no H.264 encoder); the first frame's size is the video's, and a frame of another size is scaled to it.

    Use it in a ``with`` block. Entering creates the temporary file, so a video that cannot be written fails before
    any frame is made; nothing is under the final name until the block ends without an error. Every failure to write
    is a UsageError naming ``target``."""

    def __init__(self, target: Path, fps: Fraction | float) -> None:
        self.target = target
        self.fps = Fraction(fps).limit_denominator(1001 * 1000)
        self.frames = 0
        self._output = ExitStack()
        self._container: OutputContainer | None = None
        self._stream: VideoStream | None = None

    def __enter__(self) -> VideoWriter:
        import av

        with self._writing():
            handle: BinaryIO = self._output.enter_context(atomic_output(self.target))
            self._container = av.open(handle, mode="w", format="mp4")
        return self

    def add(self, picture: np.ndarray) -> None:
        """Encodes ``picture`` (H×W×3 uint8 RGB) as the next frame."""
        import av

        assert self._container is not None, "VideoWriter.add outside its with block"
        with self._writing():
            if self._stream is None:
                self._stream = self._new_stream(self._container, picture.shape[1], picture.shape[0])
            stream = self._stream
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgb24")
            frame = frame.reformat(width=stream.width, height=stream.height, format="yuv420p")
            frame.pts = self.frames
            for packet in stream.encode(frame):
                self._container.mux(packet)
        self.frames += 1

    def _new_stream(self, container: OutputContainer, width: int, height: int) -> VideoStream:
        import av
        from av.video.stream import VideoStream

        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        stream = container.add_stream(codec, rate=self.fps)
        assert isinstance(stream, VideoStream)
        stream.width, stream.height = width + width % 2, height + height % 2  # 4:2:0 needs even sides
        stream.pix_fmt = "yuv420p"
        stream.time_base = 1 / self.fps
        stream.codec_context.time_base = 1 / self.fps
        return stream

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if error is not None:
            self._abandon(error)
            return
        try:
            self._finish()
        except BaseException as failure:
            self._abandon(failure)
            raise
        with self._writing():
            self._output.close()  # flushed, synced and renamed onto the target

    def _finish(self) -> None:
        """Encodes the frames the encoder still holds and closes the container."""
        if not self.frames:
            raise ValueError(f"{self.target}: no frames to write")
        assert self._container is not None and self._stream is not None
        with self._writing():
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()

    def _abandon(self, error: BaseException) -> None:
        """Closes the container and removes the temporary file; nothing appears under the final name."""
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # a container that already failed: ``error`` is the one to tell
                pass
        self._output.__exit__(type(error), error, error.__traceback__)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        import av

        try:
            yield
        except OSError as error:
            raise UsageError(f"{self.target}: cannot write the video ({error.strerror or error})") from None
        except av.error.FFmpegError as error:
            raise UsageError(f"{self.target}: cannot encode the video ({_short(error)})") from None

