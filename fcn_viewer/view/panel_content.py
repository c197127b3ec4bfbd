"""What each panel shows, computed once per result and drawn from cached numpy arrays (no Qt here)."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from fcn_viewer.classes import Color
from fcn_viewer.inference import Segmentation
from fcn_viewer.model.outputs import STAGE_SCORE_MAPS, STAGE_STRIDES
from fcn_viewer.model.upsample import is_bilinear
from fcn_viewer.render import (
    blend,
    class_map,
    class_probability,
    colorblind_palette,
    colorize,
    heatmap,
    outline,
    overlays,
    score_summary,
    top_classes,
)
from fcn_viewer.view.options import DisplayOptions
from fcn_viewer.weights.meta import ModelMeta

PanelKind = Literal["input", "scores", "mask"]
HIDDEN_CELL: Color = (40, 40, 40)
OUTLINE_WIDTH = 3
SCORE_MAP_LABELS = {"32s": "conv7 scores", "16s": "pool4 fused", "8s": "pool3 fused"}
SCORE_MAP_TIPS = {
    "32s": "score_fr: 1×1 class scores on conv7, one cell per 32×32 input pixels",
    "16s": "fuse_pool4 = upscore2(conv7 scores) + score_pool4, cropped to align; one cell per 16×16 pixels",
    "8s": "fuse_pool3 = upscore_pool4(fuse_pool4) + score_pool3, cropped to align; one cell per 8×8 pixels",
}


@dataclass(frozen=True)
class PanelSpec:
    """One panel of the grid: the input, a stage's coarse score map, or a stage's full-resolution mask."""

    key: str
    kind: PanelKind
    stage: str | None = None

    @property
    def stride(self) -> int | None:
        return STAGE_STRIDES[self.stage] if self.stage else None


ALL_PANELS: tuple[PanelSpec, ...] = (
    PanelSpec("input", "input"),
    *(PanelSpec(f"scores-{stage}", "scores", stage) for stage in STAGE_STRIDES),
    *(PanelSpec(f"mask-{stage}", "mask", stage) for stage in STAGE_STRIDES),
)
PANELS_BY_KEY = {panel.key: panel for panel in ALL_PANELS}


@dataclass(frozen=True)
class StageArrays:
    """A stage's C×h×w scores with its argmax classes, and its max softmax confidence and log-sum-exp, computed once:
    when made, or (``summarised=False``) on first use: a full-resolution stage's take milliseconds, and a result is
    drawn needing only its finest stage's."""

    scores: np.ndarray
    classes: np.ndarray
    made_summary: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_scores(cls, scores: np.ndarray, summarised: bool = True) -> StageArrays:
        if not summarised:
            return cls(scores, class_map(scores))
        classes, confidence, log_partition = score_summary(scores)
        return cls(scores, classes, (confidence, log_partition))

    @functools.cached_property
    def _summary(self) -> tuple[np.ndarray, np.ndarray]:
        """(confidence, log-sum-exp): the ones made with the classes, else made now (in the confidence display
        modes and on the first hover, the coarser masks' are made on the GUI thread, on one core: about 7 ms each
        for 11 classes at 480×360)."""
        if self.made_summary is not None:
            return self.made_summary
        _, confidence, log_partition = score_summary(self.scores)
        return confidence, log_partition

    @property
    def confidence(self) -> np.ndarray:
        return self._summary[0]

    @property
    def log_partition(self) -> np.ndarray:
        return self._summary[1]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.scores.shape)


