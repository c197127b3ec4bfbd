"""Joint image/label augmentation in torch: random scale, crop, flip and photometric jitter.

Geometry is applied identically to image and label; labels are resized with nearest
neighbour, so every label pixel keeps an exact class index. Works on whatever device the
tensors are on (the GPU during GPU training).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    crop: int = 320
    min_scale: float = 0.5
    max_scale: float = 2.0
    flip: bool = True
    brightness: float = 0.25
    contrast: float = 0.25
    saturation: float = 0.25


def augment_pair(
    image: torch.Tensor, label: torch.Tensor, config: AugmentConfig, generator: torch.Generator, ignore_index: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """3×H×W uint8 image, H×W uint8 label → 3×crop×crop float image in [0, 1], crop×crop long label.

    Regions of the crop outside the scaled image are filled with grey and ``ignore_index``.
    """
    scale = _uniform(generator, config.min_scale, config.max_scale)
    height, width = label.shape
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    pixels = image.float().unsqueeze(0) / 255.0
    pixels = F.interpolate(pixels, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=scale < 1)[0]
    labels = F.interpolate(label[None, None].float(), size=(new_h, new_w), mode="nearest-exact")[0, 0].long()

    crop = config.crop
    top = int(torch.randint(0, max(new_h - crop, 0) + 1, (1,), generator=generator))
    left = int(torch.randint(0, max(new_w - crop, 0) + 1, (1,), generator=generator))
    pixels = pixels[:, top : top + crop, left : left + crop]
    labels = labels[top : top + crop, left : left + crop]
    pad_h, pad_w = crop - pixels.shape[1], crop - pixels.shape[2]
    if pad_h or pad_w:
        pixels = F.pad(pixels, (0, pad_w, 0, pad_h), value=0.5)
        labels = F.pad(labels, (0, pad_w, 0, pad_h), value=ignore_index)

    if config.flip and _uniform(generator, 0, 1) < 0.5:
        pixels, labels = pixels.flip(-1), labels.flip(-1)
    return _jitter(pixels, config, generator), labels


def _jitter(pixels: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    brightness = _uniform(generator, 1 - config.brightness, 1 + config.brightness)
    contrast = _uniform(generator, 1 - config.contrast, 1 + config.contrast)
    saturation = _uniform(generator, 1 - config.saturation, 1 + config.saturation)
    pixels = pixels * brightness
    grey = pixels.mean(dim=0, keepdim=True)
    pixels = (pixels - grey.mean()) * contrast + grey.mean()
    grey = pixels.mean(dim=0, keepdim=True)
    pixels = (pixels - grey) * saturation + grey
    return pixels.clamp(0, 1)


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))
