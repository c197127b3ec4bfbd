"""The reference nets pad conv1_1 by 100 px, so half of what conv1–conv3 see is padding whose features are
one constant per channel. This runs blocks 1–3 exactly, convolving only where the image or the frame's
edge reaches and filling the rest with that constant (measured by benchmarks/bench_inference.py)."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from fcn_viewer.model.fcn import FCN

# Above this share of a map to convolve anyway, the whole map is convolved in one call.
MAX_BANDED_SHARE = 0.8


@dataclass(frozen=True)
class BandedMap:
    """A full N×C×H×W feature map that equals ``constant`` (per channel) everywhere except inside
    ``window`` (rows y0:y1, columns x0:x1: where the image reaches) and a band ``ring`` pixels wide
    along the frame's edge (where zero padding reaches)."""

    tensor: torch.Tensor
    window: tuple[int, int, int, int]
    ring: int
    constant: torch.Tensor


class PaddingSkippingFront:
    """Blocks 1–3 of a paper-padding FCN (BatchNorm folded), computed band by band; called as ``_front``."""

    def __init__(self, model: FCN) -> None:
        self.layers: list[list[nn.Conv2d]] = []
        for block in (1, 2, 3):
            convs = [getattr(model, f"conv{block}_{layer}") for layer in range(1, model.config.depths[block - 1] + 1)]
            self.layers.append(convs)
            if model.config.batch_norm and not all(
                isinstance(getattr(model, f"bn{block}_{layer}"), nn.Identity) for layer in range(1, len(convs) + 1)
            ):
                raise RuntimeError("fold BatchNorm before skipping the padding")
        first = self.layers[0][0]
        if isinstance(first.padding, str):
            raise ValueError("the first convolution's padding must be given in pixels")
        self.pad = int(first.padding[0])
        if first.padding != (self.pad, self.pad) or self.pad < 2 or first.kernel_size != (3, 3):
            raise ValueError("the first convolution must be 3×3 with a square padding of at least 2 px")
        if any(conv.kernel_size != (3, 3) or conv.padding != (1, 1) for convs in self.layers for conv in convs[1:]):
            raise ValueError("convolutions after the first must be 3×3 with 1 px padding")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        h: BandedMap | None = None
        for convs in self.layers:
            for conv in convs:
                h = self._first(x, conv) if h is None else _conv_relu(h, conv)
            assert h is not None
            h = _max_pool(h)
        assert h is not None
        return h.tensor

    def _first(self, x: torch.Tensor, conv: nn.Conv2d) -> BandedMap:
        """conv1_1 over the padded image: outside the image's reach it sees only zeros, so it is relu(bias)."""
        _, _, height, width = x.shape
        pad = self.pad
        full = _filled(x, conv, height + 2 * pad - 2, width + 2 * pad - 2, _bias(conv).relu())
        full[..., pad - 2 : pad + height, pad - 2 : pad + width] = F.conv2d(F.pad(x, (2, 2, 2, 2)), conv.weight, conv.bias).relu_()
        return BandedMap(full, (pad - 2, pad + height, pad - 2, pad + width), 0, _bias(conv).relu())


def _bias(conv: nn.Conv2d) -> torch.Tensor:
    return conv.bias if conv.bias is not None else conv.weight.new_zeros(conv.out_channels)


def _filled(like: torch.Tensor, conv: nn.Conv2d, height: int, width: int, constant: torch.Tensor) -> torch.Tensor:
    full = torch.empty((like.shape[0], conv.out_channels, height, width), dtype=like.dtype, device=like.device,
                       memory_format=torch.channels_last)
    return full.copy_(constant.view(1, -1, 1, 1).expand_as(full))


def _conv_relu(h: BandedMap, conv: nn.Conv2d) -> BandedMap:
    """A 3×3, 1-px-padded convolution and ReLU: the window and the ring grow by one pixel each."""
    _, _, height, width = h.tensor.shape
    y0, y1, x0, x1 = max(h.window[0] - 1, 0), min(h.window[1] + 1, height), max(h.window[2] - 1, 0), min(h.window[3] + 1, width)
    ring = h.ring + 1
    constant = (conv.weight.sum((2, 3)) @ h.constant + _bias(conv)).relu()
    regions = [(y0, y1, x0, x1)]
    if 2 * ring < min(height, width):
        regions += [(0, ring, 0, width), (height - ring, height, 0, width),
                    (ring, height - ring, 0, ring), (ring, height - ring, width - ring, width)]
    if sum((b - a) * (d - c) for a, b, c, d in regions) > MAX_BANDED_SHARE * height * width:
        whole = F.conv2d(h.tensor, conv.weight, conv.bias, padding=1).relu_()
        return BandedMap(whole, (0, height, 0, width), 0, constant)
    out = _filled(h.tensor, conv, height, width, constant)
    for top, bottom, left, right in regions:
        if bottom > top and right > left:
            out[..., top:bottom, left:right] = _region(h.tensor, conv, top, bottom, left, right)
    return BandedMap(out, (y0, y1, x0, x1), ring, constant)


def _region(x: torch.Tensor, conv: nn.Conv2d, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """relu(conv(x)) at output rows top:bottom, columns left:right, with the conv's zero padding at the frame."""
    height, width = x.shape[-2:]
    rows, cols = slice(max(top - 1, 0), min(bottom + 1, height)), slice(max(left - 1, 0), min(right + 1, width))
    zeros = (int(left == 0), int(right == width), int(top == 0), int(bottom == height))
    return F.conv2d(F.pad(x[..., rows, cols], zeros), conv.weight, conv.bias).relu_()


def _max_pool(h: BandedMap) -> BandedMap:
    """2×2, stride-2, ceil-mode max pooling: the window's corners halve outward, the ring halves up."""
    pooled = F.max_pool2d(h.tensor, 2, 2, ceil_mode=True)
    y0, y1, x0, x1 = h.window
    window = (y0 // 2, math.ceil(y1 / 2), x0 // 2, math.ceil(x1 / 2))
    return BandedMap(pooled, window, math.ceil(h.ring / 2), h.constant)


def skip_padding(model: FCN) -> FCN:
    """A shallow copy of a paper-padding ``model`` whose blocks 1–3 skip the constant padding; other nets
    are returned as they are. For inference, after BatchNorm folding; weights are shared."""
    if model.config.padding != "paper":
        return model
    fast = copy.copy(model)
    fast._modules = dict(model._modules)
    fast.__dict__["_front"] = PaddingSkippingFront(model)
    return fast
