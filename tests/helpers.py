"""Test helpers: tiny random-weight FCNs, generated images, and where the shared data lives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fcn_viewer.classes import CAMVID_CLASSES, CAMVID_PALETTE
from fcn_viewer.model import FCNConfig, build_fcn
from fcn_viewer.weights.meta import ModelMeta, Preprocessing

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CAMVID = SHARED / "data" / "camvid"
TINY_WIDTHS = (4, 4, 8, 8, 8)


def tiny_paper_config(variant: str = "fcn8s", num_classes: int = 5) -> FCNConfig:
    """The reference geometry (pad 100, valid 7×7 fc6, offset crops) with a few channels."""
    return FCNConfig(variant=variant, num_classes=num_classes, widths=TINY_WIDTHS, fc_width=16)  # type: ignore[arg-type]


def tiny_compact_config(variant: str = "fcn8s", num_classes: int = 11) -> FCNConfig:
    return FCNConfig(
        variant=variant,  # type: ignore[arg-type]
        num_classes=num_classes,
        widths=TINY_WIDTHS,
        fc_width=16,
        fc6_kernel=3,
        batch_norm=True,
        dropout=0.1,
        padding="same",
    )


def random_model(config: FCNConfig, seed: int = 0) -> torch.nn.Module:
    """A net whose every parameter (deconvolutions and score layers too) is random, so all stages differ."""
    torch.manual_seed(seed)
    model = build_fcn(config)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.startswith(("upscore", "score")) or name.endswith("bias"):
                parameter.normal_(0, 0.5)
    return model.eval()


def tiny_meta(config: FCNConfig, name: str = "tiny") -> ModelMeta:
    classes = CAMVID_CLASSES[: config.num_classes] if config.num_classes <= 11 else tuple(
        f"c{i}" for i in range(config.num_classes)
    )
    palette = CAMVID_PALETTE[: config.num_classes] if config.num_classes <= 11 else tuple(
        (i, 255 - i, (7 * i) % 256) for i in range(config.num_classes)
    )
    return ModelMeta(name=name, title=f"{name} test model", config=config, classes=classes, palette=palette,
                     preprocessing=Preprocessing())


def gradient_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A deterministic RGB test picture: smooth gradients plus a few blocks of colour."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) % 256], axis=2)
    for _ in range(3):
        top, left = rng.integers(0, max(height - 4, 1)), rng.integers(0, max(width - 4, 1))
        image[top : top + height // 4, left : left + width // 4] = rng.integers(0, 256, 3)
    return image.astype(np.uint8)


def requires_camvid() -> pytest.MarkDecorator:
    return pytest.mark.skipif(not (CAMVID / "val").is_dir(), reason="../shared/data/camvid is not present")
