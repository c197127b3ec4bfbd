"""Turns masks and score maps into pixels: palette colouring, overlays, indexed PNGs (numpy, no Qt)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from fcn_viewer.atomic import atomic_output
from fcn_viewer.classes import Color


def mask_dtype(num_classes: int) -> type[np.unsignedinteger]:
    """The narrowest type that holds every class index: uint8 up to 256 classes, else uint16."""
    return np.uint8 if num_classes <= 256 else np.uint16


def palette_lut(palette: Sequence[Color]) -> np.ndarray:
    """A 256×3 (more for palettes past 256 classes) uint8 lookup table: class index → colour (unused indices black)."""
    lut = np.zeros((max(256, len(palette)), 3), dtype=np.uint8)
    lut[: len(palette)] = np.asarray(palette, dtype=np.uint8)
    return lut


def colorize(mask: np.ndarray, palette: Sequence[Color]) -> np.ndarray:
    """H×W class indices → H×W×3 colours, by one table lookup (np.take: several times faster than indexing)."""
    return np.take(palette_lut(palette), mask, axis=0)


def overlay(
    image: np.ndarray,
    mask: np.ndarray,
    palette: Sequence[Color],
    opacity: float,
    visible: Sequence[bool] | None = None,
) -> np.ndarray:
    """Blends class colours over ``image``; classes marked invisible leave the photo untouched."""
    if image.shape[:2] != mask.shape:
        raise ValueError(f"image {image.shape[:2]} and mask {mask.shape} differ in size")
    alpha = np.full(max(256, len(palette)), float(np.clip(opacity, 0.0, 1.0)), dtype=np.float32)
    if visible is not None:
        alpha[: len(visible)] *= np.asarray(visible, dtype=np.float32)
    return blend(image, colorize(mask, palette), np.take(alpha, mask))


def overlays(
    image: np.ndarray,
    masks: Sequence[np.ndarray],
    palette: Sequence[Color],
    opacity: float,
    visible: Sequence[bool] | np.ndarray | None = None,
) -> list[np.ndarray]:
    """:func:`overlay` of several masks over one image, in 16-bit integers, each pixel within 1 of :func:`overlay`'s:
    the image's share is computed once for all of them (a fifth of the time for three masks); the pixels of classes
    marked invisible are the photo's own."""
    weight = round(float(np.clip(opacity, 0.0, 1.0)) * 256)
    colors = palette_lut(palette).astype(np.uint16) * np.uint16(weight)
    hidden = np.zeros((max(256, len(palette)), 3), dtype=bool)  # per class, for each of a pixel's 3 bytes
    if visible is not None:
        hidden[: len(visible)] = ~np.asarray(visible, dtype=bool)[:, None]
    photo = image.astype(np.uint16)
    photo *= np.uint16(256 - weight)
    photo += np.uint16(128)  # + 128: rounds the >> 8 below
    any_hidden = bool(hidden.any())
    pictures = []
    for mask in masks:
        if image.shape[:2] != mask.shape:
            raise ValueError(f"image {image.shape[:2]} and mask {mask.shape} differ in size")
        mixed = np.take(colors, mask, axis=0)
        mixed += photo
        mixed >>= 8
        picture = mixed.astype(np.uint8)
        if any_hidden:
            np.copyto(picture, image, where=np.take(hidden, mask, axis=0))
        pictures.append(picture)
    return pictures


def save_indexed_png(path: str | Path, mask: np.ndarray, palette: Sequence[Color]) -> None:
    """Writes a mask as a palette ('P' mode) PNG: pixel values are class indices, colours from the model.

    Past 256 classes a palette PNG cannot hold the indices: the mask is a 16-bit greyscale PNG instead.
    """
    if mask.dtype != np.uint8:
        with atomic_output(path) as handle:
            Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint16)).save(handle, format="PNG")
        return
    height, width = mask.shape
    image = Image.frombytes("P", (width, height), np.ascontiguousarray(mask, dtype=np.uint8).tobytes())
    image.putpalette(palette_lut(palette)[:256].reshape(-1).tolist())
    with atomic_output(path) as handle:
        image.save(handle, format="PNG")


