"""What travels with a model's weights: architecture, classes, palette, preprocessing, provenance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
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

    def to_tensor(self, image: np.ndarray) -> torch.Tensor:
        """H×W×3 uint8 RGB → 1×3×H×W float32 in the network's channel order and range."""
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an H×W×3 RGB image, got shape {image.shape}")
        return self.from_uint8(torch.from_numpy(np.require(image, np.uint8, ["C_CONTIGUOUS", "WRITEABLE"]))[None])

    def from_uint8(self, batch: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """N×H×W×3 uint8 RGB (any device) → N×3×H×W network input of ``dtype``, channels-last in memory.

        The arithmetic runs in float32 whatever ``dtype`` is, so every precision sees the same input
        up to its own rounding.
        """
        pixels = batch.permute(0, 3, 1, 2).float()
        if self.channel_order == "BGR":
            pixels = pixels.flip(1)
        mean = torch.tensor(self.mean, device=batch.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=batch.device).view(1, 3, 1, 1)
        normalized = (pixels * self.scale - mean) / std
        return normalized.to(dtype=dtype, memory_format=torch.channels_last)

    def normalize(self, rgb: torch.Tensor) -> torch.Tensor:
        """N×3×H×W RGB in [0, 1] (any device) → the network's input, as :meth:`to_tensor` makes it."""
        pixels = rgb.flip(1) if self.channel_order == "BGR" else rgb
        mean = torch.tensor(self.mean, device=rgb.device, dtype=rgb.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=rgb.device, dtype=rgb.dtype).view(1, 3, 1, 1)
        return (pixels * (255.0 * self.scale) - mean) / std

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
        return cls(
            name=str(data["name"]),
            title=str(data.get("title", data["name"])),
            config=FCNConfig.from_dict(data["config"]),
            classes=tuple(str(c) for c in data["classes"]),
            palette=tuple((int(c[0]), int(c[1]), int(c[2])) for c in data["palette"]),
            preprocessing=Preprocessing.from_dict(data["preprocessing"]),
            metrics=dict(data.get("metrics", {})),
            provenance=dict(data.get("provenance", {})),
            domain=str(data.get("domain", "")),
            familiarity=dict(data.get("familiarity", {})),
        )
