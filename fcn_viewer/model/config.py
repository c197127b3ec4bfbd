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

# conv1_1's padding in the reference nets: every map then covers the image whatever its size.
PAPER_PADDING = 100


@dataclass(frozen=True)
class PaperCrops:
    """Every crop offset of a paper-padded FCN: the skip crops, and each stage's final crop.

    A stage the net has no learned upsampling for takes a fixed bilinear ×f (kernel 2f) with the
    same geometry, so its crop is the one in ``stage`` as well.
    """

    score_pool4: int
    score_pool3: int
    stage: dict[str, int]


def paper_crops(fc6_kernel: int = 7, padding: int = PAPER_PADDING) -> PaperCrops:
    """Derives the crop offsets of a paper-padded FCN from its geometry, as Caffe's coord maps do.

    Each map's cell x sits at image coordinate ``scale * x + shift``. A 3×3 conv with padding 1
    keeps both; conv1_1's padding shifts by ``1 - padding``; a 2×2/2 pooling maps x to 2x + ½; the
    valid fc6 moves by (k − 1)/2 cells; a bias-free ×f deconvolution (kernel 2f) maps y to
    (y − f + ½)/f. Cropping map A to map B at one scale takes the offset (shift_B − shift_A)/scale.
    With 100-px padding and a 7×7 fc6 this gives the reference 5, 9 and 19 / 27 / 31.
    """
    shift = 1.0 - padding
    scale = 1.0
    shifts: dict[str, float] = {}
    for pool in range(1, 6):
        shift, scale = shift + scale / 2, scale * 2
        shifts[f"pool{pool}"] = shift
    score_fr = shift + scale * (fc6_kernel - 1) / 2

    def upsampled(source_shift: float, source_scale: float, factor: int) -> float:
        return source_shift - source_scale * (factor - 0.5) / factor

    def offset(larger: float, target: float, at_scale: float) -> int:
        value = (target - larger) / at_scale
        if value < 0 or value != int(value):
            raise ValueError(f"fc6 kernel {fc6_kernel} with padding {padding} gives no whole crop offset ({value})")
        return int(value)

    fuse_pool4 = upsampled(score_fr, 32, 2)
    fuse_pool3 = upsampled(fuse_pool4, 16, 2)
    return PaperCrops(
        score_pool4=offset(shifts["pool4"], fuse_pool4, 16),
        score_pool3=offset(shifts["pool3"], fuse_pool3, 8),
        stage={
            "32s": offset(upsampled(score_fr, 32, 32), 0.0, 1),
            "16s": offset(upsampled(fuse_pool4, 16, 16), 0.0, 1),
            "8s": offset(upsampled(fuse_pool3, 8, 8), 0.0, 1),
        },
    )


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
        if self.padding == "paper" and self.fc6_kernel not in (5, 7):
            raise ValueError(
                f"fc6 kernel {self.fc6_kernel}: the paper geometry needs a 7×7 (reference) or 5×5 fc6; a smaller "
                "one leaves the ×2 upsampled scores larger than the skip scores, a larger one the final map smaller "
                "than the image"
            )

    @property
    def paper_crops(self) -> PaperCrops:
        """The crop offsets of this net's paper geometry (the reference 5, 9 / 19, 27, 31 for a 7×7 fc6)."""
        return paper_crops(self.fc6_kernel)

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
    padding: Padding = "same",
) -> FCNConfig:
    """A narrow VGG-style FCN with BatchNorm, in the paper's geometry or with 'same' padding."""
    return FCNConfig(
        variant=variant,
        num_classes=num_classes,
        widths=widths,
        depths=depths,
        fc_width=fc_width,
        fc6_kernel=fc6_kernel,
        batch_norm=batch_norm,
        dropout=dropout,
        padding=padding,
    )


__all__ = [
    "PAPER_PADDING",
    "VARIANTS",
    "FCNConfig",
    "PaperCrops",
    "Variant",
    "compact_config",
    "paper_crops",
    "vgg16_config",
]
