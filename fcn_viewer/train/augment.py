"""Batched joint image/label augmentation on the device that holds the split: scale, crop, flip, jitter.

The whole training split lives on the training device as uint8 (:class:`ResidentSplit`; CamVid's
train split is about 190 MB), and each batch is cut out of it by one ``grid_sample`` per tensor:
no DataLoader and no host round trip in the training loop. Geometry is shared by image and label;
labels are sampled with nearest neighbour, so every label pixel keeps an exact class index, and
whatever falls outside the photo becomes grey and void.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

GREY = 0.5


@dataclass(frozen=True)
class AugmentConfig:
    crop: int = 320
    min_scale: float = 0.5
    max_scale: float = 2.0
    flip: bool = True
    brightness: float = 0.25
    contrast: float = 0.25
    saturation: float = 0.25


@dataclass(frozen=True)
class ResidentSplit:
    """A split as three tensors on one device: images N×3×H×W uint8, labels N×H×W uint8 and each
    photo's own (height, width); smaller photos sit top-left, padded with grey and void."""

    images: torch.Tensor
    labels: torch.Tensor
    sizes: torch.Tensor

    @classmethod
    def stack(cls, pairs: list[tuple[torch.Tensor, torch.Tensor]], ignore_index: int) -> ResidentSplit:
        height = max(label.shape[0] for _, label in pairs)
        width = max(label.shape[1] for _, label in pairs)
        images = torch.full((len(pairs), 3, height, width), round(255 * GREY), dtype=torch.uint8)
        labels = torch.full((len(pairs), height, width), ignore_index, dtype=torch.uint8)
        for index, (image, label) in enumerate(pairs):
            images[index, :, : label.shape[0], : label.shape[1]] = image
            labels[index, : label.shape[0], : label.shape[1]] = label
        sizes = torch.tensor([tuple(label.shape) for _, label in pairs], dtype=torch.float32)
        return cls(images, labels, sizes)

    def to(self, device: torch.device) -> ResidentSplit:
        return ResidentSplit(self.images.to(device), self.labels.to(device), self.sizes.to(device))

    def __len__(self) -> int:
        return self.images.shape[0]


def augment_batch(
    split: ResidentSplit, indices: torch.Tensor, config: AugmentConfig, generator: torch.Generator, ignore_index: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The photos at ``indices`` → B×3×crop×crop float images in [0, 1] and B×crop×crop long labels.

    Per photo: a random scale in [min_scale, max_scale], a random crop of the scaled photo (at the
    top-left when the scaled photo is smaller than the crop), a random horizontal flip and random
    brightness, contrast and saturation. The random numbers come from ``generator`` (on the CPU), so
    a seeded run draws the same batches on any device.
    """
    device = split.images.device
    count = len(indices)
    draws = torch.rand((7, count), generator=generator).to(device)
    scale = config.min_scale + (config.max_scale - config.min_scale) * draws[0]
    sizes = split.sizes[indices.to(device)]
    room = (sizes * scale[:, None] - config.crop).clamp(min=0)
    top, left = (room[:, 0] * draws[1]).floor(), (room[:, 1] * draws[2]).floor()
    flip = (draws[3] < 0.5) if config.flip else torch.zeros(count, dtype=torch.bool, device=device)

    grid = _sampling_grid(split, scale, top, left, flip, config.crop)
    chosen = indices.to(device)
    pixels = F.grid_sample(split.images[chosen].float() / 255.0 - GREY, grid, mode="bilinear",
                           padding_mode="zeros", align_corners=False) + GREY
    # Labels shifted by one so that zero marks "outside the stored tensor", then mapped to void.
    shifted = F.grid_sample(split.labels[chosen, None].float() + 1, grid, mode="nearest",
                            padding_mode="zeros", align_corners=False)[:, 0].long()
    labels = torch.where(shifted == 0, torch.full_like(shifted, ignore_index), shifted - 1)
    return _jitter(pixels, draws[4:], config), labels


def _sampling_grid(
    split: ResidentSplit, scale: torch.Tensor, top: torch.Tensor, left: torch.Tensor, flip: torch.Tensor, crop: int
) -> torch.Tensor:
    """For each output pixel, where it samples the stored photo, in ``grid_sample``'s [-1, 1] units."""
    device = scale.device
    steps = torch.arange(crop, device=device, dtype=torch.float32) + 0.5
    columns = torch.where(flip[:, None], crop - steps[None, :], steps[None, :])
    y = (top[:, None] + steps[None, :]) / scale[:, None]  # B×crop, in stored-photo pixels
    x = (left[:, None] + columns) / scale[:, None]
    height, width = split.images.shape[-2:]
    y, x = 2 * y / height - 1, 2 * x / width - 1
    count = scale.shape[0]
    return torch.stack((x[:, None, :].expand(count, crop, crop), y[:, :, None].expand(count, crop, crop)), dim=-1)


def _jitter(pixels: torch.Tensor, draws: torch.Tensor, config: AugmentConfig) -> torch.Tensor:
    """Brightness, contrast (about the photo's mean grey) and saturation (about each pixel's grey)."""
    brightness, contrast, saturation = (
        (1 - amount + 2 * amount * draw)[:, None, None, None]
        for amount, draw in zip((config.brightness, config.contrast, config.saturation), draws)
    )
    pixels = pixels * brightness
    mean_grey = pixels.mean(dim=(1, 2, 3), keepdim=True)
    pixels = (pixels - mean_grey) * contrast + mean_grey
    grey = pixels.mean(dim=1, keepdim=True)
    pixels = (pixels - grey) * saturation + grey
    return pixels.clamp(0, 1)
