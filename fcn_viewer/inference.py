"""Runs a loaded FCN on an image: the one path image → tensor → stage scores → masks."""

from __future__ import annotations

import copy
import gc
import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from fcn_viewer.errors import DeviceError
from fcn_viewer.model.fold import fold_batchnorm
from fcn_viewer.model.outputs import FCNOutputs
from fcn_viewer.weights.loader import LoadedModel
from fcn_viewer.weights.meta import ModelMeta

# Larger images are downscaled before inference: 4 MP (e.g. 2300×1730) keeps the paper's
# VGG16 FCN-8s within a few GB of memory.
DEFAULT_MAX_PIXELS = 4_000_000


def device_available(choice: str) -> bool:
    """Whether this machine has the device 'cuda' or 'mps' (the CPU and 'auto' always are)."""
    if choice == "cuda":
        return torch.cuda.is_available()
    if choice == "mps":
        return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    return True


def resolve_device(choice: str = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then the CPU; 'cuda'/'cpu'/'mps' are taken as asked.

    Raises DeviceError when the device asked for is not on this machine.
    """
    if choice == "auto":
        return next(torch.device(kind) for kind in ("cuda", "mps", "cpu") if device_available(kind))
    if not device_available(choice):
        raise DeviceError(f"{choice.upper()} was asked for, but this machine has no {choice.upper()} device")
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

    def moved_to(self, device: torch.device) -> Segmenter:
        """A segmenter of the same model on ``device``. If the move fails (e.g. out of memory), this one
        still works where it was; once it succeeds, use only the new one (they may share the net)."""
        try:
            return Segmenter(self.loaded, device, self.max_pixels)
        except BaseException:
            self.model.to(self.device, memory_format=torch.channels_last)  # layers a cut-short move took along
            raise

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
                         f"to stay within {self.max_pixels / 1e6:g} MP")
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
    """Returns cached GPU blocks to the driver (after an out-of-memory error or a model change).

    The full garbage collection first (tensors held in reference cycles) runs only where there is a GPU
    cache to empty: it holds the GIL for ~100 ms, which stalls the viewer's window.
    """
    if torch.cuda.is_available():
        gc.collect()
        torch.cuda.empty_cache()
