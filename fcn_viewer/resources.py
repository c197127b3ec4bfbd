"""Where the files shipped beside the package (bundled models, icons) live."""

from __future__ import annotations

import os
from pathlib import Path


def resources_dir() -> Path:
    """``$FCN_VIEWER_RESOURCES`` if set, else the repository's ``resources/`` folder."""
    override = os.environ.get("FCN_VIEWER_RESOURCES")
    return Path(override) if override else Path(__file__).resolve().parent.parent / "resources"


def bundled_models_dir() -> Path:
    return resources_dir() / "models"