RGB_PNG_COMPRESSION = 1  # zlib level: a 480×360 photo overlay encodes in 13 ms instead of 42 (Pillow's 6), 6 % larger


def save_rgb_png(path: str | Path, pixels: np.ndarray) -> None:
    """An RGB picture as a PNG, compressed fast: photos barely shrink more at higher levels, and encoding them
    was the slowest part of `segment` (more than the network's pass)."""
    with atomic_output(path) as handle:
        Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).save(handle, format="PNG",
                                                                          compress_level=RGB_PNG_COMPRESSION)


# Colour-blind-safe class colours: Okabe & Ito's set (without black, which vanishes over dark photos),
# then Paul Tol's "muted" scheme; both stay distinct under the common colour-vision deficiencies.
COLORBLIND_BASE: tuple[Color, ...] = (
    (230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178), (213, 94, 0),
    (204, 121, 167), (204, 102, 119), (51, 34, 136), (221, 204, 119), (17, 119, 51), (136, 204, 238),
    (136, 34, 85), (68, 170, 153), (153, 153, 51), (170, 68, 153), (221, 221, 221),
)  # fmt: skip
# Beyond the base set, classes repeat it in lighter, then darker shades (mixed with white / black).
_SHADE_STEPS = (0.0, 0.5, -0.45, 0.75, -0.7)
# A viridis-like ramp (dark purple → blue → green → yellow), readable in greyscale and by colour-blind viewers.
_HEAT_ANCHORS = np.array(
    [(68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141), (39, 173, 129),
     (92, 200, 99), (170, 220, 50), (253, 231, 37)],
    dtype=np.float64,
)  # fmt: skip


