"""Inference-time BatchNorm folding: each BN merged into the conv before it, so eval does one op, not two."""

from __future__ import annotations

import torch
from torch import nn

from fcn_viewer.model.fcn import FCN


def fold_batchnorm(model: FCN) -> FCN:
    """Folds every ``bnX`` into ``convX``/``fcX`` in place (eval only) and returns the model.

    ``y = γ (W x + b − μ) / σ + β`` becomes a conv with ``W' = γ W / σ`` and ``b' = γ (b − μ) / σ + β``.
    """
    if not model.config.batch_norm:
        return model
    if model.training:
        raise RuntimeError("fold BatchNorm only into a model in eval mode")
    pairs = [(_conv_of(name), name) for name, m in model.named_children() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for conv_name, bn_name in pairs:
            conv: nn.Conv2d = getattr(model, conv_name)
            bn: nn.BatchNorm2d = getattr(model, bn_name)
            mean, var = bn.running_mean, bn.running_var
            assert mean is not None and var is not None  # tracked: the nets are built with running statistics
            scale = bn.weight / torch.sqrt(var + bn.eps)
            bias = conv.bias if conv.bias is not None else torch.zeros_like(mean)
            folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,  # type: ignore[arg-type]
                               conv.stride, conv.padding, bias=True)  # type: ignore[arg-type]
            folded = folded.to(conv.weight.device, conv.weight.dtype)
            assert folded.bias is not None
            folded.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
            folded.bias.copy_((bias - mean) * scale + bn.bias)
            setattr(model, conv_name, folded)
            setattr(model, bn_name, nn.Identity())
    return model


def _conv_of(bn_name: str) -> str:
    """The layer a BatchNorm follows: ``bn3_2`` → ``conv3_2``, ``bn6`` → ``fc6``."""
    suffix = bn_name.removeprefix("bn")
    return f"conv{suffix}" if "_" in suffix else f"fc{suffix}"
