"""Every Step-Through step as a numbered 1920×1080 slide and an animated GIF of them, for `fcn-viewer figure --steps`
(matplotlib Agg, no Qt): take-aways of the fusion path, each class's score on the one scale held across the steps."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from fcn_viewer.classes import Color
from fcn_viewer.model.outputs import FCNOutputs
from fcn_viewer.render import HEAT_LUT, save_rgb_png
from fcn_viewer.teaching.figure import LEGEND_PT, NOTE_PT, PANEL_PT, PNG_DPI, SLIDE_INCHES, TITLE_PT
from fcn_viewer.teaching.gif import GifWriter
from fcn_viewer.teaching.step_through import (
    FusionStep,
    ScoreScale,
    chapter_of,
    class_scale,
    fusion_steps,
    step_classes,
    step_pixels,
)

HEAT = ListedColormap(HEAT_LUT / 255.0, name="fcn-heat")
GIF_NAME = "steps.gif"
GIF_FRAME_MS = 3000
CROP_COLOR = (1.0, 0.84, 0.0)


def step_file_name(number: int) -> str:
    """``step-01.png`` for step 1: numbered so the files sort in the path's order."""
    return f"step-{number:02d}.png"


def step_file_names(count: int) -> list[str]:
    """The files ``count`` steps write: one PNG per step, then the GIF."""
    return [step_file_name(number) for number in range(1, count + 1)] + [GIF_NAME]


def busiest_class(outputs: FCNOutputs) -> int:
    """The class the net predicts on the most pixels of the image: the default class whose score the slides show."""
    logits = outputs.numpy(0)[f"logits_{outputs.final_stage}"]
    return int(np.bincount(logits.argmax(0).ravel(), minlength=logits.shape[0]).argmax())


@dataclass(frozen=True)
class StepSlides:
    """What ``figure --steps`` wrote: the numbered PNGs, the GIF, and the class scale every slide used."""

    pngs: list[Path]
    gif: Path
    scale: ScoreScale


def build_step_slide(
    steps: Sequence[FusionStep],
    index: int,
    arrays: dict[str, np.ndarray],
    image: np.ndarray,
    palette: Sequence[Color],
    classes: Sequence[str],
    scale: ScoreScale,
    title: str,
    opacity: float = 0.6,
) -> Figure:
    """Step ``index`` as a slide: its chapter and heading; the photo, the step's argmax classes and the chosen class's
    score (on ``scale``, held across every step, with its colour bar), the crop window marked on both maps; the
    caption and the classes on the map below."""
    step = steps[index]
    scores = arrays[step.tensor]
    figure = Figure(figsize=SLIDE_INCHES, layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(f"{title}\nStep {index + 1} of {len(steps)} · {chapter_of(steps, index)}\n{step.heading}",
                    fontsize=TITLE_PT - 4, fontweight="bold")
    grid = figure.add_gridspec(4, 3, height_ratios=(1, 0.035, 0.2, 0.1))
    argmax = step_classes(scores)
    height, width = step.shape[1:]
    kind = "mask over the photo" if step.kind == "mask" else "argmax classes"
    class_name = classes[scale.class_index]
    panels = (
        (image, f"photo · 3×{image.shape[0]}×{image.shape[1]}", None),
        (step_pixels(step, scores, image, palette, "classes", opacity=opacity, classes=argmax),
         f"{kind} · {height}×{width}", step.crop),
        (step_pixels(step, scores, image, palette, "class-score", scale.class_index, scale=scale),
         f"score of {class_name}", step.crop),
    )
    for column, (pixels, heading, crop) in enumerate(panels):
        axes = figure.add_subplot(grid[0, column])
        axes.set_axis_off()
        axes.set_title(heading, fontsize=PANEL_PT)
        axes.imshow(pixels, interpolation="nearest" if column else "antialiased")
        if crop is not None:
            axes.add_patch(Rectangle((crop.offset - 0.5, crop.offset - 0.5), crop.size[1], crop.size[0], fill=False,
                                     edgecolor=CROP_COLOR, linewidth=3))
    bar = figure.colorbar(ScalarMappable(Normalize(scale.low, scale.high), HEAT), cax=figure.add_subplot(grid[1, 2]),
                          orientation="horizontal")
    bar.set_label(f"score of {class_name}: one scale on every step", fontsize=NOTE_PT)
    bar.ax.tick_params(labelsize=NOTE_PT)
    words = figure.add_subplot(grid[2, :])
    words.set_axis_off()
    words.text(0.5, 0.5, textwrap.fill(step.caption, 120), ha="center", va="center", fontsize=NOTE_PT + 2,
               transform=words.transAxes)
    legend = figure.add_subplot(grid[3, :])
    legend.set_axis_off()
    present = np.unique(argmax)
    handles = [Patch(facecolor=tuple(c / 255 for c in palette[i]), edgecolor="black", label=classes[i])
               for i in present if i < len(classes) and i < len(palette)]
    if handles:
        legend.legend(handles=handles, loc="center", ncol=min(len(handles), 8), fontsize=LEGEND_PT, frameon=False,
                      handlelength=1.2, columnspacing=1.4)
    return figure


def slide_pixels(figure: Figure) -> np.ndarray:
    """The figure as 1920×1080 (:data:`SLIDE_INCHES` at :data:`PNG_DPI`) RGB pixels."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="raw", dpi=PNG_DPI)
    width, height = (round(inches * PNG_DPI) for inches in figure.get_size_inches())
    return np.frombuffer(buffer.getvalue(), dtype=np.uint8).reshape(height, width, 4)[..., :3].copy()


def save_step_slides(
    folder: Path,
    outputs: FCNOutputs,
    image: np.ndarray,
    palette: Sequence[Color],
    classes: Sequence[str],
    title: str,
    class_index: int | None = None,
) -> StepSlides:
    """Writes every step of the fusion path as ``step-NN.png`` into ``folder`` and all of them, in order, as
    ``steps.gif``; the slides show ``class_index``'s score (default: :func:`busiest_class`) on one held scale."""
    steps = fusion_steps(outputs)
    arrays = outputs.numpy(0)
    chosen = busiest_class(outputs) if class_index is None else class_index
    scale = class_scale(steps, arrays, chosen)
    pngs = []
    with GifWriter(folder / GIF_NAME, GIF_FRAME_MS) as gif:
        for index in range(len(steps)):
            figure = build_step_slide(steps, index, arrays, image, palette, classes, scale, title)
            pixels = slide_pixels(figure)
            target = folder / step_file_name(index + 1)
            save_rgb_png(target, pixels)
            gif.add(pixels)
            pngs.append(target)
    return StepSlides(pngs, folder / GIF_NAME, scale)
