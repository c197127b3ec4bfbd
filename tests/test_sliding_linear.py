"""fc6/fc7 as matrix products: the same numbers as the convolutions they replace, without copying weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fcn_viewer.model import sliding_linear
from fcn_viewer.model.sliding_linear import SlidingLinear, fc_layers_as_matmul
from tests.helpers import random_model, tiny_paper_config


@pytest.mark.parametrize(
    ("kernel", "padding", "channels_last"), [(7, 0, True), (7, 0, False), (3, 1, True), (1, 0, True), (1, 0, False)]
)
def test_it_computes_the_convolution_it_replaces(kernel: int, padding: int, channels_last: bool) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 10, kernel, padding=padding)
    x = torch.randn(2, 6, 11, 9)
    if channels_last:
        conv, x = conv.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        out = SlidingLinear(conv)(x)
        torch.testing.assert_close(out, F.conv2d(x, conv.weight, conv.bias, padding=padding), rtol=1e-5, atol=1e-5)
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_large_maps_are_done_in_slabs_with_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(1)
    conv = nn.Conv2d(4, 5, 3, padding=1, bias=False)
    x = torch.randn(1, 4, 13, 7)
    whole = SlidingLinear(conv)(x)
    monkeypatch.setattr(sliding_linear, "MAX_PATCH_ELEMENTS", 2 * 7 * 4 * 9)  # two output rows per slab
    torch.testing.assert_close(SlidingLinear(conv)(x), whole)


def test_strided_or_grouped_convolutions_are_refused() -> None:
    for conv in (nn.Conv2d(4, 4, 3, stride=2), nn.Conv2d(4, 4, 3, groups=2), nn.Conv2d(4, 4, 3, dilation=2)):
        with pytest.raises(ValueError, match="stride-1, undilated, ungrouped"):
            SlidingLinear(conv)


def test_the_fast_net_shares_the_weights_and_gives_every_stage_the_same() -> None:
    model = random_model(tiny_paper_config("fcn8s", 5)).to(memory_format=torch.channels_last)
    fast = fc_layers_as_matmul(model)
    assert isinstance(model.fc6, nn.Conv2d) and isinstance(fast.fc6, SlidingLinear)  # the original is untouched
    assert fast.fc6.weight_matrix.data_ptr() == model.fc6.weight.data_ptr()  # a view, not a 400 MB copy
    assert fast.conv1_1 is model.conv1_1
    x = torch.randn(1, 3, 45, 38).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        expected, got = model.forward_stages(x), fast.forward_stages(x)
    assert list(got.tensors) == list(expected.tensors)
    for name, tensor in expected.tensors.items():
        torch.testing.assert_close(got.tensors[name], tensor, rtol=1e-4, atol=1e-5, msg=name)
