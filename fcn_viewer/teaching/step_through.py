"""The FCN fusion path as a list of captioned steps built from one pass's own tensors and crops (no Qt).

The step-through view and its tests read the same list: which tensor each step shows, its shape,
which alignment crop it illustrates, and a short caption in plain words with this image's numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from fcn_viewer.classes import Color
from fcn_viewer.model.outputs import STAGE_STRIDES, Crop, FCNOutputs
from fcn_viewer.render import blend, colorize, heatmap, mask_dtype

StepKind = Literal["scores", "upsample", "crop", "skip", "fused", "mask"]
SCALE_PERCENTILE = 0.5  # each step's scores below this percentile (and above 100 − it) do not widen the class's scale
StepDisplay = Literal["classes", "class-score"]
STAGE_MAP_NAMES = {"32s": "conv7 scores", "16s": "pool4-fused scores", "8s": "pool3-fused scores"}
# Per fusion, coarse to fine: the ×2 deconvolution, the skip's score layer, its pool layer, the fused sum,
# and the stages it goes from and to.
FUSIONS = (
    ("upscore2", "score_pool4", "pool4", "fuse_pool4", "32s", "16s"),
    ("upscore_pool4", "score_pool3", "pool3", "fuse_pool3", "16s", "8s"),
)


@dataclass(frozen=True)
class FusionStep:
    """One step of the path: the tensor it shows (C×h×w), and for a crop step the window that is kept."""

    kind: StepKind
    title: str
    short: str
    tensor: str
    shape: tuple[int, int, int]
    caption: str
    crop: Crop | None = None

    @property
    def heading(self) -> str:
        """The title with the tensor's name and shape, e.g. ``×2 upsampling · upscore2 · 21×34×34``."""
        return f"{self.title} · {self.tensor} · {'×'.join(str(n) for n in self.shape)}"


def _shape(outputs: FCNOutputs, name: str) -> tuple[int, int, int]:
    channels, height, width = outputs.tensors[name].shape[-3:]
    return int(channels), int(height), int(width)


def _size(size: Sequence[int]) -> str:
    return f"{size[0]}×{size[1]}"


def _crop_of(outputs: FCNOutputs, result: str) -> Crop:
    return next(crop for crop in outputs.crops if crop.result == result)


def fusion_steps(outputs: FCNOutputs) -> list[FusionStep]:
    """The path from conv7 scores to the mask of the net's finest stage, one step per operation.

    FCN-8s: conv7 scores → ×2 → crop → + pool4 scores → pool4-fused → ×2 → crop → + pool3 scores →
    pool3-fused → ×8 → final crop → mask; FCN-16s stops fusing after pool4, FCN-32s has none.
    """
    steps = [
        FusionStep(
            "scores", "conv7 scores", "conv7", "score_fr", _shape(outputs, "score_fr"),
            f"A 1×1 convolution turns the conv7 features into one score per class for every cell: "
            f"{_size(_shape(outputs, 'score_fr')[1:])} cells, each standing for a 32-pixel step of the image. "
            "Coarse: this is all FCN-32s has.",
        )
    ]
    final_stage = outputs.final_stage
    for upsampled, skip, pool, fused, coarse, fine in FUSIONS[: outputs.stages.index(final_stage)]:
        steps += _fusion(outputs, upsampled, skip, pool, fused, STAGE_MAP_NAMES[coarse], STAGE_STRIDES[fine])
    steps += _final(outputs, final_stage)
    return steps


