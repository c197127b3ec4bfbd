"""Coarse versus fine: where the finest mask differs from a coarser one, and which separately trained nets to
compare it with (no Qt)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from fcn_viewer.classes import Color
from fcn_viewer.render import boundaries, dimmed_grey
from fcn_viewer.weights.registry import RegistryEntry, entry

CompareMode = Literal["stages", "separate"]
DEFAULT_BOUNDARY_RADIUS = 3.0
NEAR_COLOR: Color = (230, 159, 0)  # Okabe–Ito orange and blue: distinct under colour-vision deficiencies
FAR_COLOR: Color = (0, 114, 178)
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


def disk_kernel(radius: float) -> torch.Tensor:
    """A (2r+1)×(2r+1) float mask of the offsets with dy² + dx² ≤ radius²."""
    reach = int(math.floor(radius))
    steps = torch.arange(-reach, reach + 1, dtype=torch.float32)
    return ((steps[:, None] ** 2 + steps[None, :] ** 2) <= radius**2).float()


def boundary_zone(mask: np.ndarray, radius: float) -> np.ndarray:
    """H×W bool: pixels within Euclidean distance ``radius`` of a boundary pixel of ``mask``.

    A boundary pixel has a 4-neighbour of another class (both sides of every class edge count).
    """
    if radius < 0:
        raise ValueError("radius must be non-negative")
    edges = torch.from_numpy(boundaries(mask)).float()[None, None]
    kernel = disk_kernel(radius)[None, None]
    reach = kernel.shape[-1] // 2
    return (F.conv2d(edges, kernel, padding=reach)[0, 0] > 0.5).numpy()


def mask_change(fine: np.ndarray, coarse: np.ndarray, radius: float = DEFAULT_BOUNDARY_RADIUS) -> MaskChange:
    """Where ``fine`` and ``coarse`` (H×W class indices) differ, and which of those lie near a ``fine`` boundary."""
    if fine.shape != coarse.shape:
        raise ValueError(f"masks differ in size: {fine.shape} and {coarse.shape}")
    changed = fine != coarse
    return MaskChange(changed, changed & boundary_zone(fine, radius), radius)


def change_picture(image: np.ndarray, change: MaskChange) -> np.ndarray:
    """The dimmed grey photo with changed pixels near a boundary in orange and the other changed pixels in blue."""
    picture = dimmed_grey(image)
    picture[change.changed & ~change.near_boundary] = FAR_COLOR
    picture[change.near_boundary] = NEAR_COLOR
    return picture


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
