"""FCN networks and their stage outputs (no Qt)."""

from fcn_viewer.model.config import FCNConfig, Variant, compact_config, vgg16_config
from fcn_viewer.model.fcn import FCN, build_fcn
from fcn_viewer.model.outputs import STAGE_STRIDES, Crop, FCNOutputs

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