def colorblind_palette(count: int) -> tuple[Color, ...]:
    """``count`` colour-blind-safe class colours: the base set, then lighter and darker shades of it."""
    base = np.asarray(COLORBLIND_BASE, dtype=np.float64)
    index = np.arange(count)
    colors = base[index % len(base)]
    step = np.asarray(_SHADE_STEPS)[(index // len(base)) % len(_SHADE_STEPS)][:, None]
    target = np.where(step > 0, 255.0, 0.0)
    shaded = colors + (target - colors) * np.abs(step)
    return tuple((int(r), int(g), int(b)) for r, g, b in np.rint(shaded).astype(int))


def heat_lut() -> np.ndarray:
    """A 256×3 uint8 lookup table for values 0 (dark purple) … 1 (yellow)."""
    positions = np.linspace(0.0, 1.0, len(_HEAT_ANCHORS))
    ramp = np.linspace(0.0, 1.0, 256)
    channels = [np.interp(ramp, positions, _HEAT_ANCHORS[:, c]) for c in range(3)]
    return np.rint(np.stack(channels, axis=1)).astype(np.uint8)


HEAT_LUT = heat_lut()


def heatmap(values: np.ndarray, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    """H×W values → H×W×3 heat colours, ``low`` and below darkest, ``high`` and above brightest."""
    span = (high - low) or 1.0
    index: np.ndarray = np.clip((np.asarray(values, dtype=np.float32) - low) * (255.0 / span) + 0.5, 0, 255)
    return np.take(HEAT_LUT, index.astype(np.uint8), axis=0)


def boundaries(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """H×W bool: pixels with a 4-neighbour of another class (both sides of each edge), grown by ``width // 2``."""
    edge = np.zeros(mask.shape, dtype=bool)
    vertical = mask[1:, :] != mask[:-1, :]
    horizontal = mask[:, 1:] != mask[:, :-1]
    edge[1:, :] |= vertical
    edge[:-1, :] |= vertical
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    for _ in range(max(width, 1) // 2):
        grown = edge.copy()
        grown[1:, :] |= edge[:-1, :]
        grown[:-1, :] |= edge[1:, :]
        grown[:, 1:] |= edge[:, :-1]
        grown[:, :-1] |= edge[:, 1:]
        edge = grown
    return edge


# Outlines: a line in the class colour with a dark (or, around dark class colours, light) edge on both sides, drawn
# at full strength, so they stand out over the photo and over a fill of the same colour at any opacity.
OUTLINE_DARK: Color = (0, 0, 0)
OUTLINE_LIGHT: Color = (255, 255, 255)
LIGHT_EDGE_BELOW = 110.0  # class colours darker than this (Rec. 601 luma, 0–255) get a light edge


def contrast_lut(palette: Sequence[Color]) -> np.ndarray:
    """A 256×3 uint8 table: class index → the edge colour that contrasts with its class colour."""
    lut = palette_lut(palette).astype(np.float32)
    luma = lut @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.where((luma < LIGHT_EDGE_BELOW)[:, None], OUTLINE_LIGHT, OUTLINE_DARK).astype(np.uint8)


def outline(mask: np.ndarray, palette: Sequence[Color], width: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(H×W bool, H×W×3 uint8): the outline's pixels — those within ``width // 2`` of a class edge — and their
    colours: the class colour on the edge itself, the class's contrast colour (:func:`contrast_lut`) around it."""
    band = boundaries(mask, width)
    core = boundaries(mask, 1)
    colors = np.where(core[:, :, None], colorize(mask, palette), np.take(contrast_lut(palette), mask, axis=0))
    return band, colors


def blend(image: np.ndarray, colors: np.ndarray, alpha: np.ndarray | float) -> np.ndarray:
    """``image·(1−alpha) + colors·alpha`` for H×W×3 uint8 pictures and a scalar or H×W alpha in 0…1."""
    weight = np.asarray(alpha, dtype=np.float32)
    if weight.ndim == 2:
        weight = weight[:, :, None]
    mixed: np.ndarray = np.subtract(colors, image, dtype=np.float32)  # image + (colors − image)·alpha, in place: fewer passes
    mixed *= weight
    mixed += image
    mixed += 0.5
    return mixed.astype(np.uint8)


def dimmed_grey(image: np.ndarray, dimming: float = 0.55) -> np.ndarray:
    """The photo in grey, darkened by ``dimming``: a quiet background for highlighted pixels."""
    grey = np.asarray(image, dtype=np.float32).mean(axis=2, keepdims=True) * (1.0 - dimming)
    return np.repeat((grey + 0.5).astype(np.uint8), 3, axis=2)


def class_map(scores: np.ndarray) -> np.ndarray:
    """C×h×w class scores → h×w argmax class (uint8, uint16 past 256 classes; ties to the first class)."""
    import torch  # here: drawing a mask or a legend needs no torch

    classes = torch.from_numpy(np.asarray(scores, dtype=np.float32)).max(0).indices
    return classes.numpy().astype(mask_dtype(scores.shape[0]))


def score_summary(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """C×h×w class scores → (h×w argmax class (uint8, uint16 past 256 classes), h×w max softmax probability,
    h×w log-sum-exp). In torch, on the array's memory (no copy): about twice numpy's speed on one core, and it uses
    the calling thread's torch width (every core on a worker, one on the viewer's GUI thread: fcn_viewer.cpu_threads);
    ties go to the first class, as with numpy's argmax."""
    import torch  # here: drawing a mask or a legend needs no torch

    values = torch.from_numpy(np.asarray(scores, dtype=np.float32))
    best, classes = values.max(0)
    total = (values - best).exp_().sum(0)  # Σ exp(score − best): one C×h×w temporary, exponentiated in place
    confidence = total.reciprocal()  # the max softmax probability exp(best)/Σ exp(score): no second exponential
    log_partition = best + total.log()
    return classes.numpy().astype(mask_dtype(scores.shape[0])), confidence.numpy(), log_partition.numpy()


def class_probability(scores: np.ndarray, log_partition: np.ndarray, index: int) -> np.ndarray:
    """h×w softmax probability of class ``index``, from the scores and their log-sum-exp."""
    probability: np.ndarray = np.exp(np.asarray(scores[index], dtype=np.float32) - log_partition)
    return probability


def top_classes(scores: np.ndarray, count: int = 3) -> list[tuple[int, float]]:
    """The ``count`` most probable classes of one pixel's C scores, as (class index, softmax probability)."""
    values = np.asarray(scores, dtype=np.float64)
    probabilities = np.exp(values - values.max())
    probabilities /= probabilities.sum()
    order = np.argsort(-probabilities, kind="stable")[:count]
    return [(int(i), float(probabilities[i])) for i in order]
