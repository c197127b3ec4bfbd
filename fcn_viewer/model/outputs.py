"""The typed result of one FCN forward pass: every stage tensor the viewer and the CLI show."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from fcn_viewer.model.stages import STAGE_SCORE_MAPS, STAGE_STRIDES

__all__ = ["STAGE_SCORE_MAPS", "STAGE_STRIDES", "Crop", "FCNOutputs"]


@dataclass(frozen=True)
class Crop:
    """One alignment crop: ``result = source[..., offset:offset + h, offset:offset + w]``."""

    source: str
    result: str
    offset: int
    source_size: tuple[int, int]
    size: tuple[int, int]


@dataclass(frozen=True)
class Deconvolution:
    """A learned, bias-free upsampling layer of the pass (``upscore2``, ``upscore8``, ...): its weight and geometry.

    Kept with the outputs because the fusion tail is linear: with them, each score map's share of the logits can be
    recomputed without another forward pass (see :mod:`fcn_viewer.teaching.contributions`).
    """

    weight: torch.Tensor
    stride: int
    padding: int


@dataclass
class FCNOutputs:
    """All tensors of one pass, in the order they were computed, batched as N×C×h×w.

    ``tensors`` holds the net's own layers by their Caffe names (``score_fr``, ``upscore2``,
    ``score_pool4``, ``score_pool4c``, ``fuse_pool4``, ...) and the full-resolution logits of
    each stage as ``logits_32s``, ``logits_16s``, ``logits_8s``. ``upsampling`` says which layer
    made each stage's logits: a learned deconvolution, or ``"bilinear"`` for a stage whose net
    has no learned layer of that stride (for instance the 32s stage of an FCN-8s).
    """

    input_size: tuple[int, int]
    stages: tuple[str, ...]
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    crops: tuple[Crop, ...] = ()
    upsampling: dict[str, str] = field(default_factory=dict)
    deconvolutions: dict[str, Deconvolution] = field(default_factory=dict)

    @property
    def final_stage(self) -> str:
        return self.stages[-1]

    def logits(self, stage: str | None = None) -> torch.Tensor:
        """Full-resolution class logits of ``stage`` (default: the net's finest)."""
        return self.tensors[f"logits_{stage or self.final_stage}"]

    def score_map(self, stage: str) -> torch.Tensor:
        """The coarse map of ``stage``: conv7 scores (32s), pool4-fused (16s), pool3-fused (8s)."""
        return self.tensors[STAGE_SCORE_MAPS[stage]]

    def crop(self, source: str) -> Crop:
        for crop in self.crops:
            if crop.source == source:
                return crop
        raise KeyError(f"no crop of {source!r} in this pass")

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> FCNOutputs:
        moved = {k: v.to(device=device, dtype=dtype or v.dtype) for k, v in self.tensors.items()}
        layers = {k: Deconvolution(d.weight.to(device=device, dtype=dtype or d.weight.dtype), d.stride, d.padding)
                  for k, d in self.deconvolutions.items()}
        return FCNOutputs(self.input_size, self.stages, moved, self.crops, dict(self.upsampling), layers)

    def sample(self, index: int) -> FCNOutputs:
        """Image ``index`` of the batch as a batch of one (views of these tensors)."""
        picked = {k: v[index : index + 1] for k, v in self.tensors.items()}
        return FCNOutputs(self.input_size, self.stages, picked, self.crops, dict(self.upsampling),
                          dict(self.deconvolutions))

    def numpy(self, index: int = 0) -> dict[str, np.ndarray]:
        """Image ``index`` of the batch as float32 C×h×w arrays, named as in ``tensors``."""
        return {k: v[index].detach().float().cpu().numpy() for k, v in self.tensors.items()}
