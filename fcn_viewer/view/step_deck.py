"""The Step-Through's state without its widgets, shared by the tab and the presenter's slides (no Qt).

A :class:`StepDeck` holds the shown result's fusion steps, the step on screen, how tensors are drawn (argmax classes or
one class's score) and, per class, the one colour scale held across every step, so both views draw the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fcn_viewer.classes import Color
from fcn_viewer.teaching.step_through import (
    FusionStep,
    ScoreScale,
    StepDisplay,
    chapter_of,
    class_scale,
    fusion_steps,
    step_classes,
    step_pixels,
)
from fcn_viewer.view.panel_content import ViewResult


@dataclass(frozen=True)
class Slide:
    """What one step shows: its pictures, its place in the path, and its words."""

    number: int  # 1-based
    count: int
    step: FusionStep
    chapter: str
    classes: np.ndarray  # h×w×3: argmax colours (the mask step blended over the photo)
    score: np.ndarray  # h×w×3: the chosen class's score on its held scale
    scale: ScoreScale
    class_name: str

    @property
    def heading(self) -> str:
        return f"Step {self.number} of {self.count}:  {self.step.heading}"

    @property
    def scale_text(self) -> str:
        return self.scale.describe(self.class_name)


class StepDeck:
    """The steps of the shown result, the step on screen, the display and the chosen class, and the per-class
    colour scales (computed once per result and class)."""

    def __init__(self) -> None:
        self.result: ViewResult | None = None
        self.steps: list[FusionStep] = []
        self.index = 0
        self.display: StepDisplay = "classes"
        self.chosen_class = 0
        self.arrays: dict[str, np.ndarray] = {}
        self._classes: dict[str, np.ndarray] = {}  # argmax classes per tensor, as drawn
        self._scales: dict[int, ScoreScale] = {}

    @property
    def step(self) -> FusionStep | None:
        return self.steps[self.index] if self.steps else None

    @property
    def class_names(self) -> tuple[str, ...]:
        meta = self.result.meta if self.result is not None else None
        return tuple(meta.classes) if meta is not None else ()

    def load(self, result: ViewResult) -> None:
        """The steps of ``result`` (with a model); the step on screen stays when the path has the same steps."""
        assert result.segmentation is not None and result.meta is not None
        steps = fusion_steps(result.segmentation.outputs)
        same_path = [s.kind for s in steps] == [s.kind for s in self.steps]
        self.result, self.steps = result, steps
        self.arrays, self._classes, self._scales = result.segmentation.arrays(), {}, {}
        if not 0 <= self.chosen_class < len(result.meta.classes):
            self.chosen_class = 0
        self.index = self.index if same_path else 0

    def clear(self) -> None:
        self.result, self.steps, self.arrays, self._classes, self._scales = None, [], {}, {}, {}
        self.index = 0

    def go(self, index: int) -> bool:
        """Shows step ``index`` (clamped to the path); whether the step on screen changed."""
        if not self.steps:
            return False
        index = min(max(index, 0), len(self.steps) - 1)
        changed, self.index = index != self.index, index
        return changed

    def advance(self, delta: int) -> bool:
        return self.go(self.index + delta)

    def choose_class(self, index: int) -> None:
        if 0 <= index < len(self.class_names):
            self.chosen_class = index

    def cycle_class(self, delta: int) -> None:
        if self.class_names:
            self.chosen_class = (self.chosen_class + delta) % len(self.class_names)

    def set_display(self, display: StepDisplay) -> None:
        self.display = display

    def toggle_display(self) -> None:
        self.display = "class-score" if self.display == "classes" else "classes"

    def scale(self, class_index: int | None = None) -> ScoreScale:
        """The colour scale of ``class_index`` (default: the chosen class), the same on every step."""
        index = self.chosen_class if class_index is None else class_index
        if index not in self._scales:
            self._scales[index] = class_scale(self.steps, self.arrays, index)
        return self._scales[index]

    def scores(self) -> np.ndarray:
        """The C×h×w tensor of the step on screen."""
        step = self.step
        assert step is not None
        return self.arrays[step.tensor]

    def pixels(self, palette: Sequence[Color], opacity: float, display: StepDisplay | None = None) -> np.ndarray:
        """The picture of the step on screen in ``display`` (default: the deck's): its argmax colours, or the chosen
        class's score on the class's held scale."""
        step, result = self.step, self.result
        assert step is not None and result is not None
        display = display or self.display
        scores = self.scores()
        if display == "classes" and step.tensor not in self._classes:
            self._classes[step.tensor] = step_classes(scores)
        scale = self.scale() if display == "class-score" else None
        return step_pixels(step, scores, result.image, palette, display, self.chosen_class, opacity,
                           self._classes.get(step.tensor), scale)

    def caption(self) -> str:
        """The step's caption, and in the class-score display the class's held scale."""
        step = self.step
        assert step is not None
        if self.display != "class-score":
            return step.caption
        return f"{step.caption}  Showing the {self.scale().describe(self.class_names[self.chosen_class])}."

    def slide(self, palette: Sequence[Color], opacity: float) -> Slide:
        """The step on screen as a presenter's slide: both pictures, its chapter, the chosen class's held scale."""
        step = self.step
        assert step is not None
        return Slide(self.index + 1, len(self.steps), step, chapter_of(self.steps, self.index),
                     self.pixels(palette, opacity, "classes"), self.pixels(palette, opacity, "class-score"),
                     self.scale(), self.class_names[self.chosen_class])
