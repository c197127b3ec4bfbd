"""Bilinear deconvolution kernels: the FCN's upsampling init and its fixed stage upsampling."""

from __future__ import annotations

import contextlib
import copy
import functools
from typing import TypeVar

import torch
from torch import nn

ModuleT = TypeVar("ModuleT", bound=nn.Module)


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
    return bool(torch.allclose(weight.detach().float().cpu(), _reference(channels, size), rtol=0.0, atol=1e-6))


@functools.lru_cache(maxsize=8)
def _reference(channels: int, size: int) -> torch.Tensor:
    """:func:`bilinear_weight`, made once per shape for the comparisons (the viewer makes them at every draw)."""
    return bilinear_weight(channels, size)


def bilinear_upsample(
    scores: torch.Tensor, factor: int, padding: int = 0, offset: int = 0, size: tuple[int, int] | None = None
) -> torch.Tensor:
    """``scores`` upsampled by ``factor`` with the fixed bilinear deconvolution (kernel 2·factor, ``padding``): its
    output's rows and columns from ``offset`` on, ``size`` of them (default: all, :func:`upsampled_size`).

    Bilinear weights are a row weight times a column weight, so this is two small matrix products per channel, and
    only the window kept after a crop is computed: it equals a bilinear-initialised ``ConvTranspose2d(C, C,
    2 * factor, stride=factor)`` to float rounding, at a fraction of its cost (C instead of C² kernels, no cropped
    margin). On the CPU it runs in fp32 (also under autocast) and hands back the input's dtype.
    """
    height, width = scores.shape[-2:]
    rows, columns = size or upsampled_size((height, width), factor, padding)
    cpu = scores.device.type == "cpu"
    with torch.autocast("cpu", enabled=False) if cpu else contextlib.nullcontext():
        dtype = torch.float32 if cpu else scores.dtype
        row_weights = _interpolation(height, factor, padding + offset, rows, scores.device, dtype)
        column_weights = _interpolation(width, factor, padding + offset, columns, scores.device, dtype)
        upsampled = torch.matmul(row_weights, torch.matmul(scores.to(dtype), column_weights.t()))
    return upsampled.to(scores.dtype)


def upsampled_size(size: tuple[int, int], factor: int, padding: int = 0) -> tuple[int, int]:
    """The (height, width) a kernel-2·factor, stride-factor deconvolution with ``padding`` makes of ``size``."""
    return (size[0] + 1) * factor - 2 * padding, (size[1] + 1) * factor - 2 * padding


@functools.lru_cache(maxsize=32)
def _interpolation(
    length: int, factor: int, first: int, count: int, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """count × length: the bilinear deconvolution's weights along one axis, for its outputs first … first+count−1,
    made once per geometry on ``device`` (the viewer's images mostly share a size; read-only to callers).

    Output o sits at input coordinate (o + ½)/factor − 1 and takes 1 − distance of each input within 1 of it (the
    kernel's ramp); exact in float32 and bf16, as every weight is a multiple of 1/(2·factor).
    """
    with torch.inference_mode(False):  # a normal tensor, usable later in training's autograd as in inference
        position = (torch.arange(first, first + count, dtype=torch.float64) + 0.5) / factor - 1
        distance = (position[:, None] - torch.arange(length, dtype=torch.float64)[None, :]).abs()
        return (1 - distance).clamp(min=0).to(device, dtype)


class BilinearDeconvolution(nn.ConvTranspose2d):
    """A ConvTranspose2d whose weight is the fixed bilinear one (:func:`is_fixed_bilinear`), run as
    :func:`bilinear_upsample`: for inference, where it stands in for the layer it copies (weight shared)."""

    @classmethod
    def of(cls, layer: nn.ConvTranspose2d) -> BilinearDeconvolution:
        """The stand-in for ``layer`` (checked :func:`is_fixed_bilinear` here too: a wrong one would upsample wrongly)."""
        if not is_fixed_bilinear(layer):
            raise ValueError("only a bias-free deconvolution with exactly the bilinear weight runs separably")
        channels, _, size, _ = layer.weight.shape
        stride, padding = int(layer.stride[0]), int(layer.padding[0])
        fast = cls(channels, channels, size, stride=stride, padding=padding, bias=False, device="meta")
        fast.weight = layer.weight
        return fast

    def forward(self, input: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if output_size is not None:
            raise ValueError("a fixed bilinear deconvolution has one output size; crop its output instead")
        return bilinear_upsample(input, int(self.stride[0]), int(self.padding[0]))


def with_separable_bilinear(model: ModuleT) -> ModuleT:
    """A shallow copy of ``model`` whose child deconvolutions that hold exactly the bilinear weight (the fixed final
    upsampling) are :class:`BilinearDeconvolution`; other layers and every weight are shared. For inference."""
    fixed = {name: BilinearDeconvolution.of(layer) for name, layer in model.named_children()
             if isinstance(layer, nn.ConvTranspose2d) and is_fixed_bilinear(layer)}
    if not fixed:
        return model
    fast = copy.copy(model)
    fast._modules = dict(model._modules) | fixed
    return fast


def is_fixed_bilinear(layer: nn.ConvTranspose2d) -> bool:
    """Whether ``layer`` is exactly a bilinear upsampling: bias-free, kernel 2·stride, no groups or output padding,
    and the bilinear weight to the bit."""
    channels, _, size, _ = layer.weight.shape
    stride, padding = layer.stride[0], layer.padding[0]
    return (layer.bias is None and layer.groups == 1 and layer.output_padding == (0, 0) and layer.dilation == (1, 1)
            and layer.stride == (stride, stride) and layer.padding == (padding, padding) and size == 2 * stride
            and torch.equal(layer.weight.detach().cpu().float(), _reference(channels, size)))
