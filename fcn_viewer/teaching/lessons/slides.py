"""The three lessons as 1920×1080 slides (matplotlib Agg, no Qt), for `fcn-viewer figure --lesson` and the viewer."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from fcn_viewer.atomic import atomic_output
from fcn_viewer.classes import Color
from fcn_viewer.render import colorize
from fcn_viewer.teaching.figure import FIGURE_FORMATS, NOTE_PT, PANEL_PT, PNG_DPI, SLIDE_INCHES, TITLE_PT
from fcn_viewer.teaching.ground_truth import percent
from fcn_viewer.teaching.lessons.classifier import CellComparison, SlidingComparison
from fcn_viewer.teaching.lessons.commute import CommuteLesson
from fcn_viewer.teaching.lessons.upsampling import KERNELS_SHOWN, UpsamplingLesson
from fcn_viewer.weights.meta import Preprocessing

LEARNED_COLOR, BILINEAR_COLOR, CROP_COLOR, CONTEXT_COLOR = "#d55e00", "#0072b2", "#e69f00", "#009e73"  # Okabe–Ito
TOP_CLASSES = 6


def _slide(title: str) -> Figure:
    figure = Figure(figsize=SLIDE_INCHES, layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(title, fontsize=TITLE_PT - 4, fontweight="bold")
    return figure


def _picture(axes: Axes, pixels: np.ndarray, heading: str, **options: object) -> None:
    axes.set_axis_off()
    axes.set_title(heading, fontsize=PANEL_PT - 2)
    axes.imshow(pixels, interpolation="nearest", **options)  # type: ignore[arg-type]


def _note(axes: Axes, lines: Sequence[str], width: int = 60) -> None:
    axes.set_axis_off()
    text = "\n".join(textwrap.fill(line, width) for line in lines)
    note = axes.text(0.0, 1.0, text, ha="left", va="top", fontsize=NOTE_PT, transform=axes.transAxes, linespacing=1.4)
    note.set_in_layout(False)  # wrapped to fit by ``width``: the layout keeps the panels' sizes


def _bars(axes: Axes, labels: Sequence[str], values: Sequence[float], heading: str, unit: str, log: bool) -> None:
    bars = axes.bar(labels, values, color=[BILINEAR_COLOR, LEARNED_COLOR][: len(values)])
    axes.set_title(heading, fontsize=PANEL_PT - 2)
    if log:
        axes.set_yscale("log")
    axes.bar_label(bars, [f"{v:.3g} {unit}" for v in values], fontsize=NOTE_PT)
    axes.tick_params(labelsize=NOTE_PT)
    axes.margins(y=0.25)


def mean_pixel(preprocessing: Preprocessing) -> np.ndarray:
    """The RGB uint8 colour the net's input is zero at: what its padding (and a crop's) stands for."""
    values = np.array(preprocessing.mean) / preprocessing.scale
    rgb = values[::-1] if preprocessing.channel_order == "BGR" else values
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def crop_picture(image: np.ndarray, top: int, left: int, size: int, fill: np.ndarray) -> np.ndarray:
    """The ``size``-px square of ``image`` at (``top``, ``left``), ``fill`` where it leaves the image."""
    window = np.empty((size, size, 3), dtype=np.uint8)
    window[:] = fill
    height, width = image.shape[:2]
    y0, y1, x0, x1 = max(top, 0), min(top + size, height), max(left, 0), min(left + size, width)
    if y1 > y0 and x1 > x0:
        window[y0 - top : y1 - top, x0 - left : x1 - left] = image[y0:y1, x0:x1]
    return window


def classifier_slide(image: np.ndarray, cell: CellComparison, sliding: SlidingComparison, classes: Sequence[str],
                     preprocessing: Preprocessing, title: str) -> Figure:
    """The crop on the photo, the crop alone, which of its pool5 cells its padding reaches, the class scores three
    ways, and the whole-image FLOPs and seconds of one FCN pass against the crops."""
    figure = _slide(f"{title}\nFrom classifier to FCN: conv7 cell {cell.window.cell} and the whole image")
    grid = figure.add_gridspec(3, 4, height_ratios=(1, 0.85, 0.3))
    window = cell.window
    photo = figure.add_subplot(grid[0, 0:2])
    _picture(photo, image, f"the {window.size}-px crop (solid) and the {window.receptive_field}-px receptive field "
             "(dashed)")
    photo.add_patch(Rectangle((window.left - 0.5, window.top - 0.5), window.size, window.size, fill=False,
                              edgecolor=CROP_COLOR, linewidth=3))
    field = window.receptive_field
    photo.add_patch(Rectangle((window.left - window.margin - 0.5, window.top - window.margin - 0.5), field, field,
                              fill=False, edgecolor=CONTEXT_COLOR, linewidth=2, linestyle="--"))
    height, width = image.shape[:2]
    photo.set_xlim(min(0, window.left - window.margin) - 0.5, max(width, window.left + window.size + window.margin) - 0.5)
    photo.set_ylim(max(height, window.top + window.size + window.margin) - 0.5, min(0, window.top - window.margin) - 0.5)
    alone = crop_picture(image, window.top, window.left, window.size, mean_pixel(preprocessing))
    _picture(figure.add_subplot(grid[0, 2]), alone, "the crop alone: what one\nclassifier evaluation sees")
    cells = window.size // 32
    heat = figure.add_subplot(grid[0, 3])
    _picture(heat, cell.pool5_difference, f"its pool5 cells vs the FCN's:\n{window.untouched_cells()} of "
             f"{cells * cells} see no padding", cmap="magma", vmin=0.0, vmax=1.0)
    for (row, column), value in np.ndenumerate(cell.pool5_difference):
        heat.text(column, row, f"{value:.0%}", ha="center", va="center", fontsize=NOTE_PT - 4,
                  color="black" if value > 0.6 else "white")

    scores = figure.add_subplot(grid[1, 0])
    top = np.argsort(cell.fcn_scores)[::-1][:TOP_CLASSES]
    positions = np.arange(len(top))
    for shift, values, name, color in ((-0.27, cell.fcn_scores, "FCN cell", LEARNED_COLOR),
                                       (0.0, cell.crop_scores, "crop alone", CROP_COLOR),
                                       (0.27, cell.context_scores, f"crop + {window.context} px", CONTEXT_COLOR)):
        scores.bar(positions + shift, values[top], width=0.27, label=name, color=color)
    scores.set_xticks(positions, [classes[i] for i in top], rotation=30, fontsize=NOTE_PT - 2)
    scores.set_title("class scores of the cell", fontsize=PANEL_PT - 2)
    scores.legend(fontsize=NOTE_PT - 3)
    _bars(figure.add_subplot(grid[1, 1]), ["FCN pass", f"{sliding.crops} crops"],
          [sliding.flops_fcn / 1e9, sliding.flops_crops / 1e9], "GFLOPs (convolutions)", "G", log=True)
    extrapolated = " (extrapolated)" if sliding.extrapolated else ""
    _bars(figure.add_subplot(grid[1, 2]), ["FCN pass", f"{sliding.crops} crops"],
          [sliding.seconds_fcn, sliding.seconds_crops], f"seconds{extrapolated}", "s", log=True)
    rows, columns = sliding.grid
    paper_rows, paper_columns = sliding.paper_example_grid
    _note(figure.add_subplot(grid[1, 3]), [
        f"A sliding classifier needs one {sliding.crop_size}-px crop per conv7 cell: {rows}×{columns} = "
        f"{sliding.crops} crops for this {height}×{width} image, rows × columns ({paper_rows}×{paper_columns} for "
        "the paper's 500×500).",
        f"One FCN pass: {sliding.seconds_fcn:.3g} s; the crops one by one: {sliding.seconds_crops:.3g} s"
        + (f", extrapolated from {sliding.crops_run} run in {sliding.time_cap:g} s." if sliding.extrapolated else "."),
        f"Same class as the FCN's cell: {sliding.agreement:.0%} of {sliding.crops_run} crops.",
    ], width=33)
    sentence = cell.sentence(classes)
    _note(figure.add_subplot(grid[2, :]), [sentence[:1].upper() + sentence[1:]], width=140)
    return figure


def commute_slide(lesson: CommuteLesson, palette: Sequence[Color], title: str) -> Figure:
    """Both ways' class maps, their difference, and the bytes each keeps."""
    figure = _slide(f"{title}\nWhy scores are summed: classify(concat) = sum of scores, at a fraction of the memory")
    grid = figure.add_gridspec(2, 3, height_ratios=(1, 0.9))
    height, width = lesson.map_size
    summed = colorize(lesson.summed.argmax(0).numpy().astype(np.uint8), palette)
    joined = colorize(lesson.concatenated.argmax(0).numpy().astype(np.uint8), palette)
    _picture(figure.add_subplot(grid[0, 0]), summed, f"score, then sum (the net's way)\n{2 * lesson.score_channels} "
             f"score channels · {height}×{width}")
    channels = lesson.feature_channels
    _picture(figure.add_subplot(grid[0, 1]), joined, f"concatenate, then one 1×1 conv\n{channels['pool4']} + "
             f"{channels['conv7']} + 1 feature channels")
    difference = (lesson.summed - lesson.concatenated).abs().amax(0).numpy()
    axes = figure.add_subplot(grid[0, 2])
    _picture(axes, difference, f"|difference|: at most {lesson.max_abs_difference:.2g}\n"
             f"= {lesson.relative_difference:.1e} × the score range {lesson.score_range:.3g}", cmap="magma")
    _bars(figure.add_subplot(grid[1, 0]), ["summed", "concatenated"],
          [lesson.bytes_summed / 1e6, lesson.bytes_concatenated / 1e6], "memory for this image", "MB", log=True)
    _note(figure.add_subplot(grid[1, 1:]), [
        "score_pool4(pool4) + ×2(score_fr(conv7)) = [score_pool4 | score_fr] · [pool4 ; ×2 conv7]: the 1×1 convs and "
        "a per-channel ×2 are linear, so they commute; the crop that aligns the maps is the same both ways.",
        f"The ×2 of a constant is not constant at the map's border, so score_fr's bias rides on one more channel: "
        f"the ×2 of ones. Memory: {lesson.bytes_concatenated:,} bytes concatenated against "
        f"{lesson.bytes_summed:,} summed ({lesson.bytes_concatenated / lesson.bytes_summed:.0f}×).",
        f"Upsampling: {lesson.upsampling_note}.",
    ], width=80)
    return figure


