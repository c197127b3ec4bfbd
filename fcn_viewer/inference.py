"""Runs a loaded FCN on an image: the one path image → tensor → stage scores → masks."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from fcn_viewer.model.fold import fold_batchnorm
from fcn_viewer.model.outputs import FCNOutputs
from fcn_viewer.weights.loader import LoadedModel
from fcn_viewer.weights.meta import ModelMeta


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
    """All stages of one image, on the CPU as float32, with the per-stage masks derived from them."""

    outputs: FCNOutputs
    image_size: tuple[int, int]

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

    def __init__(self, loaded: LoadedModel, device: str | torch.device = "auto") -> None:
        self.loaded = loaded
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        model = loaded.model.eval()
        if model.config.batch_norm:
            model = fold_batchnorm(copy.deepcopy(model))
        self.model = model.to(self.device, memory_format=torch.channels_last)

    @property
    def meta(self) -> ModelMeta:
        return self.loaded.meta

    @torch.inference_mode()
    def segment(self, image: np.ndarray) -> Segmentation:
        """Runs every stage of the net on an H×W×3 uint8 RGB image in one forward pass."""
        tensor = self.meta.preprocessing.to_tensor(image).to(self.device, memory_format=torch.channels_last)
        outputs = self.model.forward_stages(tensor).to("cpu", torch.float32)
        return Segmentation(outputs=outputs, image_size=(image.shape[0], image.shape[1]))
