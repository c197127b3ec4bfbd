"""The FCN network: a VGG-style trunk, 1×1 score layers and deconvolutions fusing 32s→16s→8s.

Module names follow the reference Caffe nets and pytorch-fcn, so their weights load strictly.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from fcn_viewer.model.config import PAPER_PADDING, FCNConfig
from fcn_viewer.model.outputs import Crop, Deconvolution, FCNOutputs
from fcn_viewer.model.stages import FINAL_STAGE_OF_VARIANT, STAGES, Stage
from fcn_viewer.model.upsample import bilinear_upsample, bilinear_weight, upsampled_size

ATONCE_POOL4_SCALE = 0.01
ATONCE_POOL3_SCALE = 0.0001


class TrunkFeatures(NamedTuple):
    """The trunk's feature maps of one pass (N×C×h×w): the two skips' inputs, pool5 and the conv7 (fc7) features."""

    pool3: torch.Tensor
    pool4: torch.Tensor
    pool5: torch.Tensor
    conv7: torch.Tensor


class FCN(nn.Module):
    """FCN-32s, -16s, -8s or -8s-at-once, as described by an :class:`FCNConfig`."""

    def __init__(self, config: FCNConfig) -> None:
        super().__init__()
        self.config = config
        paper = config.padding == "paper"
        in_channels = 3
        for block, (width, depth) in enumerate(zip(config.widths, config.depths), start=1):
            for layer in range(1, depth + 1):
                pad = PAPER_PADDING if paper and block == 1 and layer == 1 else 1
                conv = nn.Conv2d(in_channels, width, 3, padding=pad, bias=not config.batch_norm)
                self.add_module(f"conv{block}_{layer}", conv)
                if config.batch_norm:
                    self.add_module(f"bn{block}_{layer}", nn.BatchNorm2d(width))
                self.add_module(f"relu{block}_{layer}", nn.ReLU(inplace=True))
                in_channels = width
            self.add_module(f"pool{block}", nn.MaxPool2d(2, stride=2, ceil_mode=True))

        fc_pad = 0 if paper else config.fc6_kernel // 2
        fc_bias = not config.batch_norm
        self.fc6 = nn.Conv2d(in_channels, config.fc_width, config.fc6_kernel, padding=fc_pad, bias=fc_bias)
        if config.batch_norm:
            self.bn6 = nn.BatchNorm2d(config.fc_width)
        self.relu6 = nn.ReLU(inplace=True)
        self.drop6 = nn.Dropout(config.dropout)
        self.fc7 = nn.Conv2d(config.fc_width, config.fc_width, 1, bias=fc_bias)
        if config.batch_norm:
            self.bn7 = nn.BatchNorm2d(config.fc_width)
        self.relu7 = nn.ReLU(inplace=True)
        self.drop7 = nn.Dropout(config.dropout)

        n = config.num_classes
        self.score_fr = nn.Conv2d(config.fc_width, n, 1)
        if config.fusion in ("fcn16s", "fcn8s"):
            self.score_pool4 = nn.Conv2d(config.widths[3], n, 1)
            self.upscore2 = self._deconv(2)
        if config.fusion == "fcn8s":
            self.score_pool3 = nn.Conv2d(config.widths[2], n, 1)
            self.upscore_pool4 = self._deconv(2)
        final = STAGES[FINAL_STAGE_OF_VARIANT[config.fusion]]
        setattr(self, final.final_layer, self._deconv(final.stride))
        self.reset_parameters()

    def _deconv(self, factor: int) -> nn.ConvTranspose2d:
        padding = 0 if self.config.padding == "paper" else factor // 2
        n = self.config.num_classes
        return nn.ConvTranspose2d(n, n, 2 * factor, stride=factor, padding=padding, bias=False)

    def reset_parameters(self) -> None:
        """Kaiming convs, small score layers, bilinear deconvolutions (as the paper initialises them)."""
        for name, module in self.named_modules():
            if isinstance(module, nn.ConvTranspose2d):
                module.weight.data.copy_(bilinear_weight(module.in_channels, module.kernel_size[0]))
            elif isinstance(module, nn.Conv2d):
                if name.startswith("score"):
                    nn.init.normal_(module.weight, std=0.01)
                else:
                    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    # -- trunk ---------------------------------------------------------------------------------

    def _block(self, h: torch.Tensor, block: int) -> torch.Tensor:
        for layer in range(1, self.config.depths[block - 1] + 1):
            h = getattr(self, f"conv{block}_{layer}")(h)
            if self.config.batch_norm:
                h = getattr(self, f"bn{block}_{layer}")(h)
            h = getattr(self, f"relu{block}_{layer}")(h)
        pooled: torch.Tensor = getattr(self, f"pool{block}")(h)
        return pooled

    def _pools(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Blocks 1–5: the image to pool3, pool4 and pool5 (an inference copy may replace this, see padding_skip)."""
        pool3 = x
        for block in (1, 2, 3):
            pool3 = self._block(pool3, block)
        pool4 = self._block(pool3, 4)
        return pool3, pool4, self._block(pool4, 5)

    def _trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns pool3, pool4 and the conv7 (fc7) features."""
        features = self.features(x)
        return features.pool3, features.pool4, features.conv7

    def features(self, x: torch.Tensor) -> TrunkFeatures:
        """The trunk's feature maps that the score layers and the lessons read: pool3, pool4, pool5 and conv7."""
        pool3, pool4, pool5 = self._pools(x)
        h = self.fc6(pool5)
        if self.config.batch_norm:
            h = self.bn6(h)
        h = self.drop6(self.relu6(h))
        h = self.fc7(h)
        if self.config.batch_norm:
            h = self.bn7(h)
        h = self.drop7(self.relu7(h))
        return TrunkFeatures(pool3, pool4, pool5, h)

    # -- fusion --------------------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The net's own final logits at input resolution (what pytorch-fcn's forward returns)."""
        return self._run(x, all_stages=False).logits()

    def forward_stages(self, x: torch.Tensor) -> FCNOutputs:
        """One pass returning every stage: score maps, fused maps, crops and per-stage logits."""
        return self._run(x, all_stages=True)

    def _run(self, x: torch.Tensor, all_stages: bool) -> FCNOutputs:
        config = self.config
        height, width = x.shape[-2:]
        out = FCNOutputs(input_size=(height, width), stages=config.stages)
        crops: list[Crop] = []
        pool3, pool4, conv7 = self._trunk(x)
        t = out.tensors
        t["score_fr"] = self.score_fr(conv7)
        atonce = config.variant == "fcn8s-atonce"

        if config.fusion in ("fcn16s", "fcn8s"):
            t["upscore2"] = self.upscore2(t["score_fr"])
            t["score_pool4"] = self.score_pool4(pool4 * ATONCE_POOL4_SCALE if atonce else pool4)
            t["fuse_pool4"] = self._fuse(t, "upscore2", "score_pool4", crops)
        if config.fusion == "fcn8s":
            t["upscore_pool4"] = self.upscore_pool4(t["fuse_pool4"])
            t["score_pool3"] = self.score_pool3(pool3 * ATONCE_POOL3_SCALE if atonce else pool3)
            t["fuse_pool3"] = self._fuse(t, "upscore_pool4", "score_pool3", crops)

        own_stage = config.stages[-1]
        final_layer = STAGES[own_stage].final_layer
        coarse = t[STAGES[own_stage].score_map]
        t[final_layer] = getattr(self, final_layer)(coarse)
        offset = config.paper_crops.stage[own_stage] if config.padding == "paper" else 0
        t[f"logits_{own_stage}"] = self._crop(t, final_layer, f"logits_{own_stage}", offset, (height, width), crops)
        out.upsampling[own_stage] = final_layer

        if all_stages:
            for stage in config.stages[:-1]:
                t[f"logits_{stage}"] = self._bilinear_stage(t, stage, (height, width), crops)
                out.upsampling[stage] = "bilinear"
            order = [f"logits_{s}" for s in config.stages]
            out.tensors = {k: v for k, v in t.items() if not k.startswith("logits_")} | {k: t[k] for k in order}
        out.crops = tuple(crops)
        out.deconvolutions = {
            name: Deconvolution(module.weight.detach(), module.stride[0], int(module.padding[0]))
            for name, module in self.named_children() if isinstance(module, nn.ConvTranspose2d)
        }
        return out

    def _fuse(self, t: dict[str, torch.Tensor], upsampled: str, skip: str, crops: list[Crop]) -> torch.Tensor:
        """Align the ×2 upsampled scores with a skip's scores by cropping, then sum them."""
        if self.config.padding == "paper":
            # The reference nets crop the (larger) skip scores to the upsampled map.
            offset = getattr(self.config.paper_crops, skip)
            size = tuple(t[upsampled].shape[-2:])
            t[f"{skip}c"] = self._crop(t, skip, f"{skip}c", offset, size, crops)
            return t[upsampled] + t[f"{skip}c"]
        # 'same' padding: the upsampled map is at most one cell larger; trim it at offset 0.
        size = tuple(t[skip].shape[-2:])
        t[f"{upsampled}c"] = self._crop(t, upsampled, f"{upsampled}c", 0, size, crops)
        return t[f"{upsampled}c"] + t[skip]

    def _bilinear_stage(
        self, t: dict[str, torch.Tensor], stage: Stage, size: tuple[int, int], crops: list[Crop]
    ) -> torch.Tensor:
        """Logits for a stage the net has no learned upsampling for: fixed bilinear, then crop."""
        source, factor = STAGES[stage].score_map, STAGES[stage].stride
        paper = self.config.padding == "paper"
        padding, offset = (0, self.config.paper_crops.stage[stage]) if paper else (factor // 2, 0)
        full = upsampled_size(_size(t[source]), factor, padding)
        if full[0] < offset + size[0] or full[1] < offset + size[1]:
            raise ValueError(f"cannot crop the ×{factor} {source} {full} at offset {offset} to {size}: "
                             "the input is too small for this network")
        crops.append(Crop(f"bilinear{factor}({source})", f"logits_{stage}", offset, full, size))
        return bilinear_upsample(t[source], factor, padding, offset, size)

    @staticmethod
    def _crop(
        t: dict[str, torch.Tensor],
        source: str,
        result: str,
        offset: int,
        size: tuple[int, ...],
        crops: list[Crop],
    ) -> torch.Tensor:
        tensor = t[source]
        h, w = int(size[0]), int(size[1])
        if tensor.shape[-2] < offset + h or tensor.shape[-1] < offset + w:
            raise ValueError(
                f"cannot crop {source} {tuple(tensor.shape[-2:])} at offset {offset} to {(h, w)}: "
                "the input is too small for this network"
            )
        crops.append(Crop(source, result, offset, _size(tensor), (h, w)))
        return tensor[..., offset : offset + h, offset : offset + w]


def build_fcn(config: FCNConfig) -> FCN:
    """Builds an FCN (random init) in eval mode."""
    return FCN(config).eval()


def _size(tensor: torch.Tensor) -> tuple[int, int]:
    """(height, width) of an N×C×H×W tensor."""
    return int(tensor.shape[-2]), int(tensor.shape[-1])
