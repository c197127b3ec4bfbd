"""From classifier to FCN: the crop one "classifier" evaluation of a conv7 cell sees, that classifier run on the crop
alone against the FCN's cell, and the whole-image argument — crops needed, FLOPs and seconds of one FCN pass against
the crops one by one, and how often their classes agree (no Qt).

The classifier is the net itself with its fully connected layers back to what they were: conv1_1 padded by 1 (not
100) and fc6 valid, run on a crop of fc6-kernel × 32 pixels (224 for VGG16's 7×7 fc6), where it makes exactly one
prediction. The FCN equals it slid over the image at stride 32 on the image padded as conv1_1 pads it, except that
each crop's own zero padding replaces the pixels around the crop: widen the crop by the cell's receptive-field margin
and the FCN's cell is reproduced exactly.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from fcn_viewer.model.config import PAPER_PADDING, FCNConfig
from fcn_viewer.model.fcn import FCN
from fcn_viewer.teaching.receptive_field import trunk_geometry

STRIDE = 32  # five 2×2 poolings
PAPER_EXAMPLE = (500, 500)  # the paper's image size for its 10×10 grid of crops


def image_origin(config: FCNConfig) -> int:
    """How far left of (and above) the image the classifier's crop of conv7 cell 0 starts, in pixels.

    Paper nets: conv1_1's 100-px padding is 99 px of zero (mean) pixels and the classifier's own 1 px. 'Same' nets:
    fc6's padding of k // 2 pool5 cells, taken as k // 2 × 32 px of zero pixels (exact only away from the border).
    """
    return PAPER_PADDING - 1 if config.padding == "paper" else STRIDE * (config.fc6_kernel // 2)


def conv7_size(config: FCNConfig, height: int, width: int) -> tuple[int, int]:
    """The conv7 map's rows and columns for an image of ``height`` × ``width``: one classifier crop per cell."""

    def cells(length: int) -> int:
        if config.padding == "same":
            return math.ceil(length / STRIDE)
        length += 2 * PAPER_PADDING - 2
        for _ in range(5):
            length = math.ceil(length / 2)
        return length - config.fc6_kernel + 1

    return cells(height), cells(width)


@dataclass(frozen=True)
class ClassifierWindow:
    """The crop that one classifier evaluation of conv7 cell ``cell`` (row, column) sees, in image pixels.

    The crop is ``size`` px square from (``top``, ``left``), negative inside the padding; the cell depends on
    ``receptive_field`` px, so the exact crop adds ``context`` px (a multiple of 32, to keep the stride grid) all round.
    """

    cell: tuple[int, int]
    top: int
    left: int
    size: int
    receptive_field: int
    context: int
    inside: tuple[int, int, int, int]

    @property
    def margin(self) -> int:
        """How far the cell's receptive field reaches beyond each pool5 cell's own 32 px (left and right)."""
        return (self.receptive_field - self.size) // 2

    @property
    def exact(self) -> bool:
        """Whether the widened crop lies where the FCN saw pixels or its 100-px padding: then it reproduces the cell."""
        top, bottom, left, right = self.inside
        return (self.top - self.context >= top and self.left - self.context >= left
                and self.top + self.size + self.context <= bottom and self.left + self.size + self.context <= right)

    def untouched_cells(self) -> int:
        """How many of the crop's pool5 cells see none of the crop's own padding: their receptive field (32 px and
        :attr:`margin` either side) lies inside the crop, so they equal the FCN's pool5 cells."""
        kernel = self.size // STRIDE
        fitting = sum(1 for r in range(kernel) if STRIDE * r >= self.margin and STRIDE * (r + 1) + self.margin <= self.size)
        return fitting * fitting


def classifier_window(config: FCNConfig, cell: tuple[int, int], image_size: tuple[int, int]) -> ClassifierWindow:
    """The classifier crop of conv7 cell (row, column) for an image of ``image_size`` (height, width)."""
    origin = image_origin(config)
    size = STRIDE * config.fc6_kernel
    pool5 = trunk_geometry(config)["pool5"]
    margin = (pool5.size - STRIDE) // 2
    height, width = image_size
    reach = origin if config.padding == "paper" else 0
    return ClassifierWindow(
        cell=cell,
        top=STRIDE * cell[0] - origin,
        left=STRIDE * cell[1] - origin,
        size=size,
        receptive_field=size + 2 * margin,
        context=STRIDE * math.ceil(margin / STRIDE),
        inside=(-reach, height + reach, -reach, width + reach),
    )


