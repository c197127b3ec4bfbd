"""Skipping the paper nets' constant padding in blocks 1–3 changes no output, whatever the image size."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

from fcn_viewer.model import padding_skip
from fcn_viewer.model.fold import fold_batchnorm
from fcn_viewer.model.padding_skip import PaddingSkippingFront, skip_padding
from tests.helpers import random_model, tiny_compact_config, tiny_paper_config

SIZES = [(45, 38, 1), (17, 23, 2), (1, 1, 1), (5, 90, 1)]


def assert_same_stages(model: nn.Module, fast: nn.Module, x: torch.Tensor) -> None:
    with torch.inference_mode():
        expected, got = model.forward_stages(x), fast.forward_stages(x)
    assert list(got.tensors) == list(expected.tensors)
    for name, tensor in expected.tensors.items():
        torch.testing.assert_close(got.tensors[name], tensor, rtol=1e-4, atol=1e-4, msg=name)


@pytest.mark.parametrize("variant", ["fcn32s", "fcn16s", "fcn8s", "fcn8s-atonce"])
@pytest.mark.parametrize(("height", "width", "batch"), SIZES)
def test_every_stage_is_unchanged(variant: str, height: int, width: int, batch: int) -> None:
    model = random_model(tiny_paper_config(variant, 5)).to(memory_format=torch.channels_last)
    fast = skip_padding(model)
    assert isinstance(fast.__dict__["_front"], PaddingSkippingFront) and "_front" not in model.__dict__
    torch.manual_seed(height * width)
    assert_same_stages(model, fast, torch.randn(batch, 3, height, width).contiguous(memory_format=torch.channels_last))


def test_pool3_is_unchanged_where_the_bands_are_used_and_where_the_whole_map_is(monkeypatch: pytest.MonkeyPatch) -> None:
    model = random_model(tiny_paper_config("fcn8s", 5))
    x = torch.randn(1, 3, 40, 52)
    with torch.inference_mode():
        expected = model._front(x)
        torch.testing.assert_close(skip_padding(model)._front(x), expected, rtol=1e-5, atol=1e-5)
        monkeypatch.setattr(padding_skip, "MAX_BANDED_SHARE", 0.0)  # every layer convolves its whole map
        torch.testing.assert_close(skip_padding(model)._front(x), expected, rtol=1e-5, atol=1e-5)


def test_a_folded_batchnorm_net_is_unchanged_and_an_unfolded_one_refused() -> None:
    model = random_model(replace(tiny_paper_config("fcn8s", 5), batch_norm=True))
    with pytest.raises(RuntimeError, match="fold BatchNorm"):
        skip_padding(model)
    folded = fold_batchnorm(model)
    assert_same_stages(folded, skip_padding(folded), torch.randn(1, 3, 30, 26))


def test_same_padding_nets_are_left_as_they_are() -> None:
    model = random_model(tiny_compact_config())
    assert skip_padding(model) is model
