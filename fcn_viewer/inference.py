"""Runs a loaded FCN on an image: the one path image → tensor → stage scores → masks."""

from __future__ import annotations

import copy
import gc
import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from fcn_viewer.model.fold import fold_batchnorm
from fcn_viewer.model.outputs import FCNOutputs
from fcn_viewer.weights.loader import LoadedModel
from fcn_viewer.weights.meta import ModelMeta

# Larger images are downscaled before inference: 4 MP (e.g. 2300×1730) keeps the paper's
# VGG16 FCN-8s within a few GB of memory.
DEFAULT_MAX_PIXELS = 4_000_000


def resolve_device(choice: str = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then the CPU; 'cuda'/'cpu'/'mps' are taken as asked."""
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("CUDA was asked for, but no CUDA device is available")
    return torch.device(choice)


@dataclass
class Segmentation:
    """All stages of one image, on the CPU as float32, with the per-stage masks derived from them.

    ``image`` is the picture the network saw: the opened image, or a downscaled copy when the
    original was over the pixel budget or the device ran out of memory (``notes`` says so).
    """

    outputs: FCNOutputs
    image: np.ndarray
    source_size: tuple[int, int]
    notes: tuple[str, ...] = ()

    @property
    def image_size(self) -> tuple[int, int]:
        return (self.image.shape[0], self.image.shape[1])

    @property
    def stages(self) -> tuple[str, ...]:
        return self.outputs.stages

    def mask(self, stage: str | None = None) -> np.ndarray:
        """H×W uint8 argmax classes of ``stage`` (default: the finest stage)."""
        return self.outputs.logits(stage)[0].argmax(0).to(torch.uint8).numpy()

    def confidence(self, stage: str | None = None) -> np.ndarray:
        """H×W float32 max softmax probability of ``stage``."""
        return torch.softmax(self.outputs.logits(stage)[0], dim=0).amax(0).numpy()

    def arrays(self) -> dict[str, np.ndarray]:
        """Every stage tensor as float32 C×h×w, named as in the network."""
        return self.outputs.numpy(0)


class Segmenter:
    """Keeps one model on one device and segments images with it.

    The model runs with BatchNorm folded into its convolutions (on a copy: the loaded model
    keeps its layers) and in channels-last memory layout, which is faster on CPUs and GPUs.
    """

    def __init__(
        self, loaded: LoadedModel, device: str | torch.device = "auto", max_pixels: int = DEFAULT_MAX_PIXELS
    ) -> None:
        self.loaded = loaded
        self.max_pixels = max_pixels
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        model = loaded.model.eval()
        if model.config.batch_norm:
            model = fold_batchnorm(copy.deepcopy(model))
        self.model = model.to(self.device, memory_format=torch.channels_last)

    @property
    def meta(self) -> ModelMeta:
        return self.loaded.meta

    def segment(self, image: np.ndarray) -> Segmentation:
        """Runs every stage of the net on an H×W×3 uint8 RGB image in one forward pass.

        Images over ``max_pixels`` are downscaled first. If the GPU runs out of memory the pass is
        retried at half the pixels, then on the CPU; each fallback is recorded in ``notes``.
        """
        source_size = (image.shape[0], image.shape[1])
        notes: list[str] = []
        if image.shape[0] * image.shape[1] > self.max_pixels:
            image = downscale(image, self.max_pixels)
            notes.append(f"downscaled from {source_size[1]}×{source_size[0]} to {image.shape[1]}×{image.shape[0]} "
                         f"to stay within {self.max_pixels / 1e6:.0f} MP")
        try:
            outputs = self._forward(image, self.device)
        except torch.OutOfMemoryError:
            release_device_memory()
            smaller = downscale(image, image.shape[0] * image.shape[1] // 2)
            try:
                outputs, image = self._forward(smaller, self.device), smaller
                notes.append(f"out of {self.device.type} memory: ran at {image.shape[1]}×{image.shape[0]}")
            except torch.OutOfMemoryError:
                release_device_memory()
                outputs = self._forward(image, torch.device("cpu"))
                notes.append(f"out of {self.device.type} memory: ran on the CPU")
        return Segmentation(outputs=outputs, image=image, source_size=source_size, notes=tuple(notes))

    @torch.inference_mode()
    def _forward(self, image: np.ndarray, device: torch.device) -> FCNOutputs:
        model = self.model if device == self.device else copy.deepcopy(self.model).to(device)
        tensor = self.meta.preprocessing.to_tensor(image).to(device, memory_format=torch.channels_last)
        return model.forward_stages(tensor).to("cpu", torch.float32)


def downscale(image: np.ndarray, max_pixels: int) -> np.ndarray:
    """Resizes ``image`` (antialiased) to at most ``max_pixels``, keeping its aspect ratio."""
    height, width = image.shape[:2]
    factor = math.sqrt(max_pixels / (height * width))
    size = (max(1, int(width * factor)), max(1, int(height * factor)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


def release_device_memory() -> None:
    """Returns cached GPU blocks to the driver (after an out-of-memory error or a model change)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