def cell_at(config: FCNConfig, image_size: tuple[int, int], row: int, column: int) -> tuple[int, int]:
    """The conv7 cell whose classifier crop is centred nearest image pixel (``row``, ``column``) (for a click)."""
    rows, columns = conv7_size(config, *image_size)
    half = STRIDE * config.fc6_kernel / 2 - image_origin(config)

    def nearest(pixel: int, cells: int) -> int:
        return min(max(round((pixel + 0.5 - half) / STRIDE), 0), cells - 1)

    return nearest(row, rows), nearest(column, columns)


def default_cell(config: FCNConfig, image_size: tuple[int, int]) -> tuple[int, int]:
    """The conv7 cell nearest the map's centre whose widened crop reproduces it exactly (the centre if none does)."""
    rows, columns = conv7_size(config, *image_size)
    cells = [(row, column) for row in range(rows) for column in range(columns)]
    exact = [cell for cell in cells if classifier_window(config, cell, image_size).exact] or cells

    def distance(cell: tuple[int, int]) -> float:
        return (cell[0] - (rows - 1) / 2) ** 2 + (cell[1] - (columns - 1) / 2) ** 2

    return min(exact, key=distance)


def classifier_net(model: FCN) -> FCN:
    """A shallow copy of ``model`` that is the classifier: conv1_1 padded by 1 px and fc6 valid (weights shared)."""
    net = copy.copy(model)
    net._modules = dict(model._modules)
    first = model.conv1_1
    assert isinstance(first, nn.Conv2d)
    net.conv1_1 = _repadded(first, 1)
    net.fc6 = _repadded(model.fc6, 0)
    return net


def _repadded(conv: nn.Conv2d, padding: int) -> nn.Conv2d:
    """``conv`` with another zero padding, sharing its weight and bias."""
    kernel = (conv.kernel_size[0], conv.kernel_size[1])
    repadded = nn.Conv2d(conv.in_channels, conv.out_channels, kernel, padding=padding, bias=conv.bias is not None,
                         device="meta")
    repadded.weight = conv.weight
    repadded.bias = conv.bias
    return repadded


def crop(x: torch.Tensor, top: int, left: int, size: int) -> torch.Tensor:
    """The ``size``-px square of the prepared input ``x`` (N×3×H×W) at (``top``, ``left``), zero (the mean pixel, as
    in the net's padding) where it leaves the image."""
    window = x.new_zeros(x.shape[0], x.shape[1], size, size)
    height, width = x.shape[-2:]
    y0, y1, x0, x1 = max(top, 0), min(top + size, height), max(left, 0), min(left + size, width)
    if y1 > y0 and x1 > x0:
        window[..., y0 - top : y1 - top, x0 - left : x1 - left] = x[..., y0:y1, x0:x1]
    return window


