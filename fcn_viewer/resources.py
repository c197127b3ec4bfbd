"""Where the files shipped inside the package (bundled models, sample photos, a frame sequence) live, in a source tree
or a wheel."""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

from fcn_viewer.imageio import is_image_path

SAMPLES = "samples"  # sample photos; their labels lie in "samplesannot", the CamVid layout find_label reads
SEQUENCE = "sequence"  # consecutive CamVid frames the Sequence tab plays with no setup


def resources_dir() -> Path:
    """``$FCN_VIEWER_RESOURCES`` if set, else the package's ``bundled/`` folder (importlib.resources)."""
    override = os.environ.get("FCN_VIEWER_RESOURCES")
    if override:
        return Path(override)
    bundled = files("fcn_viewer") / "bundled"
    if not isinstance(bundled, Path):  # e.g. imported from a zip: the loaders need real files
        raise RuntimeError(f"fcn-viewer's bundled files are not on the file system ({bundled}); install it unzipped")
    return bundled


def bundled_models_dir() -> Path:
    return resources_dir() / "models"


def sample_images() -> list[Path]:
    """The bundled sample photos, first one first (empty when a resources folder has none)."""
    folder = resources_dir() / SAMPLES
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if path.is_file() and is_image_path(path))


def bundled_sequence() -> Path | None:
    """The bundled folder of consecutive frames (None when a resources folder has none)."""
    folder = resources_dir() / SEQUENCE
    return folder if folder.is_dir() and any(is_image_path(path) for path in folder.iterdir()) else None