def _fusion(
    outputs: FCNOutputs, upsampled: str, skip: str, pool: str, fused: str, coarse_name: str, stride: int
) -> list[FusionStep]:
    """×2 deconvolution, the alignment crop, the skip's scores, and their sum."""
    up_shape = _shape(outputs, upsampled)
    skip_cropped = f"{skip}c" in outputs.tensors  # paper nets crop the skip; 'same' nets trim the upsampled map
    crop = _crop_of(outputs, f"{skip}c" if skip_cropped else f"{upsampled}c")
    aligned = f"{skip}c" if skip_cropped else skip
    up_name = f"{upsampled}c" if not skip_cropped else upsampled
    upsample = FusionStep(
        "upsample", "×2 upsampling", "×2", upsampled, up_shape,
        f"A learnable deconvolution (kernel 4, stride 2, starting as bilinear interpolation) doubles the "
        f"{coarse_name} to stride {stride}: {_size(up_shape[1:])}, before any crop.",
    )
    if skip_cropped:
        crop_caption = (
            f"{skip} is {_size(crop.source_size)}: the 100-pixel padding of conv1_1 makes it larger. Its "
            f"{_size(crop.size)} window at offset {crop.offset} lines up with {upsampled}; the rest is cut off."
        )
    elif crop.source_size == crop.size:
        crop_caption = (
            f"{upsampled} already matches {skip} ({_size(crop.size)}): the crop at offset 0 keeps all of it."
        )
    else:
        crop_caption = (
            f"{upsampled} is {_size(crop.source_size)}, {skip} is {_size(crop.size)} (the image is not a multiple "
            f"of {2 * stride} pixels). The top-left {_size(crop.size)} (offset 0) is kept."
        )
    return [
        upsample,
        FusionStep("crop", f"crop at offset {crop.offset}", f"crop @{crop.offset}", crop.source,
                   _shape(outputs, crop.source), crop_caption, crop),
        FusionStep(
            "skip", f"+ {pool} scores", f"+ {pool}", aligned, _shape(outputs, aligned),
            f"A 1×1 convolution scores the {pool} features (stride {stride}) per class. These finer scores are "
            f"added cell by cell to the upsampled coarse scores. On their own they can look like noise: they are "
            f"trained only as corrections to the upsampled scores (in the staged recipe score_{pool} starts at "
            f"zero, so the finer net first predicts just what the coarser one did); only the sum is a class map.",
        ),
        FusionStep(
            "fused", f"{pool}-fused", f"{pool}-fused", fused, _shape(outputs, fused),
            f"{fused} = {up_name} + {aligned}: class scores at stride {stride}, {_size(_shape(outputs, fused)[1:])}. "
            f"{'FCN-16s upsamples this sum to the image.' if pool == 'pool4' else 'The finest score map.'}",
        ),
    ]


def _final(outputs: FCNOutputs, stage: str) -> list[FusionStep]:
    """The net's own final upsampling to the image, its crop, and the mask."""
    layer = outputs.upsampling[stage]
    factor = STAGE_STRIDES[stage]
    logits = f"logits_{stage}"
    crop = _crop_of(outputs, logits)
    height, width = outputs.input_size
    source_shape = _shape(outputs, layer)
    source = STAGE_MAP_NAMES[stage]
    if crop.source_size == crop.size:
        crop_caption = f"{layer} already has the image's size {_size(crop.size)}: the crop at offset 0 keeps all of it."
    elif crop.offset:
        crop_caption = (
            f"{layer} is {_size(crop.source_size)}, larger than the {height}×{width} image because of the padding. "
            f"The {_size(crop.size)} window at offset {crop.offset} is the one aligned with the input pixels."
        )
    else:
        crop_caption = f"{layer} is {_size(crop.source_size)}: the top-left {_size(crop.size)} (offset 0) is kept."
    return [
        FusionStep(
            "upsample", f"×{factor} upsampling", f"×{factor}", layer, source_shape,
            f"A deconvolution (kernel {2 * factor}, stride {factor}; bilinear at initialisation) upsamples the "
            f"{source} ×{factor} to {_size(source_shape[1:])}, before the final crop.",
        ),
        FusionStep("crop", f"final crop at offset {crop.offset}", f"crop @{crop.offset}", layer, source_shape,
                   crop_caption, crop),
        FusionStep(
            "mask", f"FCN-{stage} mask", "mask", logits, _shape(outputs, logits),
            f"Every pixel takes the class with the highest of its {source_shape[0]} scores (argmax): "
            f"the FCN-{stage} prediction, {height}×{width}.",
        ),
    ]