def classify(net: FCN, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The classifier's conv7 scores (N×C×h×w; 1×1 for a crop of fc6-kernel × 32 px) and its pool5 features."""
    features = net.features(window)
    return net.score_fr(features.conv7), features.pool5


@dataclass(frozen=True)
class CellComparison:
    """One conv7 cell: the FCN's class scores, the classifier's on its crop alone and on the crop widened by the
    receptive-field margin, and per pool5 cell of the crop how far its features are from the FCN's (relative)."""

    window: ClassifierWindow
    fcn_scores: np.ndarray
    crop_scores: np.ndarray
    context_scores: np.ndarray
    pool5_difference: np.ndarray

    @property
    def max_abs_difference(self) -> float:
        """Largest |classifier − FCN| over the class scores (the crop alone)."""
        return float(np.abs(self.crop_scores - self.fcn_scores).max())

    @property
    def context_difference(self) -> float:
        """Largest |classifier on the widened crop − FCN|: float rounding where :attr:`ClassifierWindow.exact`."""
        return float(np.abs(self.context_scores - self.fcn_scores).max())

    @property
    def score_range(self) -> float:
        return float(self.fcn_scores.max() - self.fcn_scores.min())

    def numbers(self) -> dict[str, Any]:
        """What `fcn-viewer figure --lesson classifier --json` writes about the chosen cell."""
        window = self.window
        return {
            "cell": list(window.cell),
            "crop": {"top": window.top, "left": window.left, "size": window.size},
            "receptive_field": window.receptive_field,
            "context": window.context,
            "max_abs_difference": self.max_abs_difference,
            "score_range": self.score_range,
            "same_class": self.same_class,
            "context_difference": self.context_difference,
            "context_exact": window.exact,
            "pool5_cells_without_padding": window.untouched_cells(),
        }

    @property
    def same_class(self) -> bool:
        return int(self.crop_scores.argmax()) == int(self.fcn_scores.argmax())

    def sentence(self, classes: Sequence[str]) -> str:
        """How close the crop's prediction is to the FCN's cell, and why, in words."""
        fcn, alone = int(self.fcn_scores.argmax()), int(self.crop_scores.argmax())
        verdict = f"both say {classes[fcn]}" if fcn == alone else f"the FCN says {classes[fcn]}, the crop {classes[alone]}"
        window = self.window
        exact = (f"widened by {window.context} px all round, the crop reproduces the cell within "
                 f"{self.context_difference:.1g}" if window.exact else
                 "this cell's widened crop leaves the padded image, so even it is not exact here")
        return (f"{verdict}; the scores differ by up to {self.max_abs_difference:.3g} (score range "
                f"{self.score_range:.3g}): the crop's convolutions pad its border with zeros where the FCN sees the "
                f"pixels around it, and the cell depends on {window.receptive_field} px, {window.margin} px beyond the "
                f"{window.size}-px crop; only {window.untouched_cells()} of its {(window.size // STRIDE) ** 2} pool5 "
                f"cells see no padding. {exact[0].upper()}{exact[1:]}.")


@torch.inference_mode()
def compare_cell(model: FCN, x: torch.Tensor, cell: tuple[int, int], fcn_scores: torch.Tensor | None = None
                 ) -> CellComparison:
    """The classifier run on conv7 cell ``cell``'s crop of the prepared input ``x`` (1×3×H×W), alone and widened,
    against the FCN's cell: from ``fcn_scores`` (a pass's ``score_fr``, 1×C×h×w) or from a pass of ``model`` on ``x``."""
    model.eval()
    if fcn_scores is None:
        fcn_scores = model.score_fr(model.features(x).conv7)
    rows, columns = fcn_scores.shape[-2:]
    if not (0 <= cell[0] < rows and 0 <= cell[1] < columns):
        raise ValueError(f"conv7 cell {cell} is outside the {rows}×{columns} conv7 map")
    window = classifier_window(model.config, cell, (int(x.shape[-2]), int(x.shape[-1])))
    net = classifier_net(model)
    alone, pool5_alone = classify(net, crop(x, window.top, window.left, window.size))
    wide = window.size + 2 * window.context
    widened, pool5_wide = classify(net, crop(x, window.top - window.context, window.left - window.context, wide))
    middle, cells = window.context // STRIDE, window.size // STRIDE
    reference = pool5_wide[0, :, middle : middle + cells, middle : middle + cells]
    difference = (pool5_alone[0] - reference).norm(dim=0) / reference.norm(dim=0).clamp_min(1e-12)
    return CellComparison(
        window=window,
        fcn_scores=fcn_scores[0, :, cell[0], cell[1]].float().cpu().numpy(),
        crop_scores=alone[0, :, 0, 0].float().cpu().numpy(),
        context_scores=widened[0, :, middle, middle].float().cpu().numpy(),
        pool5_difference=difference.float().cpu().numpy(),
    )


def conv_flops(run: Callable[[], object], modules: list[nn.Module]) -> int:
    """Floating-point operations (2 per multiply-add) of the convolutions and deconvolutions among ``modules`` in one
    call of ``run``; pooling, ReLU and BatchNorm are left out (a few per cent)."""
    total = 0

    def count(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.ConvTranspose2d):
            kernel = module.kernel_size[0] * module.kernel_size[1]
            total += 2 * inputs[0].numel() * module.out_channels // module.groups * kernel
        elif isinstance(module, nn.Conv2d):
            kernel = module.kernel_size[0] * module.kernel_size[1]
            total += 2 * output.numel() * module.in_channels // module.groups * kernel

    hooks = [module.register_forward_hook(count) for module in modules if isinstance(module, nn.Conv2d | nn.ConvTranspose2d)]
    try:
        run()
    finally:
        for hook in hooks:
            hook.remove()
    return total


def _synchronize(x: torch.Tensor) -> None:
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)


