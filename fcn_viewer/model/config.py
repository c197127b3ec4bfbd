"""Architecture description of an FCN, shared by the paper's VGG16 nets and the compact ones."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from fcn_viewer.model.stages import FINAL_STAGE_OF_VARIANT, STAGE_NAMES, Stage

Variant = Literal["fcn32s", "fcn16s", "fcn8s", "fcn8s-atonce"]
Padding = Literal["paper", "same"]

VARIANTS: tuple[Variant, ...] = ("fcn32s", "fcn16s", "fcn8s", "fcn8s-atonce")
VGG16_WIDTHS = (64, 128, 256, 512, 512)
VGG16_DEPTHS = (2, 2, 3, 3, 3)

# Crop offsets of the reference Caffe nets (conv1_1 padded by 100), by the layer that is cropped.
PAPER_CROPS = {
    "fcn32s": {"upscore": 19},
    "fcn16s": {"score_pool4": 5, "upscore16": 27},
    "fcn8s": {"score_pool4": 5, "score_pool3": 9, "upscore8": 31},
}
# Where the net has no learned layer for a stage, the stage logits come from a fixed bilinear
# upsampling with the reference geometry (kernel 2f, stride f) and these crops.
PAPER_STAGE_CROPS = {"32s": 19, "16s": 27, "8s": 31}


@dataclass(frozen=True)
class FCNConfig:
    """Everything needed to build an FCN; stored next to the weights so a file rebuilds its net.

    ``padding="paper"`` is the reference design (conv1_1 pad 100, valid fc6, offset crops);
    ``padding="same"`` keeps every map at ceil(H/stride) so all crops sit at offset 0.
    """

    variant: Variant = "fcn8s"
    num_classes: int = 21
    widths: tuple[int, ...] = VGG16_WIDTHS
    depths: tuple[int, ...] = VGG16_DEPTHS
    fc_width: int = 4096
    fc6_kernel: int = 7
    batch_norm: bool = False
    dropout: float = 0.5
    padding: Padding = "paper"

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown FCN variant {self.variant!r}; expected one of {VARIANTS}")
        if self.padding not in ("paper", "same"):
            raise ValueError(f"unknown padding {self.padding!r}; expected 'paper' or 'same'")
        if len(self.widths) != 5 or len(self.depths) != 5:
            raise ValueError("an FCN has five conv blocks: widths and depths need five entries")
        if self.num_classes < 1:
            raise ValueError("num_classes must be positive")
        if self.padding == "same" and self.fc6_kernel % 2 == 0:
            raise ValueError("'same' padding needs an odd fc6 kernel")

    @property
    def stages(self) -> tuple[Stage, ...]:
        """The stage names this variant produces, coarse to fine."""
        finest = STAGE_NAMES.index(FINAL_STAGE_OF_VARIANT[self.fusion])
        return STAGE_NAMES[: finest + 1]

    @property
    def fusion(self) -> str:
        """The layout of learned layers: at-once shares FCN-8s's layers."""
        return "fcn8s" if self.variant == "fcn8s-atonce" else self.variant

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FCNConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown FCN config keys: {sorted(unknown)}")
        values = dict(data)
        for key in ("widths", "depths"):
            if key in values:
                values[key] = tuple(int(v) for v in values[key])
        return cls(**values)


def vgg16_config(variant: Variant = "fcn8s", num_classes: int = 21) -> FCNConfig:
    """The paper's VGG16 FCN exactly as the reference Caffe nets."""
    return FCNConfig(variant=variant, num_classes=num_classes)


def compact_config(
    variant: Variant = "fcn8s",
    num_classes: int = 11,
    widths: tuple[int, ...] = (32, 64, 128, 256, 256),
    depths: tuple[int, ...] = (2, 2, 3, 3, 3),
    fc_width: int = 512,
    fc6_kernel: int = 3,
    batch_norm: bool = True,
    dropout: float = 0.1,
) -> FCNConfig:
    """A narrow VGG-style FCN with 'same' padding: the design of the bundled models."""
    return FCNConfig(
        variant=variant,
        num_classes=num_classes,
        widths=widths,
        depths=depths,
        fc_width=fc_width,
        fc6_kernel=fc6_kernel,
        batch_norm=batch_norm,
        dropout=dropout,
        padding="same",
    )


__all__ = [
    "PAPER_CROPS",
    "PAPER_STAGE_CROPS",
    "VARIANTS",
    "FCNConfig",
    "Variant",
    "compact_config",
    "vgg16_config",
]
