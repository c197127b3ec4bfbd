"""Image sequences for playback (no Qt): a folder of frames or a multi-frame image, every stage of one frame as
pictures, the stage panels composed into one strip per frame, and an animated GIF of the strips.

Every frame is read by :mod:`fcn_viewer.imageio`, under the rule a photo in the Stages tab is read by (regular files
only, the format allowlist, size limits before decoding, 16-bit handling), one frame at a time and only when asked for;
a sequence holds at most ``imageio.MAX_FRAMES`` frames.

A video file (MP4/MOV, AVI, MKV/WebM) is read by :mod:`fcn_viewer.videoio` under the same rule, through PyAV.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from fcn_viewer.classes import Color
from fcn_viewer.errors import ImageLoadError
from fcn_viewer.imageio import MAX_FRAMES, ImageFrames, is_image_path, load_image
from fcn_viewer.inference import Segmentation
from fcn_viewer.model.outputs import STAGE_SCORE_MAPS, STAGE_STRIDES
from fcn_viewer.render import colorize, overlays
from fcn_viewer.teaching.gif import BACKGROUND, GifWriter
from fcn_viewer.videoio import VideoFrames, is_video_path

MULTI_FRAME_SUFFIXES = frozenset({".gif", ".png", ".apng", ".tif", ".tiff", ".webp"})
SCORE_MAP_TITLES = {"32s": "conv7", "16s": "pool4-fused", "8s": "pool3-fused"}
STRIP_TITLE_PX = 22
MAX_TILE_ASPECT = 4  # a panel at most 4 times as wide as tall: a 30,000×1 frame makes no 5-million-pixel-wide strip


class FrameSource(Protocol):
    """Frames in order, each decoded on demand as H×W×3 uint8 RGB."""

    @property
    def name(self) -> str: ...

    def __len__(self) -> int: ...

    def frame(self, index: int) -> np.ndarray: ...

    def frame_name(self, index: int) -> str: ...


def _natural_key(path: Path) -> list[object]:
    """``frame2`` before ``frame10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


@dataclass(frozen=True)
class FolderFrames:
    """The images of one folder in natural name order (``f2.png`` before ``f10.png``)."""

    folder: Path
    paths: tuple[Path, ...]

    @classmethod
    def open(cls, folder: Path) -> FolderFrames:
        if not folder.is_dir():
            raise ImageLoadError(f"{folder}: not a folder of frames")
        images = (p for p in folder.iterdir() if is_image_path(p) and p.is_file())
        paths = tuple(sorted(itertools.islice(images, MAX_FRAMES + 1), key=_natural_key))
        if not paths:
            raise ImageLoadError(f"{folder}: no images (.jpg, .png, ...) to play")
        if len(paths) > MAX_FRAMES:
            raise ImageLoadError(f"{folder}: more than {MAX_FRAMES:,} images: a sequence plays at most {MAX_FRAMES:,} "
                                 "frames (move the rest to another folder)")
        return cls(folder, paths)

    @property
    def name(self) -> str:
        return self.folder.name

    def __len__(self) -> int:
        return len(self.paths)

    def frame(self, index: int) -> np.ndarray:
        return load_image(self.paths[index])

    def frame_name(self, index: int) -> str:
        return self.paths[index].name


@dataclass(frozen=True)
class FileFrames:
    """The frames of one file, each decoded when asked for: an animated GIF, APNG or WebP or a multi-page TIFF
    (:class:`fcn_viewer.imageio.ImageFrames`), or a video (:class:`fcn_viewer.videoio.VideoFrames`)."""

    frames: ImageFrames | VideoFrames

    @classmethod
    def open(cls, path: Path) -> FileFrames:
        return cls(VideoFrames.open(path) if is_video_path(path) else ImageFrames.open(path))

    @property
    def path(self) -> Path:
        return self.frames.path

    @property
    def name(self) -> str:
        return self.path.name

    def __len__(self) -> int:
        return len(self.frames)

    def frame(self, index: int) -> np.ndarray:
        return self.frames.frame(index)

    def frame_name(self, index: int) -> str:
        return f"{self.path.name} #{index + 1}"


def open_sequence(path: Path) -> FrameSource:
    """A folder of frames, one animated / multi-page image, or a video file."""
    if path.is_dir():
        return FolderFrames.open(path)
    if not is_video_path(path) and path.suffix.lower() not in MULTI_FRAME_SUFFIXES:
        raise ImageLoadError(f"{path}: not a folder of frames, an animated image (GIF, APNG, WebP, TIFF) or a video "
                             "(MP4, MOV, AVI, MKV, WebM)")
    return FileFrames.open(path)


@dataclass(frozen=True)
class FramePictures:
    """One frame's stage panels as pictures: the photo, each stage's coarse score map (argmax colours) and each
    stage's mask over the photo, coarse to fine; each score map's C×h×w shape, and the share of the frame each class
    covers in the finest mask."""

    index: int
    name: str
    photo: np.ndarray
    score_maps: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]
    inference_ms: float
    score_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    shares: np.ndarray = field(default_factory=lambda: np.zeros(0))
    decode_ms: float = 0.0  # reading the frame (the net's time is inference_ms)
    pictures_ms: float = 0.0  # masks, colours and overlays of every stage, the class shares


