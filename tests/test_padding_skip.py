"""Skipping the paper nets' constant padding in blocks 1–5 changes no output, whatever the image size."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

from fcn_viewer.model import padding_skip
from fcn_viewer.model.fold import fold_batchnorm
from fcn_viewer.model.padding_skip import PaddingSkippingPools, skip_padding
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
    assert isinstance(fast.__dict__["_pools"], PaddingSkippingPools) and "_pools" not in model.__dict__
    torch.manual_seed(height * width)
    assert_same_stages(model, fast, torch.randn(batch, 3, height, width).contiguous(memory_format=torch.channels_last))


@pytest.mark.parametrize("depths", [(2, 2, 3, 3, 3), (1, 2, 2, 2, 2)])  # VGG16's blocks and the bundled nets'
@pytest.mark.parametrize("banded_share", [0.0, 0.8, 1.5])  # the whole map every time, as in use, bands every time
def test_the_pools_are_unchanged_for_odd_and_even_frames(
        monkeypatch: pytest.MonkeyPatch, depths: tuple[int, ...], banded_share: float) -> None:
    # Odd map sides after a pooling are where an edge band grows by one cell more than half (60×81, 3×200 catch it).
    model = random_model(replace(tiny_paper_config("fcn8s", 5), depths=depths))
    monkeypatch.setattr(padding_skip, "MAX_BANDED_SHARE", banded_share)
    torch.manual_seed(0)
    for height, width in [(1, 1), (8, 8), (20, 31), (33, 18), (60, 81), (3, 200), (101, 7)]:
        x = torch.randn(1, 3, height, width)
        with torch.inference_mode():
            expected, got = model._pools(x), skip_padding(model)._pools(x)
        for name, want, have in zip(("pool3", "pool4", "pool5"), expected, got, strict=True):
            torch.testing.assert_close(have, want, rtol=1e-5, atol=1e-5, msg=f"{name} of {height}×{width}")


def test_a_batch_in_bf16_gives_the_plain_nets_pools_and_so_does_a_net_whose_padding_settles_at_zero() -> None:
    model = random_model(tiny_paper_config("fcn8s", 5))
    x = torch.randn(2, 3, 40, 52)
    with torch.inference_mode():
        plain = model.to(torch.bfloat16)
        for want, have in zip(plain._pools(x.bfloat16()), skip_padding(plain)._pools(x.bfloat16()), strict=True):
            assert torch.equal(have, want)  # the constants summed in fp32 and rounded once, as the convolutions do
        model = model.float()
        for name, module in model.named_modules():
            if name.startswith("conv"):
                module.bias.fill_(-50.0)  # relu(bias) = 0: the padding's features are zero, and no edge band grows
        for want, have in zip(model._pools(x), skip_padding(model)._pools(x), strict=True):
            torch.testing.assert_close(have, want, rtol=1e-5, atol=1e-5)


def test_a_folded_batchnorm_net_is_unchanged_and_an_unfolded_one_refused() -> None:
    model = random_model(replace(tiny_paper_config("fcn8s", 5), batch_norm=True))
    with pytest.raises(RuntimeError, match="fold BatchNorm"):
        skip_padding(model)
    folded = fold_batchnorm(model)
    assert_same_stages(folded, skip_padding(folded), torch.randn(1, 3, 30, 26))


def test_same_padding_nets_are_left_as_they_are() -> None:
    model = random_model(tiny_compact_config())
    assert skip_padding(model) is model
