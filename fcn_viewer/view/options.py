"""How the panels draw a result, as plain data, so rendering and exporting need no Qt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DisplayMode = Literal["classes", "confidence", "class-probability"]
PaletteName = Literal["model", "colorblind"]
DISPLAY_MODES: tuple[DisplayMode, ...] = ("classes", "confidence", "class-probability")
PALETTES: tuple[PaletteName, ...] = ("model", "colorblind")


@dataclass(frozen=True)
class DisplayOptions:
    """How the panels draw a result: display mode, mask opacity, hidden classes, palette, outlines."""

    mode: DisplayMode = "classes"
    opacity: float = 0.6
    hidden: frozenset[int] = frozenset()
    palette: PaletteName = "model"
    outline: bool = False
    chosen_class: int = 0
