"""What one training run is asked to do; importable without torch, so the command line can show its defaults fast."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fcn_viewer.model.config import FCNConfig, Padding, Variant, compact_config, vgg16_config

if TYPE_CHECKING:
    from fcn_viewer.weights.meta import Preprocessing

Arch = Literal["compact", "vgg16"]


@dataclass
class TrainConfig:
    data: Path
    out: Path
    variant: Variant = "fcn8s"
    arch: Arch = "compact"
    num_classes: int = 11
    ignore_index: int = 11
    # The bundled family: compact widths in the paper's geometry (conv1_1 padded by 100, ceil
    # pooling, valid 7×7 fc6), so its crops are the reference 5, 9 / 19, 27, 31. Blocks 4 and 5
    # see the whole padded frame, so they have two convolutions each: 9.8 GFLOP per 480×360 image.
    widths: tuple[int, ...] = (16, 32, 64, 128, 256)
    depths: tuple[int, ...] = (1, 2, 2, 2, 2)
    fc_width: int = 256
    fc6_kernel: int = 7
    padding: Padding = "paper"
    epochs: int = 100
    batch_size: int = 8
    crop: int = 320
    min_scale: float = 0.5
    max_scale: float = 2.0
    lr: float = 2e-3
    weight_decay: float = 1e-4
    aux_weights: tuple[float, ...] = (0.4, 0.2)
    class_weight_cap: float = 10.0
    seed: int = 0
    device: str = "auto"
    amp: Literal["auto", "bf16", "off"] = "auto"
    init: Path | None = None
    val_every: int = 5
    # Train images set aside (a fixed shuffle) to judge the run instead of val; 0 checks on val.
    holdout: int = 0
    time_limit_min: float | None = None
    # Train for this many minutes instead of a number of epochs: the learning rate follows the
    # one-cycle schedule over the elapsed share of the budget, and the run ends when it is spent.
    time_budget_min: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def fcn_config(self) -> FCNConfig:
        if self.arch == "vgg16":
            return vgg16_config(self.variant, self.num_classes)
        return compact_config(
            self.variant,
            num_classes=self.num_classes,
            widths=tuple(self.widths),
            depths=tuple(self.depths),
            fc_width=self.fc_width,
            fc6_kernel=self.fc6_kernel,
            padding=self.padding,
        )

    def preprocessing(self) -> Preprocessing:
        """Compact nets: ImageNet-normalised RGB. VGG16 nets: the Caffe convention, so paper weights
        (``--init`` from a .caffemodel or pytorch-fcn .pth) fine-tune with the input they were trained on."""
        from fcn_viewer.weights.meta import CAFFE_PREPROCESSING, Preprocessing  # torch: only when training

        return CAFFE_PREPROCESSING if self.arch == "vgg16" else Preprocessing()

    @property
    def run_dir(self) -> Path:
        return self.out / self.variant
