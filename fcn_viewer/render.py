"""Turns masks and score maps into pixels: palette colouring, overlays, indexed PNGs (numpy, no Qt)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from fcn_viewer.classes import Color


def palette_lut(palette: Sequence[Color]) -> np.ndarray:
    """A 256×3 uint8 lookup table: class index → colour (unused indices black)."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[: len(palette)] = np.asarray(palette, dtype=np.uint8)
    return lut


def colorize(mask: np.ndarray, palette: Sequence[Color]) -> np.ndarray:
    """H×W class indices → H×W×3 colours, by one table lookup."""
    return palette_lut(palette)[mask]


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
    alpha = np.full(256, float(np.clip(opacity, 0.0, 1.0)), dtype=np.float32)
    if visible is not None:
        alpha[: len(visible)] *= np.asarray(visible, dtype=np.float32)
    weight = alpha[mask][:, :, None]
    blended = image.astype(np.float32) * (1.0 - weight) + colorize(mask, palette).astype(np.float32) * weight
    return (blended + 0.5).astype(np.uint8)


def save_indexed_png(path: str | Path, mask: np.ndarray, palette: Sequence[Color]) -> None:
    """Writes a mask as a palette ('P' mode) PNG: pixel values are class indices, colours from the model."""
    height, width = mask.shape
    image = Image.frombytes("P", (width, height), np.ascontiguousarray(mask, dtype=np.uint8).tobytes())
    image.putpalette(palette_lut(palette).reshape(-1).tolist())
    image.save(path, format="PNG")


def save_rgb_png(path: str | Path, pixels: np.ndarray) -> None:
    Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).save(path, format="PNG")
