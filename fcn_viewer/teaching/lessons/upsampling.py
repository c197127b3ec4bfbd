"""Learned vs bilinear upsampling: each deconvolution's kernel against the bilinear kernel it started from, and the
final mask recomputed from the stored score maps with every learned kernel swapped for bilinear — no new forward pass,
because after the score layers the FCN tail is linear (no Qt)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from fcn_viewer.model.outputs import Deconvolution, FCNOutputs
from fcn_viewer.model.upsample import bilinear_weight, is_bilinear
from fcn_viewer.options import DEFAULT_TOLERANCE
from fcn_viewer.teaching.contributions import fusion_path, split_logits
from fcn_viewer.teaching.ground_truth import StageTruth, score_mask

KERNELS_SHOWN = {"learned": "the net's kernels", "bilinear": "bilinear kernels"}  # the two masks, as captions say


@dataclass(frozen=True)
class KernelComparison:
    """One deconvolution of the net: its learned C×C×k×k weight beside the bilinear weight of the same size."""

    layer: str
    factor: int
    learned: np.ndarray
    bilinear: np.ndarray

    @property
    def relative_difference(self) -> float:
        """‖learned − bilinear‖ / ‖bilinear‖ over the whole C×C×k×k weight (0: still the bilinear start)."""
        return float(np.linalg.norm(self.learned - self.bilinear) / np.linalg.norm(self.bilinear))

    @property
    def fixed(self) -> bool:
        """The kernel is the bilinear one to float rounding: fixed in training (the final upsampling of the paper's
        nets and of the bundled ones), not learned."""
        return is_bilinear(torch.from_numpy(self.learned))

    @property
    def off_diagonal_share(self) -> float:
        """Share of the learned weight's energy (sum of squares) that mixes one class into another (0 for bilinear)."""
        energy = (self.learned.astype(np.float64) ** 2).sum(axis=(2, 3))
        total = float(energy.sum())
        return float((total - np.trace(energy)) / total) if total else 0.0

    def diagonal_mean(self) -> np.ndarray:
        """k×k: the mean over classes of each class's kernel onto itself (what to draw beside the bilinear kernel)."""
        channels = self.learned.shape[0]
        mean: np.ndarray = self.learned[np.arange(channels), np.arange(channels)].mean(axis=0)
        return mean

    def bilinear_kernel(self) -> np.ndarray:
        """k×k: the bilinear kernel of this size."""
        kernel: np.ndarray = self.bilinear[0, 0]
        return kernel

    def tiles(self) -> np.ndarray:
        """(C·k)×(C·k): every class-to-class kernel as a tile, row = input class, column = output class."""
        channels, _, size, _ = self.learned.shape
        tiles: np.ndarray = self.learned.transpose(0, 2, 1, 3).reshape(channels * size, channels * size)
        return tiles


@dataclass(frozen=True)
class UpsamplingLesson:
    """The kernels, and the final stage's mask with the learned kernels and with bilinear ones (scored with a label)."""

    stage: str
    kernels: tuple[KernelComparison, ...]
    learned_mask: np.ndarray
    bilinear_mask: np.ndarray
    replay_error: float
    truth: dict[str, StageTruth] | None = None

    @property
    def changed(self) -> np.ndarray:
        """H×W bool: the pixels whose class changes when the learned kernels are replaced by bilinear ones."""
        changed: np.ndarray = self.learned_mask != self.bilinear_mask
        return changed

    @property
    def changed_pixels(self) -> int:
        return int(self.changed.sum())

    @property
    def changed_fraction(self) -> float:
        return self.changed_pixels / self.changed.size

    def kernels_in_words(self) -> str:
        """E.g. ``learned kernels differ from bilinear by upscore2 30%, upscore_pool4 24%; upscore8 is fixed bilinear
        (not learned)``."""
        learned = [f"{k.layer} {k.relative_difference:.0%}" for k in self.kernels if not k.fixed]
        fixed = [k.layer for k in self.kernels if k.fixed]
        parts = [f"learned kernels differ from bilinear by {', '.join(learned)}"] if learned else []
        if fixed:
            parts.append(f"{', '.join(fixed)} {'is' if len(fixed) == 1 else 'are'} fixed bilinear (not learned)")
        return "; ".join(parts)

    def numbers(self) -> dict[str, Any]:
        """What `fcn-viewer figure --lesson upsampling --json` writes."""
        result: dict[str, Any] = {
            "stage": self.stage,
            "kernels": [
                {"layer": k.layer, "factor": k.factor, "size": int(k.learned.shape[-1]), "fixed": k.fixed,
                 "relative_difference": k.relative_difference, "off_diagonal_share": k.off_diagonal_share}
                for k in self.kernels
            ],
            "changed_pixels": self.changed_pixels,
            "changed_fraction": self.changed_fraction,
            "pixels": int(self.changed.size),
            "replay_error": self.replay_error,
        }
        if self.truth is not None:
            result["metrics"] = {name: {"pixel_accuracy": t.pixel_accuracy, "mean_iou": t.mean_iou,
                                        "boundary_f1": t.boundary_f1} for name, t in self.truth.items()}
        return result


def compare_kernels(outputs: FCNOutputs) -> tuple[KernelComparison, ...]:
    """Each learned deconvolution of the pass, coarse to fine, beside its bilinear counterpart."""
    comparisons = []
    for layer, _ in fusion_path(outputs):
        deconvolution = outputs.deconvolutions[layer]
        learned = deconvolution.weight.detach().float().cpu()
        bilinear = bilinear_weight(learned.shape[0], learned.shape[-1])
        comparisons.append(KernelComparison(layer, deconvolution.stride, learned.numpy(), bilinear.numpy()))
    return tuple(comparisons)


def with_bilinear_kernels(outputs: FCNOutputs) -> FCNOutputs:
    """``outputs`` whose deconvolutions are bilinear ones of the same size, stride and padding (tensors shared)."""
    layers = {
        name: Deconvolution(bilinear_weight(layer.weight.shape[0], layer.weight.shape[-1]), layer.stride, layer.padding)
        for name, layer in outputs.deconvolutions.items()
    }
    return replace(outputs, deconvolutions=layers)


def bilinear_logits(outputs: FCNOutputs) -> torch.Tensor:
    """C×H×W final logits recomputed from the pass's stored score maps with bilinear kernels in place of the learned."""
    return split_logits(with_bilinear_kernels(outputs)).total()


def upsampling_lesson(
    outputs: FCNOutputs,
    label: np.ndarray | None = None,
    num_classes: int = 0,
    ignore_index: int = 255,
    tolerance: float = DEFAULT_TOLERANCE,
) -> UpsamplingLesson:
    """The kernels and both masks of the final stage; scored as `evaluate` scores when ``label`` is given.

    ``replay_error`` is the largest difference between the stored logits and the ones replayed from the stored
    score maps with the learned kernels: float rounding only, so the bilinear replay differs by the kernels alone.
    """
    learned = split_logits(outputs)
    bilinear = bilinear_logits(outputs)
    learned_mask = learned.logits.argmax(0).numpy().astype(np.int32)
    bilinear_mask = bilinear.argmax(0).numpy().astype(np.int32)
    truth = None
    if label is not None:
        truth = {name: score_mask(mask, label, num_classes, ignore_index, tolerance)
                 for name, mask in (("learned", learned_mask), ("bilinear", bilinear_mask))}
    return UpsamplingLesson(outputs.final_stage, compare_kernels(outputs), learned_mask, bilinear_mask,
                            learned.max_error(), truth)
