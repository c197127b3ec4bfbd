"""The three prediction stages of an FCN, named and described once: stride, score map and final layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Stage = Literal["32s", "16s", "8s"]


@dataclass(frozen=True)
class StageSpec:
    """One stage: its output stride, the coarse score map it upsamples, and the learned layer that does it in
    the net whose finest stage it is (``variant``)."""

    name: Stage
    stride: int
    score_map: str
    final_layer: str
    variant: str


STAGES: dict[Stage, StageSpec] = {
    "32s": StageSpec("32s", 32, "score_fr", "upscore", "fcn32s"),
    "16s": StageSpec("16s", 16, "fuse_pool4", "upscore16", "fcn16s"),
    "8s": StageSpec("8s", 8, "fuse_pool3", "upscore8", "fcn8s"),
}
STAGE_NAMES: tuple[Stage, ...] = tuple(STAGES)  # coarse to fine
# Views of the table keyed by plain strings, for code that reads stage names from files and tensors.
STAGE_STRIDES: dict[str, int] = {name: spec.stride for name, spec in STAGES.items()}
STAGE_SCORE_MAPS: dict[str, str] = {name: spec.score_map for name, spec in STAGES.items()}
FINAL_STAGE_OF_VARIANT: dict[str, Stage] = {spec.variant: name for name, spec in STAGES.items()}
