"""The files a segmentation is saved as, one writer per format, so the CLI and the viewer write the same files.

Every file is written atomically (a temporary file renamed into place): an interrupted write leaves no half file.
How much disk they take is estimated beforehand (:func:`expected_bytes`), so a full disk is found before any work.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from fcn_viewer.atomic import atomic_output
from fcn_viewer.classes import Color
from fcn_viewer.errors import FCNViewerError
from fcn_viewer.imageio import image_size
from fcn_viewer.render import overlay, save_indexed_png, save_rgb_png
from fcn_viewer.videoio import VideoFrames, VideoWriter

if TYPE_CHECKING:  # torch loads when something is segmented, not when `segment --help` runs
    from fcn_viewer.inference import Segmentation
    from fcn_viewer.weights.meta import ModelMeta

OVERLAY_OPACITY = 0.5
ScoresDtype = Literal["float32", "float16"]
SCORES_DTYPES: tuple[ScoresDtype, ...] = ("float32", "float16")
# What one network pixel costs on disk, about: an indexed PNG of class ids, a photo-like RGB overlay, the stage
# tensors after deflate (floats barely compress; the full-size ones dominate); each file ends in a 4 KiB block.
MASK_BYTES_PER_PIXEL = 0.25
OVERLAY_BYTES_PER_PIXEL = 1.5
SCORES_KEPT = 0.9
FILE_BYTES = 4096
SAMPLED_HEADERS = 32  # headers read to estimate a run's outputs, spread over its images


def write_mask(path: Path, classes: np.ndarray, palette: Sequence[Color]) -> Path:
    """Class indices as an indexed-palette PNG (pixel value = class index, the palette the model's colours)."""
    save_indexed_png(path, classes, palette)
    return path


def write_rgb(path: Path, pixels: np.ndarray) -> Path:
    """An RGB picture (an overlay as drawn, a figure) as a PNG."""
    save_rgb_png(path, pixels)
    return path


def write_overlay(
    path: Path, segmentation: Segmentation, palette: Sequence[Color], opacity: float = OVERLAY_OPACITY
) -> Path:
    """The finest stage's mask blended over the photo the network saw, as an RGB PNG."""
    return write_rgb(path, overlay(segmentation.image, segmentation.mask(), palette, opacity))


def stage_mask_paths(target: Path, stages: Sequence[str]) -> dict[str, Path]:
    """The finest stage goes to ``target`` (as `fcn-viewer segment` names it); coarser ones get a stage suffix."""
    finest = stages[-1]
    return {
        stage: target if stage == finest else target.with_name(f"{target.stem}_{stage}{target.suffix}")
        for stage in stages
    }


def write_stage_masks(target: Path, segmentation: Segmentation, palette: Sequence[Color]) -> list[Path]:
    """Every stage's argmax classes as an indexed PNG, named by :func:`stage_mask_paths`."""
    paths = stage_mask_paths(target, segmentation.stages)
    for stage, path in paths.items():
        write_mask(path, segmentation.mask(stage), palette)
    return list(paths.values())


def write_scores(path: Path, segmentation: Segmentation, meta: ModelMeta, dtype: ScoresDtype = "float32") -> Path:
    """A deflate-compressed ``.npz``: every stage tensor as C×h×w ``dtype``, named as in the network, with
    ``classes`` and ``info_json`` (stages, crops, upsampling, size, notes, precision)."""
    info = {
        "model": meta.name,
        "stages": list(segmentation.stages),
        "upsampling": segmentation.outputs.upsampling,
        "source_size": list(segmentation.source_size),
        "notes": list(segmentation.notes),
        "crops": [crop.__dict__ for crop in segmentation.outputs.crops],
        "dtype": dtype,
    }
    arrays = {name: array.astype(dtype, copy=False) for name, array in segmentation.arrays().items()}
    named = {**arrays, "classes": np.array(meta.classes), "info_json": np.array(json.dumps(info))}
    with atomic_output(path) as handle:
        # numpy's stubs fear a key named allow_pickle (a keyword since numpy 2.1); none of these names is one
        np.savez_compressed(handle, **named)  # type: ignore[arg-type]
    return path


def output_bytes(pixels: float, meta: ModelMeta, save_scores: bool, scores_dtype: ScoresDtype = "float32") -> int:
    """About how many bytes of disk :func:`write_outputs` takes for an image the network sees at ``pixels`` pixels."""
    classes = meta.config.num_classes
    mask = pixels * MASK_BYTES_PER_PIXEL * (1 if classes <= 256 else 2)
    total = mask + pixels * OVERLAY_BYTES_PER_PIXEL + 2 * FILE_BYTES
    if save_scores:  # every stage's full-size logits, and the last upsampling they come from
        full_size = (len(meta.config.stages) + 1) * classes * pixels * np.dtype(scores_dtype).itemsize
        total += full_size * SCORES_KEPT + FILE_BYTES
    return int(total)


def expected_bytes(images: Sequence[Path], meta: ModelMeta, save_scores: bool, scores_dtype: ScoresDtype,
                   max_pixels: int) -> int:
    """About how many bytes `segment` writes for ``images``: their mean size from up to SAMPLED_HEADERS headers
    spread over the list (no pixel decoded; unreadable ones skipped), each at most ``max_pixels``."""
    sampled = []
    for path in images[:: max(1, len(images) // SAMPLED_HEADERS)][:SAMPLED_HEADERS]:
        try:
            height, width = image_size(path)
        except FCNViewerError:
            continue
        sampled.append(min(height * width, max_pixels))
    if not sampled:
        return 0
    return len(images) * output_bytes(sum(sampled) / len(sampled), meta, save_scores, scores_dtype)


def output_names(stem: str, save_scores: bool) -> list[str]:
    """The files `fcn-viewer segment` writes for one image."""
    return [f"{stem}_mask.png", f"{stem}_overlay.png"] + ([f"{stem}.npz"] if save_scores else [])


def video_output_names(stem: str, masks: bool) -> list[str]:
    """What `fcn-viewer segment` writes for one video: its overlay video, and with ``masks`` a folder of masks."""
    return [f"{stem}_overlay.mp4"] + ([f"{stem}_masks"] if masks else [])


def write_video_outputs(
    out: Path, stem: str, video: VideoFrames, segment: Callable[[np.ndarray], Segmentation], meta: ModelMeta,
    masks: bool, progress: Callable[[int, int], None] | None = None,
) -> Path:
    """``<stem>_overlay.mp4``: every frame with its finest stage's mask over it, at the video's frame rate; with
    ``masks``, also each frame's mask as ``<stem>_masks/00001.png``, … (indexed, as ``<stem>_mask.png``). Frames are
    read, segmented and written one at a time; ``progress(done, total)`` after each."""
    target = out / f"{stem}_overlay.mp4"
    folder = out / f"{stem}_masks"
    if masks:
        folder.mkdir(exist_ok=True)
    with VideoWriter(target, video.fps) as writer:
        for index in range(len(video)):
            segmentation = segment(video.frame(index))
            writer.add(overlay(segmentation.image, segmentation.mask(), meta.palette, OVERLAY_OPACITY))
            if masks:
                write_mask(folder / f"{index + 1:05d}.png", segmentation.mask(), meta.palette)
            if progress is not None:
                progress(index + 1, len(video))
    return target


def write_outputs(
    out: Path, stem: str, segmentation: Segmentation, meta: ModelMeta, save_scores: bool,
    scores_dtype: ScoresDtype = "float32",
) -> None:
    """``<stem>_mask.png`` (indexed, finest stage), ``<stem>_overlay.png`` and optionally ``<stem>.npz``,
    at the size the network saw (see ``segmentation.notes`` for a downscale)."""
    write_mask(out / f"{stem}_mask.png", segmentation.mask(), meta.palette)
    write_overlay(out / f"{stem}_overlay.png", segmentation, meta.palette)
    if save_scores:
        write_scores(out / f"{stem}.npz", segmentation, meta, scores_dtype)
