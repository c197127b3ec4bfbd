"""A slide-ready figure of one image's FCN stages (matplotlib Agg, no Qt), for `fcn-viewer figure` and the viewer."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from fcn_viewer.atomic import atomic_output
from fcn_viewer.classes import Color
from fcn_viewer.inference import Segmentation
from fcn_viewer.model.outputs import STAGE_SCORE_MAPS, STAGE_STRIDES
from fcn_viewer.render import colorize, mask_dtype
from fcn_viewer.teaching.ground_truth import label_picture, percent
from fcn_viewer.teaching.image_analysis import GroundTruth, ImageAnalysis, analyse
from fcn_viewer.weights.meta import ModelMeta

FIGURE_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
SLIDE_INCHES = (16.0, 9.0)
PNG_DPI = 120  # 1920×1080 pixels
TITLE_PT, PANEL_PT, LEGEND_PT, NOTE_PT = 26, 18, 16, 14
SCORE_MAP_NAMES = {"32s": "conv7 scores", "16s": "pool4-fused", "8s": "pool3-fused"}


def shape_text(shape: Sequence[int]) -> str:
    """A picture's or tensor's size as the viewer writes it everywhere: channels×rows×columns, e.g. ``3×360×480``."""
    return "×".join(str(n) for n in shape)


def stage_analysis(image_path: Path, segmentation: Segmentation, ground_truth: GroundTruth | None) -> ImageAnalysis:
    """The one net's stage masks, scored against the label when there is one."""
    masks = {stage: segmentation.mask(stage) for stage in segmentation.stages}
    titles = {stage: f"{stage} stage" for stage in masks}
    return analyse(image_path, "stages", masks, titles, 0.0, ground_truth)


def build_slide(
    segmentation: Segmentation,
    meta: ModelMeta,
    palette: Sequence[Color],
    title: str,
    analysis: ImageAnalysis,
    ground_truth: GroundTruth | None = None,
) -> Figure:
    """Photo and ground truth on the left; per stage its coarse score map above its mask, metrics under the mask;
    the class legend below; large type for a projector."""
    stages = segmentation.stages
    columns = len(stages) + 1
    figure = Figure(figsize=SLIDE_INCHES, layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(title, fontsize=TITLE_PT, fontweight="bold")
    grid = figure.add_gridspec(3, columns, height_ratios=(1, 1, 0.16))
    arrays = segmentation.arrays()

    def panel(row: int, column: int, pixels: np.ndarray | None, heading: str, note: str = "") -> None:
        axes = figure.add_subplot(grid[row, column])
        axes.set_axis_off()
        axes.set_title(heading, fontsize=PANEL_PT)
        if pixels is not None:
            axes.imshow(pixels, interpolation="nearest")
        else:
            axes.text(0.5, 0.5, textwrap.fill(note, 36), ha="center", va="center", fontsize=NOTE_PT,
                      transform=axes.transAxes)

    image = segmentation.image
    height, width = segmentation.image_size
    panel(0, 0, image, f"photo\n{shape_text((3, height, width))}")
    if analysis.label is not None and ground_truth is not None:
        truth = label_picture(analysis.label, palette, ground_truth.num_classes, ground_truth.ignore_index)
        panel(1, 0, truth, "ground truth\nvoid in black")
    elif analysis.truth_error is not None:
        panel(1, 0, None, "ground truth", analysis.truth_error)
    for column, stage in enumerate(stages, start=1):
        scores = arrays[STAGE_SCORE_MAPS[stage]]
        panel(0, column, colorize(scores.argmax(axis=0).astype(mask_dtype(scores.shape[0])), palette),
              f"{SCORE_MAP_NAMES[stage]}\nstride {STAGE_STRIDES[stage]} · {shape_text(scores.shape)}")
        name = f"FCN-{stage}" if stage == stages[-1] else f"{stage} stage"
        scored = analysis.truth.get(stage)
        heading = (
            f"{name} · mIoU {percent(scored.mean_iou)}\nacc {percent(scored.pixel_accuracy)} · "
            f"BF {percent(scored.boundary_f1)}"
            if scored is not None
            else f"{name} mask\n{shape_text(arrays[f'logits_{stage}'].shape)}"
        )
        panel(1, column, colorize(analysis.masks[stage], palette), heading)
    legend = figure.add_subplot(grid[2, :])
    legend.set_axis_off()
    handles = [Patch(facecolor=(r / 255, g / 255, b / 255), edgecolor="black", label=name)
               for (r, g, b), name in zip(palette, meta.classes, strict=False)]  # palettes may run longer
    legend.legend(handles=handles, loc="center", ncol=min(len(handles), 7), fontsize=LEGEND_PT, frameon=False,
                  handlelength=1.2, columnspacing=1.4)
    return figure


def save_slide(
    target: Path,
    image_path: Path,
    segmentation: Segmentation,
    meta: ModelMeta,
    palette: Sequence[Color],
    title: str,
    ground_truth: GroundTruth | None = None,
) -> Path:
    """Writes the slide figure to ``target`` (.png, .svg or .pdf, chosen by the suffix) atomically; in SVG and
    PDF the text stays text, so it can be edited on the slide."""
    kind = FIGURE_FORMATS.get(target.suffix.lower())
    if kind is None:
        raise ValueError(f"{target}: unknown figure format; use .png, .svg or .pdf")
    analysis = stage_analysis(image_path, segmentation, ground_truth)
    figure = build_slide(segmentation, meta, palette, title, analysis, ground_truth)
    with atomic_output(target) as handle, rc_context({"svg.fonttype": "none", "pdf.fonttype": 42}):
        figure.savefig(handle, format=kind, dpi=PNG_DPI)
    return target
