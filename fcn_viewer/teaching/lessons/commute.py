"""Why an FCN sums scores instead of concatenating features: a 1×1 conv and a per-channel ×2 upsampling are both linear,
so classifying [pool4 ; upsampled conv7] with the two score layers side by side equals scoring each and summing, while
summing keeps 2 × C score channels instead of thousands of feature channels (no Qt)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from fcn_viewer.model.fcn import ATONCE_POOL4_SCALE, FCN
from fcn_viewer.model.upsample import bilinear_upsample, is_bilinear

OWN_BILINEAR = "the net's own ×2 (upscore2) is bilinear, so it is used as it is"
LEARNED_REPLACED = (
    "the net's ×2 (upscore2) is a learned C×C kernel that mixes the classes: it is defined on the C score channels "
    "only and cannot be applied to the {channels:,} feature channels, so the demonstration upsamples both ways with "
    "the bilinear ×2 of the same size and stride"
)


@dataclass(frozen=True)
class CommuteLesson:
    """The pool4 fusion computed both ways on one image (C×h×w float tensors on the CPU) and what each keeps in memory.

    ``summed`` is the net's way: score pool4, score conv7, upsample ×2, crop, add. ``concatenated`` classifies the
    aligned features [pool4 ; ×2 conv7 ; ×2 ones] with one 1×1 conv whose weights are [score_pool4 | score_fr | score_fr's
    bias]: the ×2 of a constant is not constant at the map's border, so score_fr's bias rides on an upsampled channel
    of ones (one channel more).
    """

    summed: torch.Tensor
    concatenated: torch.Tensor
    feature_channels: dict[str, int]
    score_channels: int
    map_size: tuple[int, int]
    bytes_per_value: int
    own_upsampling_is_bilinear: bool
    upsampling_note: str

    @property
    def max_abs_difference(self) -> float:
        return float((self.summed - self.concatenated).abs().max())

    @property
    def score_range(self) -> float:
        """max − min of the summed scores: the scale the difference is measured against."""
        return float(self.summed.max() - self.summed.min())

    @property
    def relative_difference(self) -> float:
        return self.max_abs_difference / max(self.score_range, 1e-12)

    @property
    def bytes_concatenated(self) -> int:
        """Bytes of the concatenated feature map the one 1×1 conv reads."""
        height, width = self.map_size
        return sum(self.feature_channels.values()) * height * width * self.bytes_per_value

    @property
    def bytes_summed(self) -> int:
        """Bytes of the two score maps that are summed (the ×2 conv7 scores and the cropped pool4 scores)."""
        height, width = self.map_size
        return 2 * self.score_channels * height * width * self.bytes_per_value

    def numbers(self) -> dict[str, Any]:
        """What `fcn-viewer figure --lesson commute --json` writes."""
        return {
            "max_abs_difference": self.max_abs_difference,
            "score_range": self.score_range,
            "relative_difference": self.relative_difference,
            "bytes_concatenated": self.bytes_concatenated,
            "bytes_summed": self.bytes_summed,
            "feature_channels": dict(self.feature_channels),
            "score_channels_summed": 2 * self.score_channels,
            "map_size": list(self.map_size),
            "bytes_per_value": self.bytes_per_value,
            "own_upsampling_is_bilinear": self.own_upsampling_is_bilinear,
            "upsampling": self.upsampling_note,
            "class_agreement": self.masks_agree(),
        }

    def masks_agree(self) -> float:
        """Share of cells where both ways give the same class."""
        return float((self.summed.argmax(0) == self.concatenated.argmax(0)).float().mean())


@torch.inference_mode()
def commute_lesson(model: FCN, x: torch.Tensor) -> CommuteLesson:
    """Runs the trunk of ``model`` on the prepared input ``x`` (1×3×H×W) and computes its pool4 fusion both ways."""
    config = model.config
    if config.fusion == "fcn32s":
        raise ValueError("an FCN-32s fuses no pool4 skip: load an FCN-16s or FCN-8s for this lesson")
    features = model.features(x)
    pool4 = features.pool4 * ATONCE_POOL4_SCALE if config.variant == "fcn8s-atonce" else features.pool4
    conv7 = features.conv7
    upscore2: torch.nn.ConvTranspose2d = model.upscore2
    num_classes = config.num_classes
    own = upscore2.weight.detach()
    own_is_bilinear = is_bilinear(own)
    padding = int(upscore2.padding[0])

    def align(skip: torch.Tensor, upsampled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """As the net fuses: paper nets crop the skip to the ×2 map, 'same' nets trim the ×2 map at offset 0."""
        if config.padding == "paper":
            offset = config.paper_crops.score_pool4
            height, width = upsampled.shape[-2:]
            return skip[..., offset : offset + height, offset : offset + width], upsampled
        height, width = skip.shape[-2:]
        return skip, upsampled[..., :height, :width]

    score_pool4, score_fr = model.score_pool4, model.score_fr
    skip_scores, up_scores = align(score_pool4(pool4), bilinear_upsample(score_fr(conv7), 2, padding))
    summed = skip_scores + up_scores

    ones = torch.ones_like(conv7[:, :1])
    skip_features, up_features = align(pool4, bilinear_upsample(torch.cat([conv7, ones], 1), 2, padding))
    stacked = torch.cat([skip_features, up_features], 1)
    assert score_fr.bias is not None  # the score layers are built with a bias
    weight = torch.cat([score_pool4.weight, score_fr.weight, score_fr.bias.view(num_classes, 1, 1, 1)], 1)
    concatenated = F.conv2d(stacked, weight, score_pool4.bias)

    note = OWN_BILINEAR if own_is_bilinear else LEARNED_REPLACED.format(channels=pool4.shape[1] + conv7.shape[1])
    return CommuteLesson(
        summed=summed[0].float().cpu(),
        concatenated=concatenated[0].float().cpu(),
        feature_channels={"pool4": int(pool4.shape[1]), "conv7": int(conv7.shape[1]), "ones": 1},
        score_channels=num_classes,
        map_size=(int(summed.shape[-2]), int(summed.shape[-1])),
        bytes_per_value=stacked.element_size(),
        own_upsampling_is_bilinear=own_is_bilinear,
        upsampling_note=note,
    )
