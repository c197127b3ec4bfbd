"""What travels with a model's weights: architecture, classes, palette, preprocessing, provenance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from fcn_viewer.classes import Color
from fcn_viewer.model.config import FCNConfig

ChannelOrder = Literal["RGB", "BGR"]
CAFFE_MEAN_BGR = (104.00698793, 116.66876762, 122.67891434)


@dataclass(frozen=True)
class Preprocessing:
    """How an RGB uint8 image becomes the network's input: reorder, scale, subtract mean, divide std."""

    channel_order: ChannelOrder = "RGB"
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

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
        return cls(
            channel_order=data["channel_order"],
            scale=float(data["scale"]),
            mean=tuple(float(v) for v in data["mean"]),  # type: ignore[arg-type]
            std=tuple(float(v) for v in data["std"]),  # type: ignore[arg-type]
        )


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
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelMeta:
        return cls(
            name=str(data["name"]),
            title=str(data.get("title", data["name"])),
            config=FCNConfig.from_dict(data["config"]),
            classes=tuple(str(c) for c in data["classes"]),
            palette=tuple((int(c[0]), int(c[1]), int(c[2])) for c in data["palette"]),
            preprocessing=Preprocessing.from_dict(data["preprocessing"]),
            metrics=dict(data.get("metrics", {})),
            provenance=dict(data.get("provenance", {})),
        )
