"""Animated GIFs written a frame at a time on one fixed canvas, so memory holds one frame however many there are."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import numpy as np
from PIL import GifImagePlugin, Image

from fcn_viewer.atomic import atomic_output
from fcn_viewer.classes import Color
from fcn_viewer.errors import UsageError

BACKGROUND: Color = (24, 24, 28)


def check_gif_target(target: Path) -> None:
    """Refuses, before any frame is made, a GIF that could not be written or should not be replaced (a read-only
    file); each reason is one line naming ``target``."""
    folder = target.parent
    if target.is_dir():
        raise UsageError(f"{target}: is a folder; give the GIF a file name")
    if not folder.is_dir():
        problem = "is not a folder" if folder.exists() else "does not exist"
        raise UsageError(f"{target}: cannot write the GIF ({folder} {problem})")
    if target.exists():
        mode = target.stat().st_mode
        if not stat.S_ISREG(mode):
            raise UsageError(f"{target}: exists and is not a regular file, so it is not replaced")
        if not mode & 0o222 or not os.access(target, os.W_OK):
            raise UsageError(f"{target}: is read-only, so it is not replaced; choose another name")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{target}: cannot write the GIF (permission denied in {folder})")


def letterboxed(frame: Image.Image, canvas: tuple[int, int], fill: Color = BACKGROUND) -> Image.Image:
    """``frame`` on a ``canvas``-sized (width, height) picture: itself where the sizes agree, else shrunk to fit if it
    is larger, and centred on ``fill``."""
    if frame.size == canvas:
        return frame
    scale = min(1.0, canvas[0] / frame.width, canvas[1] / frame.height)
    if scale < 1.0:
        size = (min(canvas[0], max(1, round(frame.width * scale))), min(canvas[1], max(1, round(frame.height * scale))))
        frame = frame.resize(size, Image.Resampling.LANCZOS)
    board = Image.new("RGB", canvas, fill)
    board.paste(frame, ((canvas[0] - frame.width) // 2, (canvas[1] - frame.height) // 2))
    return board


class GifWriter:
    """An animated GIF at ``target`` (looping, each frame shown ``duration_ms``), written as frames are added; the
    first frame's size is the canvas, and a frame of another size is letterboxed onto it.

    Use it in a ``with`` block. Entering checks ``target`` and creates its temporary file, so a GIF that cannot be
    written fails before any frame is made; nothing is under the final name until the block ends without an error.
    Every failure to write is a UsageError naming ``target``, never the temporary file. (Pillow's ``save_all`` keeps
    every frame until the last, whatever ``append_images`` is.)"""

    def __init__(self, target: Path, duration_ms: int, fill: Color = BACKGROUND) -> None:
        self.target = target
        self.duration_ms = duration_ms
        self.fill = fill
        self.canvas: tuple[int, int] | None = None
        self.frames = 0
        self._output = ExitStack()
        self._handle: BinaryIO | None = None

    def __enter__(self) -> GifWriter:
        check_gif_target(self.target)
        with self._writing():
            self._handle = self._output.enter_context(atomic_output(self.target))
        return self

    def add(self, picture: np.ndarray) -> None:
        """Writes ``picture`` (H×W×3 uint8 RGB) as the next frame."""
        assert self._handle is not None, "GifWriter.add outside its with block"
        frame = Image.fromarray(picture)
        if self.canvas is None:
            self.canvas = frame.size
        indexed = letterboxed(frame, self.canvas, self.fill).convert("P", palette=Image.Palette.ADAPTIVE)
        parts: list[bytes] = []
        if not self.frames:
            parts += GifImagePlugin.getheader(indexed, info={"loop": 0, "duration": self.duration_ms})[0]
        parts += GifImagePlugin.getdata(indexed, duration=self.duration_ms, include_color_table=True)
        with self._writing():
            self._handle.write(b"".join(parts))
        self.frames += 1

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if error is None and not self.frames:
            error = ValueError(f"{self.target}: no frames to write")
            self._output.__exit__(ValueError, error, None)
            raise error
        if error is not None:
            self._output.__exit__(kind, error, traceback)  # the temporary file is removed
            return
        assert self._handle is not None
        with self._writing():
            self._handle.write(b";")  # the GIF trailer
            self._output.close()  # flushed, synced and renamed onto the target

    @contextmanager
    def _writing(self) -> Iterator[None]:
        try:
            yield
        except OSError as error:
            raise UsageError(f"{self.target}: cannot write the GIF ({_reason(error)})") from None


def _reason(error: OSError) -> str:
    """Why a write failed, without the file name (that of the hidden temporary file)."""
    reasons = {errno.ENOSPC: "the disk is full", errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
               errno.EPERM: "permission denied"}
    return reasons.get(error.errno or 0) or error.strerror or type(error).__name__