@dataclass(frozen=True)
class SlidingComparison:
    """One FCN pass against a sliding classifier on the same image: crops (one per conv7 cell), FLOPs and seconds
    both ways, and how often their classes agree; ``fcn_scores`` is the timed pass's conv7 scores (1×C×h×w).

    The crops run one by one in a shuffled order until ``time_cap`` seconds have passed: ``crops_run`` of them. Their
    seconds for all the crops are then extrapolated from those run (``extrapolated``), and the agreement is over them.
    """

    grid: tuple[int, int]
    crop_size: int
    flops_fcn: int
    flops_per_crop: int
    seconds_fcn: float
    fcn_passes: int
    seconds_crops_run: float
    crops_run: int
    agreeing: int
    time_cap: float
    paper_example_grid: tuple[int, int]
    fcn_scores: torch.Tensor

    @property
    def crops(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def flops_crops(self) -> int:
        return self.flops_per_crop * self.crops

    @property
    def extrapolated(self) -> bool:
        return self.crops_run < self.crops

    @property
    def seconds_crops(self) -> float:
        """Seconds for all the crops: measured, or extrapolated from the crops run."""
        return self.seconds_crops_run / max(self.crops_run, 1) * self.crops

    @property
    def agreement(self) -> float:
        """Share of the crops run whose class is the FCN's class at their cell."""
        return self.agreeing / max(self.crops_run, 1)

    @property
    def speedup(self) -> float:
        return self.seconds_crops / max(self.seconds_fcn, 1e-12)

    def numbers(self) -> dict[str, Any]:
        """What `fcn-viewer figure --lesson classifier --json` writes about the whole image."""
        return {
            "crops": self.crops,
            "grid": list(self.grid),
            "crop_size": self.crop_size,
            "paper_example": {"image": list(PAPER_EXAMPLE), "grid": list(self.paper_example_grid)},
            "flops_fcn": self.flops_fcn,
            "flops_crops": self.flops_crops,
            "flops_per_crop": self.flops_per_crop,
            "seconds_fcn": self.seconds_fcn,
            "fcn_passes_timed": self.fcn_passes,
            "seconds_crops": self.seconds_crops,
            "seconds_crops_extrapolated": self.extrapolated,
            "crops_run": self.crops_run,
            "seconds_crops_run": self.seconds_crops_run,
            "time_cap_seconds": self.time_cap,
            "fcn_faster": self.seconds_fcn < self.seconds_crops,
            "speedup": self.speedup,
            "argmax_agreement": self.agreement,
        }


@torch.inference_mode()
def sliding_comparison(
    model: FCN,
    x: torch.Tensor,
    time_cap: float = 10.0,
    cancel: Callable[[], bool] | None = None,
    seed: int = 0,
) -> SlidingComparison:
    """Runs ``model`` as an FCN on the prepared input ``x`` (1×3×H×W) — whole passes, up to three within half of
    ``time_cap`` — and as a classifier on one crop per conv7 cell, one by one, within ``time_cap`` seconds (or until
    ``cancel`` says stop); one pass and one crop run first untimed, counting FLOPs (and warming up)."""
    model.eval()
    config = model.config
    net = classifier_net(model)
    flops_fcn = conv_flops(lambda: model.forward_stages(x), list(model.modules()))  # and a warm-up
    passes, started = 0, time.perf_counter()
    _synchronize(x)
    while True:
        outputs = model.forward_stages(x)
        _synchronize(x)
        passes += 1
        if passes == 3 or time.perf_counter() - started >= time_cap / 2:
            break
    seconds_fcn = (time.perf_counter() - started) / passes
    fcn_classes = outputs.tensors["score_fr"][0].argmax(0).cpu()
    rows, columns = int(fcn_classes.shape[0]), int(fcn_classes.shape[1])
    image_size = (int(x.shape[-2]), int(x.shape[-1]))

    def window_of(index: int) -> torch.Tensor:
        window = classifier_window(config, (index // columns, index % columns), image_size)
        return crop(x, window.top, window.left, window.size)

    flops_per_crop = conv_flops(lambda: classify(net, window_of(0)), list(net.modules()))
    order = np.random.default_rng(seed).permutation(rows * columns)
    run, agreeing, started = 0, 0, time.perf_counter()
    for index in order:
        if run and (time.perf_counter() - started >= time_cap or (cancel is not None and cancel())):
            break
        scores, _ = classify(net, window_of(int(index)))
        predicted = int(scores[0, :, 0, 0].argmax())
        agreeing += int(predicted == int(fcn_classes[index // columns, index % columns]))
        run += 1
    _synchronize(x)
    seconds = time.perf_counter() - started
    return SlidingComparison(
        grid=(rows, columns),
        crop_size=STRIDE * config.fc6_kernel,
        flops_fcn=flops_fcn,
        flops_per_crop=flops_per_crop,
        seconds_fcn=seconds_fcn,
        fcn_passes=passes,
        seconds_crops_run=seconds,
        crops_run=run,
        agreeing=agreeing,
        time_cap=time_cap,
        paper_example_grid=conv7_size(config, *PAPER_EXAMPLE),
        fcn_scores=outputs.tensors["score_fr"],
    )
