"""Resumable training checkpoints: tensors and plain values only, so they load with weights_only=True."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from fcn_viewer.errors import WeightsError
from fcn_viewer.weights.pth import load_refusal


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Writes ``state`` atomically (temp file + rename), so an interrupted save never corrupts the last one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as error:
        raise WeightsError(f"{path}: unreadable checkpoint ({error.strerror or error})") from None
    except Exception as error:  # any unpickling failure: our reason, never torch's advice to drop weights_only
        raise load_refusal(path, error) from None
    if not isinstance(state, dict) or "model" not in state:
        raise WeightsError(f"{path}: not an fcn-viewer training checkpoint")
    return state
