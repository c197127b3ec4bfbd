"""The inference path: one pass per image, a pixel budget for huge images, and out-of-memory fallbacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fcn_viewer.inference import Segmenter, downscale
from fcn_viewer.weights.loader import load_weights_file
from tests.helpers import gradient_image


def test_images_over_the_budget_are_downscaled_and_the_user_told(tiny_weights: Path) -> None:
    segmenter = Segmenter(load_weights_file(tiny_weights), "cpu", max_pixels=40 * 30)
    result = segmenter.segment(gradient_image(120, 160))
    assert result.source_size == (120, 160)
    assert result.image_size == (30, 40) and result.mask().shape == (30, 40)
    assert "downscaled from 160×120 to 40×30" in result.notes[0]


def test_small_images_are_untouched(tiny_weights: Path) -> None:
    image = gradient_image(33, 47)
    result = Segmenter(load_weights_file(tiny_weights), "cpu").segment(image)
    assert result.notes == () and result.image is image and result.mask().shape == (33, 47)


def test_out_of_memory_retries_at_half_the_pixels(tiny_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    segmenter = Segmenter(load_weights_file(tiny_weights), "cpu")
    real = segmenter.model.forward_stages

    def limited(x: torch.Tensor):  # type: ignore[no-untyped-def]
        if x.shape[-2] * x.shape[-1] > 60 * 80 // 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(x)

    monkeypatch.setattr(segmenter.model, "forward_stages", limited)
    result = segmenter.segment(gradient_image(60, 80))
    assert result.image_size[0] * result.image_size[1] <= 60 * 80 // 2
    assert "out of cpu memory: ran at" in result.notes[0]


def test_out_of_memory_twice_falls_back_to_a_cpu_copy(tiny_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    segmenter = Segmenter(load_weights_file(tiny_weights), "cpu")
    segmenter.device = torch.device("meta")  # pretend the model lives on an accelerator that is full

    def full(x: torch.Tensor):  # type: ignore[no-untyped-def]
        raise torch.OutOfMemoryError("out of memory (simulated)")

    monkeypatch.setattr(segmenter.model, "forward_stages", full)
    result = segmenter.segment(gradient_image(20, 24))
    assert result.notes == ("out of meta memory: ran on the CPU",) and result.mask().shape == (20, 24)


def test_downscale_keeps_the_aspect_ratio() -> None:
    small = downscale(np.zeros((1000, 3000, 3), np.uint8), 30_000)
    assert small.shape == (100, 300, 3)
