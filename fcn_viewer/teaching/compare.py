"""Coarse versus fine: where the finest mask differs from a coarser one, and which separately trained nets to
compare it with (no Qt)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from fcn_viewer.classes import Color
from fcn_viewer.render import blend, boundaries, colorize, dimmed_grey
from fcn_viewer.weights.registry import RegistryEntry, entry

CompareMode = Literal["stages", "separate"]
DEFAULT_BOUNDARY_RADIUS = 3.0
NEAR_COLOR: Color = (230, 159, 0)  # Okabe–Ito orange and blue: distinct under colour-vision deficiencies
FAR_COLOR: Color = (0, 114, 178)
GREY_LUT = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)  # grey level → RGB
# The paper's Table 2 setting: FCN-32s, FCN-16s and FCN-8s trained one after the other, each its own net.
FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("camvid-fcn32s", "camvid-fcn16s", "camvid-fcn8s"),
    ("fcn32s-heavy-pascal", "fcn16s-heavy-pascal", "fcn8s-heavy-pascal"),
    ("pytorch-fcn32s_from_caffe", "pytorch-fcn16s_from_caffe", "pytorch-fcn8s_from_caffe"),
)


@dataclass(frozen=True)
class MaskChange:
    """Pixels whose class differs between a fine and a coarse mask, and those of them near a fine-mask boundary."""

    changed: np.ndarray
    near_boundary: np.ndarray
    radius: float

    @property
    def count(self) -> int:
        return int(self.changed.sum())

    @property
    def fraction(self) -> float:
        return self.count / self.changed.size if self.changed.size else math.nan

    @property
    def near_count(self) -> int:
        return int(self.near_boundary.sum())

    def describe(self) -> str:
        """E.g. ``1,234 px changed (5.6 %), 1,000 of them (81 %) within 3 px of a boundary``."""
        near = f"{self.near_count / self.count:.0%}" if self.count else "–"
        return (
            f"{self.count:,} px changed ({self.fraction:.1%}), {self.near_count:,} of them ({near}) "
            f"within {self.radius:g} px of a boundary"
        )


def skip_words(skips: Sequence[str]) -> str:
    """Skips by their layer, coarse to fine, in words: ``the pool3 skip``, ``the pool4 and pool3 skips``."""
    return f"the {' and '.join(skips)} skip" + ("s" if len(skips) > 1 else "")


def disk_half_widths(radius: float) -> np.ndarray:
    """Per row offset dy = 0, 1, …, ⌊radius⌋: the largest dx with dy² + dx² ≤ radius²."""
    reach = int(math.floor(radius))
    steps = np.arange(reach + 1)
    widths: np.ndarray = ((steps[:, None] ** 2 + steps[None, :] ** 2) <= radius**2).sum(axis=1) - 1
    return widths


def boundary_zone(mask: np.ndarray, radius: float) -> np.ndarray:
    """H×W bool: pixels within Euclidean distance ``radius`` of a boundary pixel of ``mask``.

    A boundary pixel has a 4-neighbour of another class (both sides of every class edge count). Each row of the
    disk is a run of columns, so the rows of boundary pixels within a run come from running counts (numpy, one
    thread: it leaves the other cores to the window and the network).
    """
    if radius < 0:
        raise ValueError("radius must be non-negative")
    edges = boundaries(mask)
    height, width = edges.shape
    reach = int(math.floor(radius))
    counts = np.zeros((height, width + 2 * reach + 1), dtype=np.int32)  # boundary pixels left of each column
    counts[:, 1:] = np.cumsum(np.pad(edges, ((0, 0), (reach, reach))), axis=1, dtype=np.int32)
    zone = np.zeros_like(edges)
    for dy, half in enumerate(disk_half_widths(radius).tolist()):
        if dy >= height:
            break
        start = reach + half + 1
        run = counts[:, start : start + width] > counts[:, reach - half : reach - half + width]  # within ±half
        zone[: height - dy] |= run[dy:]
        zone[dy:] |= run[: height - dy]
    return zone


def mask_change(fine: np.ndarray, coarse: np.ndarray, radius: float = DEFAULT_BOUNDARY_RADIUS) -> MaskChange:
    """Where ``fine`` and ``coarse`` (H×W class indices) differ, and which of those lie near a ``fine`` boundary."""
    if fine.shape != coarse.shape:
        raise ValueError(f"masks differ in size: {fine.shape} and {coarse.shape}")
    changed = fine != coarse
    return MaskChange(changed, changed & boundary_zone(fine, radius), radius)


def _dimmed_levels() -> np.ndarray:
    """:func:`~fcn_viewer.render.dimmed_grey`'s level for each sum s of a pixel's channels (0…765), by its own
    float32 steps: the pixel (s, 0, 0) has the same channel mean."""
    pixels = np.zeros((766, 1, 3), dtype=np.float32)
    pixels[:, 0, 0] = np.arange(766)
    return dimmed_grey(pixels)[:, 0, 0]


DIMMED_LEVELS = _dimmed_levels()


def dimmed_level(photo: np.ndarray) -> np.ndarray:
    """H×W uint8: the level of :func:`~fcn_viewer.render.dimmed_grey` for an RGB uint8 ``photo``, by one lookup."""
    sums: np.ndarray = photo[:, :, 0].astype(np.uint16) + photo[:, :, 1] + photo[:, :, 2]
    return np.take(DIMMED_LEVELS, sums)


def marked_grey(level: np.ndarray, marks: Sequence[tuple[np.ndarray, Color]]) -> np.ndarray:
    """The H×W grey ``level`` as RGB with each H×W bool mask's pixels in its colour, later marks on top (one table
    lookup rather than a masked write into the colour picture per mark)."""
    index = level.astype(np.uint16)
    for number, (mask, _) in enumerate(marks):
        index = np.where(mask, np.uint16(len(GREY_LUT) + number), index)
    colors = np.asarray([color for _, color in marks], dtype=np.uint8).reshape(-1, 3)
    return np.take(np.concatenate([GREY_LUT, colors]), index, axis=0)


def change_picture(level: np.ndarray, change: MaskChange) -> np.ndarray:
    """The dimmed grey photo (its ``level``, see :func:`dimmed_level`) with changed pixels near a boundary in
    orange, other changed ones in blue."""
    return marked_grey(level, [(change.changed, FAR_COLOR), (change.near_boundary, NEAR_COLOR)])


@dataclass(frozen=True)
class ComparePictures:
    """The compare tab's pixels: each of ``masks`` in ``palette``'s colours and blended over ``photo`` at
    ``opacity``, and each change map (:func:`change_picture`)."""

    photo: np.ndarray
    masks: dict[str, np.ndarray]
    palette: tuple[Color, ...]
    opacity: float
    colors: dict[str, np.ndarray]
    overlays: dict[str, np.ndarray]
    changes: dict[str, np.ndarray]

    def recolored(self, palette: Sequence[Color], opacity: float) -> ComparePictures:
        """The masks blended at ``opacity``, recoloured only for another palette; the change maps are kept."""
        palette = tuple(palette)
        colors = self.colors if palette == self.palette else {s: colorize(m, palette) for s, m in self.masks.items()}
        overlays = {stage: blend(self.photo, color, opacity) for stage, color in colors.items()}
        return replace(self, palette=palette, opacity=opacity, colors=colors, overlays=overlays)


def compare_pictures(
    photo: np.ndarray,
    level: np.ndarray,
    masks: dict[str, np.ndarray],
    changes: dict[str, MaskChange],
    palette: Sequence[Color],
    opacity: float,
) -> ComparePictures:
    """The compare tab's pixels for ``photo`` (``level``: its :func:`dimmed_level`)."""
    for mask in masks.values():
        if mask.shape != photo.shape[:2]:
            raise ValueError(f"image {photo.shape[:2]} and mask {mask.shape} differ in size")
    colors = {stage: colorize(mask, palette) for stage, mask in masks.items()}
    overlays = {stage: blend(photo, color, opacity) for stage, color in colors.items()}
    pictures = {stage: change_picture(level, change) for stage, change in changes.items()}
    return ComparePictures(photo, masks, tuple(palette), opacity, colors, overlays, pictures)


def family_of(model_name: str, classes: tuple[str, ...]) -> tuple[RegistryEntry, ...]:
    """The separately trained FCN-32s/16s/8s nets to compare with: the model's own family, else (for a
    model outside the registry, e.g. a local file) the first family with an installed net for the same classes."""
    families = [tuple(entry(name) for name in names) for names in FAMILIES]
    for members in families:
        if model_name in {member.name for member in members}:
            return members
    for members in families:
        if members[0].classes == classes and any(member.available for member in members):
            return members
    return ()