@dataclass(frozen=True)
class ViewResult:
    """An opened image and, when a model was loaded, its segmentation with every panel's arrays."""

    path: Path
    image: np.ndarray
    meta: ModelMeta | None = None
    segmentation: Segmentation | None = None
    score_maps: dict[str, StageArrays] | None = None
    masks: dict[str, StageArrays] | None = None
    elapsed_ms: float = 0.0
    device: str = ""
    precision: str = ""  # which precision ran and why, e.g. "bf16 (auto: 99.80 % of pixels as in fp32; …)"
    decode_ms: float = 0.0  # reading the image file, before the net (benchmarks/bench_gui.py prints the phases)
    summary_ms: float = 0.0  # the panels' arrays (argmax, confidence), after the net

    @classmethod
    def build(
        cls, path: Path, segmentation: Segmentation, meta: ModelMeta, elapsed_ms: float, device: str,
        precision: str = "", decode_ms: float = 0.0,
    ) -> ViewResult:
        """Summarises every stage of a segmentation for drawing: argmax classes, and the confidence and log-sum-exp
        of the score maps and of the finest mask (the coarser masks' when first needed, see :class:`StageArrays`).

        The panels show the picture the network saw: a downscaled copy when the image was too large.
        """
        started = time.perf_counter()
        arrays = segmentation.arrays()
        stages = segmentation.stages
        score_maps = {stage: StageArrays.from_scores(arrays[STAGE_SCORE_MAPS[stage]]) for stage in stages}
        # The finest mask's confidence is drawn at once (the domain note); the others' wait for a hover or a mode.
        masks = {stage: StageArrays.from_scores(arrays[f"logits_{stage}"], summarised=stage == stages[-1])
                 for stage in stages}
        summary_ms = 1000 * (time.perf_counter() - started)
        result = cls(path, segmentation.image, meta, segmentation, score_maps, masks, elapsed_ms, device, precision,
                     decode_ms, summary_ms)
        result.class_shares()  # made here, on the worker, not while drawing
        result.fixed_bilinear_layers()
        return result

    @property
    def notes(self) -> tuple[str, ...]:
        """What the segmenter changed to run the image (downscaled, fell back to the CPU, ...)."""
        return self.segmentation.notes if self.segmentation is not None else ()

    @property
    def stages(self) -> tuple[str, ...]:
        return self.segmentation.stages if self.segmentation is not None else ()

    @property
    def final_stage(self) -> str | None:
        return self.stages[-1] if self.stages else None

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.meta.classes if self.meta is not None else ()

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the image."""
        return self.image.shape[0], self.image.shape[1]

    def panels(self) -> list[PanelSpec]:
        """The panels this result fills: the input, then the score maps and masks of the model's stages."""
        return [panel for panel in ALL_PANELS if panel.stage is None or panel.stage in self.stages]

    def arrays(self, panel: PanelSpec) -> StageArrays:
        maps = self.score_maps if panel.kind == "scores" else self.masks
        if maps is None or panel.stage not in maps:
            raise KeyError(f"this result has no {panel.key} panel")
        return maps[panel.stage]

    def title(self, panel: PanelSpec, short: bool = False) -> str:
        """E.g. ``conv7 scores · stride 32 · 21×16×16``: stage, stride (left out when ``short``), tensor shape."""
        if panel.kind == "input":
            height, width = self.image_size
            return f"input · 3×{height}×{width}"
        shape = "×".join(str(n) for n in self.arrays(panel).shape)
        label = SCORE_MAP_LABELS[panel.stage] if panel.kind == "scores" else f"{panel.stage} mask"  # type: ignore[index]
        return f"{label} · {shape}" if short else f"{label} · stride {panel.stride} · {shape}"

    def tooltip(self, panel: PanelSpec) -> str:
        if panel.kind == "input":
            return str(self.path)
        if panel.kind == "scores":
            return SCORE_MAP_TIPS[panel.stage]  # type: ignore[index]
        assert self.segmentation is not None and panel.stage is not None
        layer = self.segmentation.outputs.upsampling.get(panel.stage, "")
        if layer == "bilinear":
            how = f"a fixed bilinear kernel (this net has no ×{panel.stride} layer of its own)"
        elif self._fixed_bilinear(layer):
            how = f"{layer} (a deconvolution fixed at the bilinear kernel, not learned)"
        else:
            how = f"{layer} (learned deconvolution)"
        return f"logits_{panel.stage}: {SCORE_MAP_LABELS[panel.stage]} upsampled ×{panel.stride} by {how}, then cropped"

    def class_shares(self) -> np.ndarray:
        """The fraction of the image each class covers in the finest prediction."""
        return self._class_shares

    @functools.cached_property
    def _class_shares(self) -> np.ndarray:
        if self.masks is None or self.final_stage is None:
            return np.zeros(0)
        classes = self.masks[self.final_stage].classes
        return np.bincount(classes.ravel(), minlength=len(self.class_names)) / classes.size

    def summary_lines(self) -> list[str]:
        """Model, device, timing, precision, the alignment crops and how each stage was upsampled."""
        height, width = self.image_size
        lines = [f"{self.path.name} · {width}×{height}"]
        if self.segmentation is None or self.meta is None:
            return [*lines, "no model loaded"]
        outputs = self.segmentation.outputs
        ran = f"{self.device} · {self.elapsed_ms:.0f} ms" + (f" · {self.precision}" if self.precision else "")
        lines += [self.meta.title, ran, *self.notes]
        lines += ["", "crops (source → result @ offset):"]
        lines += [f"  {crop.source} → {crop.result} @ {crop.offset}" for crop in outputs.crops]
        lines += ["", "upsampling:"]
        for stage in self.stages:
            layer = outputs.upsampling.get(stage, "?")
            lines.append(f"  {stage}: {layer}" + (" (fixed bilinear)" if self._fixed_bilinear(layer) else ""))
        return lines

    def _fixed_bilinear(self, layer: str) -> bool:
        """Whether the net's deconvolution ``layer`` is still the bilinear kernel: fixed in training, not learned."""
        return layer in self.fixed_bilinear_layers()

    def fixed_bilinear_layers(self) -> frozenset[str]:
        """The net's deconvolutions that still hold the bilinear kernel (checked once per result)."""
        return self._fixed_layers

    @functools.cached_property
    def _fixed_layers(self) -> frozenset[str]:
        layers = self.segmentation.outputs.deconvolutions if self.segmentation is not None else {}
        return frozenset(name for name, layer in layers.items() if is_bilinear(layer.weight))

    def readout(self, x: float, y: float) -> str | None:
        """The class and confidence of every stage at image point (x, y), and the finest stage's top 3."""
        row, column = math.floor(y), math.floor(x)
        height, width = self.image_size
        if not (0 <= row < height and 0 <= column < width):
            return None
        red, green, blue = (int(v) for v in self.image[row, column])
        parts = [f"x {column}, y {row}  RGB {red},{green},{blue}"]
        if self.masks is None or self.final_stage is None:
            return parts[0]
        names = self.class_names
        for stage in self.stages:
            arrays = self.masks[stage]
            parts.append(f"{stage}: {names[arrays.classes[row, column]]} {arrays.confidence[row, column]:.0%}")
        best = top_classes(self.masks[self.final_stage].scores[:, row, column], 3)
        parts.append(f"top-3 {self.final_stage}: " + ", ".join(f"{names[i]} {p:.0%}" for i, p in best))
        return "   │   ".join(parts)


