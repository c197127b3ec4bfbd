"""Bilinear deconvolution kernels: the FCN's upsampling init and its fixed stage upsampling."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bilinear_kernel(size: int) -> torch.Tensor:
    """The size×size bilinear interpolation filter the reference nets initialise deconvs with."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    coords = torch.arange(size, dtype=torch.float64)
    ramp = 1 - (coords - center).abs() / factor
    return (ramp[:, None] * ramp[None, :]).float()


def bilinear_weight(channels: int, size: int) -> torch.Tensor:
    """A channels×channels×size×size deconv weight that upsamples each channel on its own."""
    weight = torch.zeros(channels, channels, size, size)
    kernel = bilinear_kernel(size)
    index = torch.arange(channels)
    weight[index, index] = kernel
    return weight


def is_bilinear(weight: torch.Tensor) -> bool:
    """Whether a C×C×k×k deconvolution weight is the bilinear one to float rounding: a kernel training never changed
    (the final upsampling, fixed in the paper's nets by ``lr_mult: 0`` and in this project's training)."""
    channels, _, size, _ = weight.shape
    return bool(torch.allclose(weight.detach().float().cpu(), bilinear_weight(channels, size), rtol=0.0, atol=1e-6))


def bilinear_upsample(scores: torch.Tensor, factor: int, padding: int = 0) -> torch.Tensor:
    """Upsample ``scores`` by ``factor`` with the fixed bilinear deconvolution (kernel 2·factor).

    Depthwise, so it costs C instead of C² multiply-adds per tap, and equals a bilinear-initialised
    ``ConvTranspose2d(C, C, 2 * factor, stride=factor)`` exactly.
    """
    channels = scores.shape[1]
    if scores.device.type == "cpu":
        # The CPU's depthwise transposed convolution is 5–12× slower in bf16 than in fp32: on C channels
        # fp32 costs little, so it runs in fp32 (also under autocast) and hands back the input's dtype.
        with torch.autocast("cpu", enabled=False):
            weight = bilinear_kernel(2 * factor).expand(channels, 1, 2 * factor, 2 * factor)
            upsampled = F.conv_transpose2d(scores.float(), weight, stride=factor, padding=padding, groups=channels)
        return upsampled.to(scores.dtype)
    kernel = bilinear_kernel(2 * factor).to(scores.device, scores.dtype)
    weight = kernel.expand(channels, 1, 2 * factor, 2 * factor)
    return F.conv_transpose2d(scores, weight, stride=factor, padding=padding, groups=channels)