def frame_pictures(index: int, name: str, segmentation: Segmentation, palette: Sequence[Color], opacity: float,
                   inference_ms: float = 0.0) -> FramePictures:
    started = time.perf_counter()
    outputs, photo = segmentation.outputs, segmentation.image
    score_maps = {stage: colorize(outputs.tensors[STAGE_SCORE_MAPS[stage]][0].argmax(0).to(torch.uint8).numpy(),
                                  palette) for stage in outputs.stages}
    masks = dict(zip(outputs.stages, overlays(photo, [segmentation.mask(stage) for stage in outputs.stages], palette,
                                              opacity)))
    shapes = {stage: tuple(outputs.tensors[STAGE_SCORE_MAPS[stage]].shape[1:]) for stage in outputs.stages}
    finest = segmentation.mask()  # computed once above, for the finest stage's overlay
    shares = np.bincount(finest.ravel(), minlength=outputs.logits().shape[1]) / max(finest.size, 1)
    return FramePictures(index, name, photo, score_maps, masks, inference_ms, shapes, shares,
                         pictures_ms=1000 * (time.perf_counter() - started))


def segment_frame(
    source: FrameSource,
    index: int,
    segment: Callable[[np.ndarray], Segmentation],
    palette: Sequence[Color],
    opacity: float,
) -> FramePictures:
    """Decodes, segments and draws frame ``index`` (what the player's background thread runs per frame), timing
    each phase."""
    started = time.perf_counter()
    image = source.frame(index)
    decoded = time.perf_counter()
    segmentation = segment(image)
    elapsed = 1000 * (time.perf_counter() - decoded)
    pictures = frame_pictures(index, source.frame_name(index), segmentation, palette, opacity, elapsed)
    return replace(pictures, decode_ms=1000 * (decoded - started))


def _nearest(picture: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``picture`` resized to (height, width) by nearest neighbour (a coarse map keeps its blocks)."""
    height, width = size
    rows = (np.arange(height) * picture.shape[0] // height).clip(0, picture.shape[0] - 1)
    columns = (np.arange(width) * picture.shape[1] // width).clip(0, picture.shape[1] - 1)
    resized: np.ndarray = picture[rows][:, columns]
    return resized


def stage_strip(pictures: FramePictures, tile_height: int = 180) -> np.ndarray:
    """The stage panels of one frame side by side under their titles: photo, score maps (coarse to fine), masks.
    Each panel is ``tile_height`` tall, or less for a frame wider than ``MAX_TILE_ASPECT`` to one."""
    height, width = pictures.photo.shape[:2]
    scale = min(tile_height / height, MAX_TILE_ASPECT * tile_height / width)
    tile = (max(1, round(height * scale)), max(1, round(width * scale)))
    panels = [("photo", pictures.photo)]
    panels += [(f"{SCORE_MAP_TITLES[s]} /{STAGE_STRIDES[s]}", p) for s, p in pictures.score_maps.items()]
    panels += [(f"{s} mask", p) for s, p in pictures.masks.items()]
    gap = 4
    strip = Image.new("RGB", (len(panels) * (tile[1] + gap) - gap, tile[0] + STRIP_TITLE_PX), BACKGROUND)
    draw = ImageDraw.Draw(strip)
    font = ImageFont.load_default(size=15)
    for number, (title, picture) in enumerate(panels):
        left = number * (tile[1] + gap)
        strip.paste(Image.fromarray(_nearest(picture, tile)), (left, STRIP_TITLE_PX))
        draw.text((left + 4, 3), title, fill=(240, 240, 240), font=font)
    draw.text((strip.width - 4, 3), pictures.name, fill=(200, 200, 200), font=font, anchor="ra")
    return np.asarray(strip)


def export_gif(
    target: Path,
    source: FrameSource,
    segment: Callable[[np.ndarray], Segmentation],
    palette: Sequence[Color],
    opacity: float,
    fps: float,
    frames: Sequence[int] | None = None,
    progress: Callable[[int, int], bool] | None = None,
) -> Path:
    """Segments ``frames`` (default: all) and writes each one's stage strip to the GIF ``target`` as it is made
    (:class:`~fcn_viewer.teaching.gif.GifWriter`: looping at ``fps``, on the first strip's canvas, atomically).
    ``target`` is checked before the first frame; ``progress(done, total)`` returning False stops early (nothing is
    written)."""
    indices = list(range(len(source))) if frames is None else list(frames)
    if not indices:
        raise ValueError("no frames to write")
    with GifWriter(target, max(20, round(1000 / fps))) as gif:
        for done, index in enumerate(indices, start=1):
            gif.add(stage_strip(segment_frame(source, index, segment, palette, opacity)))
            if progress is not None and not progress(done, len(indices)):
                raise InterruptedError("export stopped")
    return target


@dataclass
class PlaybackClock:
    """Which frame is due: playback at ``fps`` from frame ``start`` at time ``started`` (seconds); late frames
    are skipped, never queued, so the picture keeps up with the clock."""

    fps: float
    start: int
    started: float

    def due(self, now: float) -> int:
        return self.start + int((now - self.started) * self.fps + 1e-6)  # 1e-6: 0.1 s at 10 fps is frame 1