def resolve_palette(name: str, meta: ModelMeta) -> tuple[Color, ...]:
    """The model's own class colours, or colour-blind-safe ones for as many classes."""
    return colorblind_palette(len(meta.classes)) if name == "colorblind" else meta.palette


def render_panel(
    result: ViewResult, panel: PanelSpec, options: DisplayOptions, palette: Sequence[Color]
) -> np.ndarray:
    """The RGB pixels of one panel: score maps at their own resolution, masks blended over the photo."""
    if panel.kind == "input":
        return result.image
    arrays = result.arrays(panel)
    if _plain_overlay(panel, options):
        return overlays(result.image, [arrays.classes], palette, options.opacity, _visible_lut(options))[0]
    colors = _colors(arrays, options, palette)
    if not options.hidden and not options.outline:  # every pixel alike: a scalar blend is ~3× faster
        return colors if panel.kind == "scores" else blend(result.image, colors, options.opacity)
    shown = np.take(_visible_lut(options), arrays.classes)
    if panel.kind == "scores":
        return np.where(shown[:, :, None], colors, np.asarray(HIDDEN_CELL, dtype=np.uint8))
    alpha = shown.astype(np.float32) * options.opacity
    if options.outline:  # full strength whatever the opacity: a class-coloured line with a contrasting edge
        edges, edge_colors = outline(arrays.classes, palette, OUTLINE_WIDTH)
        edges &= shown
        colors = np.where(edges[:, :, None], edge_colors, colors)
        alpha[edges] = 1.0
    return blend(result.image, colors, alpha)


def render_panels(
    result: ViewResult, panels: Sequence[PanelSpec], options: DisplayOptions, palette: Sequence[Color]
) -> list[np.ndarray]:
    """:func:`render_panel` of each of ``panels``; the masks' class overlays in one go (with every class shown, the
    photo's share of the blend computed once for all of them: :func:`~fcn_viewer.render.overlays`)."""
    plain = [panel for panel in panels if _plain_overlay(panel, options)]
    masks = [result.arrays(panel).classes for panel in plain]
    pictures = overlays(result.image, masks, palette, options.opacity, _visible_lut(options)) if plain else []
    shared = dict(zip(plain, pictures, strict=True))
    return [shared[panel] if panel in shared else render_panel(result, panel, options, palette) for panel in panels]


def _plain_overlay(panel: PanelSpec, options: DisplayOptions) -> bool:
    """Whether ``panel`` is a mask whose classes show in their colours (or not at all), without outlines."""
    return panel.kind == "mask" and options.mode == "classes" and not options.outline


def _visible_lut(options: DisplayOptions) -> np.ndarray:
    lut = np.ones(256, dtype=bool)
    lut[list(options.hidden)] = False
    return lut


def _colors(arrays: StageArrays, options: DisplayOptions, palette: Sequence[Color]) -> np.ndarray:
    if options.mode == "confidence":
        return heatmap(arrays.confidence)
    if options.mode == "class-probability":
        return heatmap(class_probability(arrays.scores, arrays.log_partition, options.chosen_class))
    return colorize(arrays.classes, palette)
