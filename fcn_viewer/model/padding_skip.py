"""The reference nets pad conv1_1 by 100 px, so much of what conv1–conv5 see is padding whose features are one
constant per channel. This runs blocks 1–5 exactly, convolving only where the image or the frame's edge reaches,
and pooling only there: the rest of each pooled map is that constant (measured by benchmarks/bench_inference.py)."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from fcn_viewer.model.fcn import FCN

# Above this share of a map to convolve anyway, the block convolves its whole maps, one convolution after another.
MAX_BANDED_SHARE = 0.8

Region = tuple[int, int, int, int]  # rows top:bottom, columns left:right


@dataclass(frozen=True)
class BandedMap:
    """A full N×C×H×W feature map that equals ``constant`` (per channel) everywhere except inside
    ``window`` (where the image reaches) and a band ``ring`` pixels wide along the frame's edge (where the
    zero padding of the convolutions, unlike the constant, reaches)."""

    tensor: torch.Tensor
    window: Region
    ring: int
    constant: torch.Tensor


class PaddingSkippingPools:
    """Blocks 1–5 of a paper-padding FCN (BatchNorm folded), computed region by region; called as ``_pools``.

    Each block convolves and pools only its image window and its edge bands, from the previous pooled map; the
    block's full-resolution maps are never made, and the pooled map is the block's constant elsewhere.
    """

    def __init__(self, model: FCN) -> None:
        self.blocks: list[list[nn.Conv2d]] = []
        for block, depth in enumerate(model.config.depths, start=1):
            self.blocks.append([getattr(model, f"conv{block}_{layer}") for layer in range(1, depth + 1)])
            if model.config.batch_norm and not all(
                isinstance(getattr(model, f"bn{block}_{layer}"), nn.Identity) for layer in range(1, depth + 1)
            ):
                raise RuntimeError("fold BatchNorm before skipping the padding")
        first = self.blocks[0][0]
        if isinstance(first.padding, str):
            raise ValueError("the first convolution's padding must be given in pixels")
        self.pad = int(first.padding[0])
        if first.padding != (self.pad, self.pad) or self.pad < 2 or first.kernel_size != (3, 3):
            raise ValueError("the first convolution must be 3×3 with a square padding of at least 2 px")
        later = [conv for convs in self.blocks for conv in convs][1:]
        if any(conv.kernel_size != (3, 3) or conv.padding != (1, 1) for conv in later):
            raise ValueError("convolutions after the first must be 3×3 with 1 px padding")

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # conv1_1's padding less one pixel becomes a zero frame around the image, so every convolution is 1-px padded.
        margin = self.pad - 1
        _, channels, height, width = x.shape
        frame = F.pad(x, (margin, margin, margin, margin)).contiguous(memory_format=torch.channels_last)
        h = BandedMap(frame, (margin, margin + height, margin, margin + width), 0, x.new_zeros(channels))
        pools = []
        for convs in self.blocks:
            h = _block(h, convs)
            pools.append(h.tensor)
        return pools[2], pools[3], pools[4]


def _block(h: BandedMap, convs: list[nn.Conv2d]) -> BandedMap:
    """The block's 3×3, 1-px-padded convolutions with ReLU, then 2×2, stride-2, ceil-mode max pooling."""
    _, _, height, width = h.tensor.shape
    constant, ring = h.constant, h.ring
    for conv in convs:
        # The frame's zero padding differs from the map there (a ring) once the constant is not zero.
        ring = ring + 1 if ring or bool(constant.any()) else 0
        constant = _constant_after(conv, constant)
    depth = len(convs)
    y0, y1, x0, x1 = h.window
    window = (max(y0 - depth, 0), min(y1 + depth, height), max(x0 - depth, 0), min(x1 + depth, width))
    regions = _regions(window, ring, height, width)
    if sum((b - a) * (d - c) for a, b, c, d in regions) > MAX_BANDED_SHARE * height * width:
        whole = h.tensor
        for conv in convs:
            whole = F.conv2d(whole, conv.weight, conv.bias, padding=1).relu_()
        pooled = F.max_pool2d(whole, 2, 2, ceil_mode=True)
        return BandedMap(pooled, (0, pooled.shape[-2], 0, pooled.shape[-1]), 0, constant)
    pooled = _filled(h.tensor, math.ceil(height / 2), math.ceil(width / 2), constant)
    for top, bottom, left, right in regions:
        if bottom > top and right > left:
            region = F.max_pool2d(_convolved(h.tensor, convs, (top, bottom, left, right)), 2, 2, ceil_mode=True)
            pooled[..., top // 2 : top // 2 + region.shape[-2], left // 2 : left // 2 + region.shape[-1]] = region
    y0, y1, x0, x1 = window
    # A ring r wide halves to ⌈r/2⌉ cells on the left and top, but to r/2 + 1 on a side whose length is odd.
    pooled_ring = ring // 2 + 1 if ring else 0
    return BandedMap(pooled, (y0 // 2, math.ceil(y1 / 2), x0 // 2, math.ceil(x1 / 2)), pooled_ring, constant)


def _constant_after(conv: nn.Conv2d, constant: torch.Tensor) -> torch.Tensor:
    """relu(conv) of a map that is ``constant`` everywhere, summed in fp32 and rounded once, as the convolution
    itself rounds (in bf16, rounding the kernel sums first would be off by a step)."""
    summed = conv.weight.float().sum((2, 3)) @ constant.float() + _bias(conv).float()
    return summed.relu().to(constant.dtype)


def _regions(window: Region, ring: int, height: int, width: int) -> list[Region]:
    """Where a block's output differs from its constant: the image's window and the ``ring``-wide bands along the
    frame's edges (the whole map once they meet), each grown to even edges for the pooling."""
    if ring and 2 * ring >= min(height, width):
        return [(0, height, 0, width)]
    regions = [window]
    if ring:
        regions += [(0, ring, 0, width), (height - ring, height, 0, width),
                    (ring, height - ring, 0, ring), (ring, height - ring, width - ring, width)]
    return [_even(region, height, width) for region in regions]


def _even(region: Region, height: int, width: int) -> Region:
    """``region`` grown to even edges (or the frame's), so its 2×2 pooling cells are the whole map's."""
    top, bottom, left, right = region
    return top - top % 2, min(bottom + bottom % 2, height), left - left % 2, min(right + right % 2, width)


def _convolved(x: torch.Tensor, convs: list[nn.Conv2d], region: Region) -> torch.Tensor:
    """relu(conv(…relu(conv(x)))) at ``region`` only, from the input it depends on, zero padded at the frame."""
    height, width = x.shape[-2:]
    top, bottom, left, right = region
    depth = len(convs)
    rows = (max(top - depth, 0), min(bottom + depth, height))
    cols = (max(left - depth, 0), min(right + depth, width))
    zeros = (int(cols[0] == 0), int(cols[1] == width), int(rows[0] == 0), int(rows[1] == height))
    h = x[..., rows[0] : rows[1], cols[0] : cols[1]]
    for conv in convs:
        h = F.conv2d(F.pad(h, zeros) if any(zeros) else h, conv.weight, conv.bias).relu_()
    # Unpadded sides lost one pixel per convolution; the frame's sides kept theirs.
    first_row = rows[0] + depth * (1 - zeros[2])
    first_col = cols[0] + depth * (1 - zeros[0])
    return h[..., top - first_row : bottom - first_row, left - first_col : right - first_col]


def _bias(conv: nn.Conv2d) -> torch.Tensor:
    return conv.bias if conv.bias is not None else conv.weight.new_zeros(conv.out_channels)


def _filled(like: torch.Tensor, height: int, width: int, constant: torch.Tensor) -> torch.Tensor:
    """An N×C×height×width channels-last map of ``constant``, written pixel row by pixel row (6× faster on the
    CPU than copying the broadcast constant into a channels-last tensor)."""
    pixels = torch.empty((like.shape[0], height, width, constant.numel()), dtype=like.dtype, device=like.device)
    pixels.view(-1, constant.numel()).copy_(constant.expand(pixels.shape[0] * height * width, -1))
    return pixels.permute(0, 3, 1, 2)


def skip_padding(model: FCN) -> FCN:
    """A shallow copy of a paper-padding ``model`` whose blocks 1–5 skip the constant padding; other nets
    are returned as they are. For inference, after BatchNorm folding; weights are shared."""
    if model.config.padding != "paper":
        return model
    fast = copy.copy(model)
    fast._modules = dict(model._modules)
    fast.__dict__["_pools"] = PaddingSkippingPools(model)
    return fast
