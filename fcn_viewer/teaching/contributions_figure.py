"""A slide of what each skip adds (matplotlib Agg, no Qt), for `fcn-viewer figure --contributions`: the additive
maps on one diverging scale, where each skip flipped the class, and the mask with each skip switched off."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from fcn_viewer.atomic import atomic_output
from fcn_viewer.classes import Color
from fcn_viewer.render import colorize
from fcn_viewer.teaching.compare import dimmed_level
from fcn_viewer.teaching.contributions import (
    FLIP_COLORS,
    NEGATIVE_COLOR,
    POSITIVE_COLOR,
    SKIP_TITLES,
    TERM_TITLES,
    Contributions,
    flip_picture,
    shared_limit,
    skip_flips,
    skip_variants,
)
from fcn_viewer.teaching.figure import FIGURE_FORMATS, LEGEND_PT, NOTE_PT, PANEL_PT, PNG_DPI, SLIDE_INCHES, TITLE_PT
from fcn_viewer.teaching.ground_truth import load_truth, percent
from fcn_viewer.teaching.image_analysis import GroundTruth
from fcn_viewer.weights.meta import ModelMeta

DIVERGING = LinearSegmentedColormap.from_list(
    "contributions", [tuple(NEGATIVE_COLOR / 255), (1.0, 1.0, 1.0), tuple(POSITIVE_COLOR / 255)])


def class_phrase(class_index: int | None, classes: Sequence[str]) -> str:
    return "the predicted class at each pixel" if class_index is None else f"class “{classes[class_index]}”"


def build_contributions_slide(
    image: np.ndarray,
    contributions: Contributions,
    meta: ModelMeta,
    palette: Sequence[Color],
    title: str,
    class_index: int | None = None,
    label: np.ndarray | None = None,
    ground_truth: GroundTruth | None = None,
) -> Figure:
    """Top: the photo and each term's map for one class (shared scale, zero white). Bottom: the mask, the pixels
    each skip flipped with counts, and the mask with each skip switched off (scored when there is a label)."""
    terms = list(contributions.terms)
    skips = contributions.skips
    columns = max(len(terms) + 1, len(skips) + 2)
    figure = Figure(figsize=SLIDE_INCHES, layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(f"{title}\nlogits = " + " + ".join(TERM_TITLES[t] for t in terms) +
                    f", for {class_phrase(class_index, meta.classes)}", fontsize=TITLE_PT - 6, fontweight="bold")
    grid = figure.add_gridspec(3, columns, height_ratios=(1, 1, 0.14))

    def axes_at(row: int, column: int, heading: str):  # type: ignore[no-untyped-def]
        axes = figure.add_subplot(grid[row, column])
        axes.set_axis_off()
        axes.set_title(heading, fontsize=PANEL_PT if row == 0 else PANEL_PT - 3)
        return axes

    height, width = image.shape[:2]
    axes_at(0, 0, f"photo\n3×{height}×{width}").imshow(image)
    maps = contributions.class_maps(class_index)
    limit = shared_limit(maps)
    shown = None
    for column, name in enumerate(terms, start=1):
        values = maps[name]
        shown = axes_at(0, column, f"{TERM_TITLES[name]}\nmean {values.mean():+.2f}").imshow(
            values, cmap=DIVERGING, vmin=-limit, vmax=limit, interpolation="nearest")
    if shown is not None:
        bar = figure.colorbar(shown, ax=figure.axes[1 : len(terms) + 1], location="right", shrink=0.85)
        bar.ax.tick_params(labelsize=NOTE_PT)
        bar.set_label("logit (0 = white)", fontsize=NOTE_PT)

    gt = ground_truth
    variants = skip_variants(contributions, label, gt.num_classes if gt else 0, gt.ignore_index if gt else 255,
                             gt.tolerance if gt else 2.0)

    def scored(variant, first: str) -> str:  # type: ignore[no-untyped-def]
        if variant.truth is None:
            return first
        t = variant.truth
        return f"{first}\nacc {percent(t.pixel_accuracy)} · mIoU {percent(t.mean_iou)}\nBF {percent(t.boundary_f1)}"

    axes_at(1, 0, f"FCN-{contributions.stage} mask\n{scored(variants[0], 'all skips on')}").imshow(
        colorize(variants[0].mask, palette), interpolation="nearest")
    if skips:
        flips = skip_flips(contributions)
        flip_axes = axes_at(1, 1, "where adding each skip\nflipped the class\n(colours and counts below)\n")
        flip_axes.imshow(flip_picture(flips, dimmed_level(image)), interpolation="nearest")
        handles = [Patch(facecolor=(FLIP_COLORS[name][0] / 255, FLIP_COLORS[name][1] / 255, FLIP_COLORS[name][2] / 255),
                         edgecolor="black",
                         label=f"{SKIP_TITLES[name]}: {change.count:,} px, "
                               f"{change.near_count / change.count if change.count else 0:.0%} near edges")
                   for name, change in flips.items()]
        flip_axes.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02), fontsize=NOTE_PT - 2,
                         frameon=False)
        singles = [v for v in variants if len(v.without) == 1]
        for column, variant in enumerate(singles, start=2):
            axes_at(1, column, f"{variant.title}\n{scored(variant, f'{variant.changed:,} px change')}").imshow(
                colorize(variant.mask, palette), interpolation="nearest")
    else:
        note = axes_at(1, 1, "no skips")
        note.text(0.5, 0.5, "FCN-32s fuses no skips:\nits logits are the conv7 term alone", ha="center",
                  va="center", fontsize=NOTE_PT, transform=note.transAxes)
    legend = figure.add_subplot(grid[2, :])
    legend.set_axis_off()
    patches = [Patch(facecolor=(r / 255, g / 255, b / 255), edgecolor="black", label=name)
               for (r, g, b), name in zip(palette, meta.classes, strict=False)]
    legend.legend(handles=patches, loc="center", ncol=min(len(patches), 7), fontsize=LEGEND_PT, frameon=False,
                  handlelength=1.2, columnspacing=1.4)
    return figure


def save_contributions_slide(
    target: Path,
    image: np.ndarray,
    contributions: Contributions,
    meta: ModelMeta,
    palette: Sequence[Color],
    title: str,
    class_index: int | None = None,
    ground_truth: GroundTruth | None = None,
) -> Path:
    """Writes :func:`build_contributions_slide` to ``target`` (.png, .svg or .pdf) atomically."""
    kind = FIGURE_FORMATS.get(target.suffix.lower())
    if kind is None:
        raise ValueError(f"{target}: unknown figure format; use .png, .svg or .pdf")
    label = load_truth(ground_truth.path, image.shape[:2]) if ground_truth is not None else None
    figure = build_contributions_slide(image, contributions, meta, palette, title, class_index, label, ground_truth)
    with atomic_output(target) as handle, rc_context({"svg.fonttype": "none", "pdf.fonttype": 42}):
        figure.savefig(handle, format=kind, dpi=PNG_DPI)
    return target
