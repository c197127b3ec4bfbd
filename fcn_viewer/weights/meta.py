"""What travels with a model's weights: architecture, classes, palette, preprocessing, provenance."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from fcn_viewer.classes import Color
from fcn_viewer.model.config import FCNConfig
from fcn_viewer.weights.validate import meta_fields, preprocessing_fields

ChannelOrder = Literal["RGB", "BGR"]
CAFFE_MEAN_BGR = (104.00698793, 116.66876762, 122.67891434)


@dataclass(frozen=True)
class Preprocessing:
    """How an RGB uint8 image becomes the network's input: reorder, scale, subtract mean, divide std."""

    channel_order: ChannelOrder = "RGB"
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    def __post_init__(self) -> None:
        if self.channel_order not in ("RGB", "BGR"):
            raise ValueError(f"channel order {self.channel_order!r} is not RGB or BGR")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError("preprocessing needs three means and three standard deviations")
        if not all(math.isfinite(v) for v in (self.scale, *self.mean, *self.std)):
            raise ValueError("preprocessing values must be finite numbers")
        if self.scale <= 0 or min(self.std) <= 0:
            raise ValueError(f"preprocessing scale and std must be > 0 (scale {self.scale}, std {self.std})")

    def from_uint8(self, batch: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """N×H×W×3 uint8 RGB (any device) → N×3×H×W network input of ``dtype``, channels-last in memory.

        The arithmetic runs in float32 whatever ``dtype`` is, so every precision sees the same input
        up to its own rounding.
        """
        normalized = self._standardize(batch.permute(0, 3, 1, 2).float())
        return normalized.to(dtype=dtype, memory_format=torch.channels_last)

    def normalize(self, rgb: torch.Tensor) -> torch.Tensor:
        """N×3×H×W RGB in [0, 1] (any device) → the network's input, as :meth:`from_uint8` makes it."""
        return self._standardize(rgb * 255.0)

    def _standardize(self, pixels: torch.Tensor) -> torch.Tensor:
        """N×3×H×W RGB on the 0–255 scale → channel order, scale, mean and std of the network's input."""
        if self.channel_order == "BGR":
            pixels = pixels.flip(1)
        mean = torch.tensor(self.mean, device=pixels.device, dtype=pixels.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=pixels.device, dtype=pixels.dtype).view(1, 3, 1, 1)
        return (pixels * self.scale - mean) / std

    def to_dict(self) -> dict[str, Any]:
        return {"channel_order": self.channel_order, "scale": self.scale, "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        """Schema-checked (``validate.SchemaError``, a ValueError, names the field)."""
        return cls(**preprocessing_fields(data))


# The reference Caffe nets (and pytorch-fcn's conversions) take BGR 0–255 minus the ImageNet mean.
CAFFE_PREPROCESSING = Preprocessing(channel_order="BGR", scale=1.0, mean=CAFFE_MEAN_BGR, std=(1.0, 1.0, 1.0))


@dataclass(frozen=True)
class ModelMeta:
    """Everything besides the tensors that a model file must carry to be used correctly."""

    name: str
    title: str
    config: FCNConfig
    classes: tuple[str, ...]
    palette: tuple[Color, ...]
    preprocessing: Preprocessing
    metrics: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    # What the model knows (fcn_viewer/domain.py): its training data in words, e.g. "CamVid: dashcam road scenes,
    # Cambridge UK, 11 classes", and the threshold below which a photo looks unlike it (``{"threshold": …, …}``).
    domain: str = ""
    familiarity: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.classes) != self.config.num_classes:
            raise ValueError(f"{self.name}: {len(self.classes)} class names for {self.config.num_classes} classes")
        if len(self.palette) < len(self.classes):
            raise ValueError(f"{self.name}: palette has {len(self.palette)} colours for {len(self.classes)} classes")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "config": self.config.to_dict(),
            "classes": list(self.classes),
            "palette": [list(c) for c in self.palette],
            "preprocessing": self.preprocessing.to_dict(),
            "metrics": self.metrics,
            "provenance": self.provenance,
            "domain": self.domain,
            "familiarity": self.familiarity,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelMeta:
        """Schema-checked against the bounds of ``weights.validate`` (a ``SchemaError``, a ValueError,
        names the field); palette entries past the last class are dropped."""
        fields = meta_fields(data)
        fields["palette"] = fields["palette"][: fields["config"].num_classes]
        fields["preprocessing"] = Preprocessing(**fields["preprocessing"])
        return cls(**fields)
