"""Shared fixtures: tiny random-weight model files; Qt runs offscreen."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from fcn_viewer.weights.native import save_native  # noqa: E402
from tests.helpers import random_model, tiny_compact_config, tiny_meta  # noqa: E402


@pytest.fixture
def tiny_weights(tmp_path: Path) -> Path:
    """A native .safetensors file of a tiny compact FCN-8s with 11 CamVid classes."""
    config = tiny_compact_config()
    model = random_model(config)
    return save_native(tmp_path / "tiny.safetensors", model.state_dict(), tiny_meta(config), half=False)