def upsampling_slide(lesson: UpsamplingLesson, palette: Sequence[Color], title: str) -> Figure:
    """Each deconvolution's kernel beside the bilinear one, and the final mask both ways with the changed pixels."""
    figure = _slide(f"{title}\nLearned vs bilinear upsampling, recomputed from the stored scores (no new pass)")
    kernels = lesson.kernels
    grid = figure.add_gridspec(2, max(3 * len(kernels), 3), height_ratios=(0.5, 1))  # square kernels, 4:3 masks
    for index, kernel in enumerate(kernels):
        limit = float(np.abs(kernel.learned).max())
        size = kernel.learned.shape[-1]
        channels = kernel.learned.shape[0]
        role = "fixed" if kernel.fixed else "class→itself"
        apart = "the same: not learned" if kernel.fixed else f"{kernel.relative_difference:.0%} apart"
        for offset, (pixels, heading) in enumerate((
            (kernel.diagonal_mean(), f"{kernel.layer}\n×{kernel.factor}, {role}"),
            (kernel.bilinear_kernel(), f"bilinear {size}×{size}\n{apart}"),
            (kernel.tiles(), f"{channels}×{channels} pairs\n{kernel.off_diagonal_share:.0%} mixing"),
        )):
            axes = figure.add_subplot(grid[0, 3 * index + offset])
            _picture(axes, pixels, "", cmap="RdBu_r", vmin=-limit, vmax=limit)
            axes.set_title(heading, fontsize=NOTE_PT)
    bottom = grid[1, :].subgridspec(1, 3)
    height, width = lesson.learned_mask.shape
    for column, (name, mask) in enumerate((("learned", lesson.learned_mask), ("bilinear", lesson.bilinear_mask))):
        scored = lesson.truth.get(name) if lesson.truth is not None else None
        metrics = (f"acc {percent(scored.pixel_accuracy)} · mIoU {percent(scored.mean_iou)} · "
                   f"BF {percent(scored.boundary_f1)}" if scored is not None else f"{width}×{height}")
        _picture(figure.add_subplot(bottom[0, column]), colorize(mask.astype(np.uint8), palette),
                 f"FCN-{lesson.stage}, {KERNELS_SHOWN[name]}\n{metrics}")
    changed = np.where(lesson.changed[..., None], np.array([230, 159, 0], np.uint8), np.uint8(235))
    _picture(figure.add_subplot(bottom[0, 2]), changed.astype(np.uint8),
             f"changed pixels: {lesson.changed_pixels:,} ({lesson.changed_fraction:.1%})")
    return figure


def save_figure(figure: Figure, target: Path) -> Path:
    """Writes ``figure`` to ``target`` (.png, .svg or .pdf by its suffix) atomically, text kept as text."""
    kind = FIGURE_FORMATS.get(target.suffix.lower())
    if kind is None:
        raise ValueError(f"{target}: unknown figure format; use .png, .svg or .pdf")
    with atomic_output(target) as handle, rc_context({"svg.fonttype": "none", "pdf.fonttype": 42}):
        figure.savefig(handle, format=kind, dpi=PNG_DPI)
    return target
