"""The presenter's mode without its widgets: the Step-Through's steps as slides, what each key does, when it is on.

The presenter shares the Step-Through's :class:`~fcn_viewer.view.step_deck.StepDeck`: it starts at the step the tab
shows, and the tab is at the presenter's last step when the presenter leaves. No Qt.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from fcn_viewer.classes import Color
from fcn_viewer.view.step_deck import Slide, StepDeck

PresenterKey = Literal["next", "back", "first", "last", "class-up", "class-down", "leave"]
NOTHING_TO_PRESENT = "Open an image with a model loaded to present its Step-Through."
KEYS_HELP = "→ / Space next  ·  ← back  ·  Home / End first / last  ·  ↑ / ↓ class  ·  Esc leave"


class PresenterModel:
    """Whether the presenter is on, and the slide it shows: the deck's step with its chapter, the argmax classes,
    and the chosen class's score on the colour scale held across every step."""

    def __init__(self, deck: StepDeck) -> None:
        self.deck = deck
        self.active = False

    def enter(self) -> str:
        """Turns the presenter on; "" when it is on, else why it cannot be (nothing to present)."""
        if self.deck.step is None:
            return NOTHING_TO_PRESENT
        self.active = True
        return ""

    def leave(self) -> None:
        self.active = False

    def press(self, key: PresenterKey) -> bool:
        """What a key does; whether the slide changed (or, for "leave", the presenter left)."""
        if not self.active:
            return False
        deck = self.deck
        if key == "leave":
            self.leave()
            return True
        if key in ("class-up", "class-down"):
            before = deck.chosen_class
            deck.cycle_class(1 if key == "class-down" else -1)
            return deck.chosen_class != before
        targets = {"next": deck.index + 1, "back": deck.index - 1, "first": 0, "last": len(deck.steps) - 1}
        return deck.go(targets[key])

    def slide(self, palette: Sequence[Color], opacity: float) -> Slide:
        """The slide on screen."""
        return self.deck.slide(palette, opacity)
