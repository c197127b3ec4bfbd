"""The Step-Through's state without widgets: one colour scale per class held across steps, chapters, slides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fcn_viewer.classes import CAMVID_PALETTE
from fcn_viewer.inference import Segmenter
from fcn_viewer.render import heatmap
from fcn_viewer.teaching.step_through import chapter_of, class_scale
from fcn_viewer.view.panel_content import ViewResult
from fcn_viewer.view.step_deck import StepDeck
from fcn_viewer.weights.loader import LoadedModel
from tests.helpers import gradient_image, random_model, tiny_meta, tiny_paper_config


def paper_result(variant: str = "fcn8s", size: int = 64) -> ViewResult:
    config = tiny_paper_config(variant)
    segmentation = Segmenter(LoadedModel(random_model(config), tiny_meta(config), "test"), "cpu").segment(
        gradient_image(size, size))
    return ViewResult.build(Path("photo.png"), segmentation, tiny_meta(config), 0.0, "cpu")


def test_every_step_draws_a_class_on_one_held_scale() -> None:
    deck = StepDeck()
    deck.load(paper_result())
    deck.set_display("class-score")
    deck.choose_class(2)
    scale = deck.scale()
    lows, highs = [], []
    for number in range(len(deck.steps)):
        deck.go(number)
        assert deck.scale() == scale  # the same range on every step
        channel = deck.scores()[2]
        lows.append(float(np.percentile(channel, 0.5)))
        highs.append(float(np.percentile(channel, 99.5)))
        assert f"{scale.low:.2f} (dark) … {scale.high:.2f} (bright)" in deck.caption()
        np.testing.assert_array_equal(deck.pixels(CAMVID_PALETTE, 0.6), heatmap(channel, scale.low, scale.high))
    assert (scale.low, scale.high) == pytest.approx((min(lows), max(highs)), rel=1e-6)
    # The steps' own ranges differ (what the tab showed before: each step rescaled), the held one covers them all.
    assert len({round(high, 3) for high in highs}) > 1
    deck.choose_class(3)
    assert deck.scale() != scale and deck.scale().class_index == 3


def test_the_held_scale_ignores_a_few_extreme_pixels() -> None:
    steps = StepDeck()
    steps.load(paper_result())
    arrays = dict(steps.arrays)
    spiked = arrays["logits_8s"].copy()
    spiked[1, 0, :3] = 1e6  # 3 of 4,096 pixels
    arrays["logits_8s"] = spiked
    plain, spiked_scale = class_scale(steps.steps, steps.arrays, 1), class_scale(steps.steps, arrays, 1)
    assert spiked_scale.high == pytest.approx(plain.high, rel=0.05) and spiked_scale.low == plain.low


def test_the_deck_keeps_its_step_for_a_path_of_the_same_steps_and_names_chapters() -> None:
    deck = StepDeck()
    deck.load(paper_result())
    assert deck.advance(4) and deck.index == 4 and not deck.go(4)
    assert deck.go(99) and deck.index == len(deck.steps) - 1
    deck.go(4)
    deck.load(paper_result(size=72))
    assert deck.index == 4
    deck.load(paper_result("fcn32s"))
    assert deck.index == 0
    deck.load(paper_result())
    chapters = [chapter_of(deck.steps, n) for n in range(len(deck.steps))]
    assert chapters == ["conv7 scores (stride 32)"] + ["fusing pool4 (stride 16)"] * 4 + [
        "fusing pool3 (stride 8)"] * 4 + ["to the image: the final upsampling and the mask"] * 3
    deck.go(5)
    slide = deck.slide(CAMVID_PALETTE, 0.6)
    assert (slide.number, slide.count, slide.chapter) == (6, 12, "fusing pool3 (stride 8)")
    assert slide.classes.shape == slide.score.shape == (*deck.scores().shape[1:], 3)
    assert slide.scale == deck.scale() and slide.class_name in slide.scale_text


def test_the_deck_forgets_everything_on_clear() -> None:
    deck = StepDeck()
    deck.load(paper_result())
    deck.cycle_class(-1)
    assert deck.chosen_class == len(deck.class_names) - 1
    deck.clear()
    assert deck.step is None and not deck.go(3) and deck.class_names == ()
    deck.load(paper_result())
    assert deck.chosen_class == len(deck.class_names) - 1  # the class chosen stays for the next result


def test_the_presenter_steps_through_the_deck_and_leaves() -> None:
    from fcn_viewer.view.presenter import NOTHING_TO_PRESENT, PresenterModel

    deck = StepDeck()
    presenter = PresenterModel(deck)
    assert presenter.enter() == NOTHING_TO_PRESENT and not presenter.active
    deck.load(paper_result())
    assert not presenter.press("next")  # keys do nothing while it is off
    assert presenter.enter() == "" and presenter.active
    assert presenter.press("next") and deck.index == 1
    assert presenter.press("last") and deck.index == 11 and not presenter.press("next")
    assert presenter.press("back") and deck.index == 10
    assert presenter.press("first") and deck.index == 0 and not presenter.press("back")
    first = presenter.slide(CAMVID_PALETTE, 0.6)
    assert presenter.press("class-down")
    second = presenter.slide(CAMVID_PALETTE, 0.6)
    assert second.scale.class_index == first.scale.class_index + 1 and second.class_name != first.class_name
    assert presenter.press("leave") and not presenter.active
