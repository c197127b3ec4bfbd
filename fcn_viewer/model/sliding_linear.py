"""fc6/fc7 run as what they are — fully connected layers slid over the map — as one matrix product each.

On CPUs a 7×7×512→4096 convolution over a 22×22 map, and a 1×1×4096→4096 one, run about twice as
fast as a GEMM than through the convolution kernels (measured by benchmarks/bench_inference.py).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from fcn_viewer.model.fcn import FCN

# The patch matrix of one slab of output rows is kept under this many elements (64 MB in fp32), so a
# 4-megapixel image does not need a gigabyte of patches at once.
MAX_PATCH_ELEMENTS = 16 * 2**20


class SlidingLinear(nn.Module):
    """A stride-1, zero-padded convolution computed as patches × weightᵀ, returned in channels-last layout.

    The weight matrix is a view of the convolution's weight when that is channels-last (no copy).
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if conv.stride != (1, 1) or conv.dilation != (1, 1) or conv.groups != 1 or conv.padding_mode != "zeros":
            raise ValueError("only stride-1, undilated, ungrouped, zero-padded convolutions slide as a matrix product")
        if not isinstance(conv.padding, tuple):
            raise ValueError("padding must be given in pixels")
        self.kernel_size: tuple[int, int] = (conv.kernel_size[0], conv.kernel_size[1])
        self.padding: tuple[int, int] = (int(conv.padding[0]), int(conv.padding[1]))
        out_channels = conv.out_channels
        # Rows ordered (kh, kw, c), matching patches taken from channels-last input.
        self.weight_matrix: torch.Tensor
        self.bias: torch.Tensor
        self.register_buffer("weight_matrix", conv.weight.detach().permute(0, 2, 3, 1).reshape(out_channels, -1))
        bias = conv.bias.detach() if conv.bias is not None else conv.weight.new_zeros(out_channels)
        self.register_buffer("bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kh, kw = self.kernel_size
        pad_h, pad_w = self.padding
        nhwc = x.permute(0, 2, 3, 1)
        if pad_h or pad_w:
            nhwc = F.pad(nhwc, (0, 0, pad_w, pad_w, pad_h, pad_h))
        batch, height, width, _ = nhwc.shape
        out_h, out_w = height - kh + 1, width - kw + 1
        if out_h <= 0 or out_w <= 0:
            raise RuntimeError(f"input {tuple(x.shape)} is smaller than the {kh}×{kw} kernel")
        weight_t = self.weight_matrix.t()
        out = x.new_empty(batch, out_h, out_w, weight_t.shape[1])
        if kh == kw == 1:
            torch.addmm(self.bias, nhwc.reshape(-1, weight_t.shape[0]), weight_t, out=out.view(-1, out.shape[-1]))
            return out.permute(0, 3, 1, 2)
        rows_per_slab = max(1, MAX_PATCH_ELEMENTS // (out_w * weight_t.shape[0]))
        for sample in range(batch):
            for top in range(0, out_h, rows_per_slab):
                bottom = min(out_h, top + rows_per_slab)
                slab = nhwc[sample, top : bottom + kh - 1]
                # (rows, out_w, c, kh, kw) → (rows·out_w, kh·kw·c)
                patches = slab.unfold(0, kh, 1).unfold(1, kw, 1).permute(0, 1, 3, 4, 2).reshape(-1, weight_t.shape[0])
                torch.addmm(self.bias, patches, weight_t, out=out[sample, top:bottom].view(-1, out.shape[-1]))
        return out.permute(0, 3, 1, 2)


def fc_layers_as_matmul(model: FCN) -> FCN:
    """A shallow copy of ``model`` whose fc6 and fc7 are :class:`SlidingLinear`; every other layer (and
    every weight) is shared with ``model``. For inference on CPUs; call after BatchNorm folding.
    A net without convolutional fc6/fc7 is returned as it is."""
    fc6, fc7 = getattr(model, "fc6", None), getattr(model, "fc7", None)
    if not (isinstance(fc6, nn.Conv2d) and isinstance(fc7, nn.Conv2d)):
        return model
    if isinstance(getattr(model, "bn6", None), nn.BatchNorm2d):
        raise RuntimeError("fold BatchNorm into fc6/fc7 before running them as matrix products")
    fast = copy.copy(model)
    fast._modules = dict(model._modules)
    fast.fc6 = SlidingLinear(fc6)  # type: ignore[assignment]  # a drop-in for the Conv2d it replaces
    fast.fc7 = SlidingLinear(fc7)  # type: ignore[assignment]
    return fast
