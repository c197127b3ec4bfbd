"""Choices and defaults that the command line shows before any heavy library (torch, Qt) is imported."""

from __future__ import annotations

from typing import Literal

Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS: tuple[Precision, ...] = ("auto", "fp32", "bf16", "fp16")
DEFAULT_TOLERANCE = 2.0  # boundary F1 distance tolerance in pixels
# `gui --screenshot --tab`: every tab of the window, in its order (gui/classroom.py lists the teaching tabs).
SCREENSHOT_TABS: tuple[str, ...] = ("stages", "steps", "compare", "truth", "contributions", "fields", "sequence",
                                    "lessons")

Lesson = Literal["classifier", "commute", "upsampling"]
LESSONS: tuple[Lesson, ...] = ("classifier", "commute", "upsampling")
DEFAULT_TIME_CAP = 10.0  # seconds the classifier lesson runs crops for before it extrapolates
