"""Tells the viewer's user what the model knows: its domain in the info panel, and a note above the panels when a
photo looks unlike its training data (the signal of fcn_viewer/domain.py; the window keeps working)."""

from __future__ import annotations

from fcn_viewer.domain import domain_of, mean_confidence, threshold_of, unfamiliar_note
from fcn_viewer.gui.banner import MessageBanner
from fcn_viewer.view.panel_content import ViewResult


def result_confidence(result: ViewResult) -> float | None:
    """The photo's mean max-softmax of the finest stage (already computed for the confidence view)."""
    if result.masks is None or result.final_stage is None:
        return None
    return mean_confidence(result.masks[result.final_stage].confidence)


MODEL_LINES = 3  # the info panel's first lines: image, model, device with time and precision


def info_lines(result: ViewResult) -> list[str]:
    """The result's info-panel lines with, after the model's, its training data and this photo's confidence
    against the model's threshold (near the top, where a small panel still shows them)."""
    lines = result.summary_lines()
    if result.meta is None:
        return lines
    extra = [f"trained on: {domain_of(result.meta)}"]
    confidence, threshold = result_confidence(result), threshold_of(result.meta)
    if confidence is not None:
        extra.append(confidence_line(confidence, threshold))
    return lines[:MODEL_LINES] + extra + lines[MODEL_LINES:]


def confidence_line(confidence: float, threshold: float | None) -> str:
    """The photo's mean confidence, and the model's threshold as a rule rather than a verdict on this photo."""
    line = f"mean confidence {_percent(confidence)}"
    if threshold is not None:
        line += f" (photos below {_percent(threshold)}, the model's threshold, get a note)"
    return line


def _percent(value: float) -> str:
    return f"{100 * value:.1f}\u00a0%"  # the number and its sign stay on one line


class DomainNotice:
    """Shows the note for a result that looks unfamiliar in the banner, and takes it away for the next one that
    does not; a warning or an error the banner holds is left alone."""

    def __init__(self, banner: MessageBanner) -> None:
        self.banner = banner
        self.note: str | None = None

    def show_for(self, result: ViewResult) -> None:
        confidence = result_confidence(result)
        note = unfamiliar_note(result.meta, confidence) if result.meta and confidence is not None else None
        free = self.banner.isHidden()
        showing = not free and self.banner.text() == self.note
        if note is not None and (showing or free):
            self.banner.show_message(note, "info")
        elif note is None and showing:
            self.banner.dismiss()
        self.note = note
