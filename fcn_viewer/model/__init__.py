"""FCN networks and their stage outputs (no Qt).

The names below load on first use (PEP 562), so that importing ``fcn_viewer.model.config`` — all the
command line needs to list its choices — does not import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fcn_viewer.model.config import FCNConfig, Variant, compact_config, vgg16_config
    from fcn_viewer.model.fcn import FCN, build_fcn
    from fcn_viewer.model.outputs import STAGE_STRIDES, Crop, FCNOutputs

_HOMES = {
    "FCNConfig": "config", "Variant": "config", "compact_config": "config", "vgg16_config": "config",
    "FCN": "fcn", "build_fcn": "fcn",
    "STAGE_STRIDES": "outputs", "Crop": "outputs", "FCNOutputs": "outputs",
}
__all__ = [
    "FCN",
    "STAGE_STRIDES",
    "Crop",
    "FCNConfig",
    "FCNOutputs",
    "Variant",
    "build_fcn",
    "compact_config",
    "vgg16_config",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
