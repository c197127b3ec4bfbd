"""The devices a user can ask for, named once for the command line, the Device menu and the settings."""

from __future__ import annotations

from typing import Literal, TypeGuard

DeviceChoice = Literal["auto", "cuda", "mps", "cpu"]
DEVICE_CHOICES: tuple[DeviceChoice, ...] = ("auto", "cuda", "mps", "cpu")
DEVICE_LABELS: dict[DeviceChoice, str] = {"auto": "Auto", "cuda": "CUDA", "mps": "MPS (Apple)", "cpu": "CPU"}


def is_device_choice(text: object) -> TypeGuard[DeviceChoice]:
    """Whether ``text`` (e.g. read from the settings) names a device choice."""
    return text in DEVICE_CHOICES