def chapter_of(steps: Sequence[FusionStep], index: int) -> str:
    """The chapter step ``index`` belongs to: the conv7 scores, each fusion (its ×2, crop, skip and sum), or the
    final upsampling to the mask, e.g. ``fusing pool4 (stride 16)``."""
    if steps[index].kind == "scores":
        return "conv7 scores (stride 32)"
    last_fused = max((number for number, step in enumerate(steps) if step.kind == "fused"), default=0)
    if index > last_fused:
        return "to the image: the final upsampling and the mask"
    fusion = sum(1 for step in steps[: index + 1] if step.kind == "upsample") - 1
    _, _, pool, _, _, fine = FUSIONS[fusion]
    return f"fusing {pool} (stride {STAGE_STRIDES[fine]})"


@dataclass(frozen=True)
class ScoreScale:
    """One class's colour scale, held across every step of the path: ``low`` is darkest, ``high`` brightest."""

    class_index: int
    low: float
    high: float

    def describe(self, class_name: str) -> str:
        """E.g. ``score of car: −11.92 (dark) … 12.04 (bright), the same on every step``."""
        return f"score of {class_name}: {self.low:.2f} (dark) … {self.high:.2f} (bright), the same on every step"


def class_scale(
    steps: Sequence[FusionStep], arrays: dict[str, np.ndarray], class_index: int, percentile: float = SCALE_PERCENTILE
) -> ScoreScale:
    """The colour scale of ``class_index`` for all ``steps``: from the lowest to the highest of each step's
    robust range (its ``percentile`` and ``100 − percentile`` of that class's scores), so one scale holds on
    every step and a few extreme pixels do not wash the rest out."""
    lows, highs = [], []
    for name in dict.fromkeys(step.tensor for step in steps):
        channel = arrays[name][class_index]
        low, high = np.percentile(channel, (percentile, 100.0 - percentile))
        lows.append(float(low))
        highs.append(float(high))
    low, high = min(lows), max(highs)
    return ScoreScale(class_index, low, high if high > low else low + 1.0)


def scale_bar(width: int = 256) -> np.ndarray:
    """A 1×``width`` colour bar of the class-score display, darkest (the scale's low end) on the left."""
    return heatmap(np.linspace(0.0, 1.0, width)[None], 0.0, 1.0)


def step_classes(scores: np.ndarray) -> np.ndarray:
    """A step's C×h×w ``scores`` as their h×w uint8 argmax classes."""
    classes: np.ndarray = scores.argmax(axis=0)
    return classes.astype(mask_dtype(scores.shape[0]))


def step_pixels(
    step: FusionStep,
    scores: np.ndarray,
    image: np.ndarray,
    palette: Sequence[Color],
    display: StepDisplay = "classes",
    chosen_class: int = 0,
    opacity: float = 0.6,
    classes: np.ndarray | None = None,
    scale: ScoreScale | None = None,
) -> np.ndarray:
    """The h×w×3 picture of a step's C×h×w ``scores``: argmax colours (the mask blended over the photo at
    ``opacity``) or one class's raw score from darkest to brightest: on ``scale`` (:func:`class_scale`, the same
    for every step) when given, else from this map's own minimum to its maximum.
    ``classes``: :func:`step_classes` of ``scores`` when already known, so a redraw skips the argmax."""
    if display == "class-score":
        channel = scores[chosen_class]
        if scale is not None:
            return heatmap(channel, scale.low, scale.high)
        return heatmap(channel, float(channel.min()), float(channel.max()))
    colors = colorize(step_classes(scores) if classes is None else classes, palette)
    return blend(image, colors, opacity) if step.kind == "mask" else colors
