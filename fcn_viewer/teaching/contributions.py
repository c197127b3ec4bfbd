"""Each score map's exact share of the final logits: after the score layers the FCN tail is linear (bias-free
deconvolutions, crops, sums), so the logits split into one additive term per score map, without a new forward pass.

For FCN-8s: ``logits_8s = T7(score_fr) + T4(score_pool4) + T3(score_pool3)``. Each score layer's bias lies in its own
term, and the at-once net's 0.01 / 0.0001 input scaling in T4 / T3, since both are inside the stored score maps.
Switching a skip off is dropping its term. No Qt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from fcn_viewer.classes import Color
from fcn_viewer.model.outputs import Deconvolution, FCNOutputs
from fcn_viewer.model.upsample import is_bilinear
from fcn_viewer.options import DEFAULT_TOLERANCE
from fcn_viewer.teaching.compare import (
    DEFAULT_BOUNDARY_RADIUS,
    MaskChange,
    dimmed_level,
    marked_grey,
    mask_change,
    skip_words,
)
from fcn_viewer.teaching.ground_truth import AVERAGE_NOTE, StageTruth, drop_sentence, percent, score_mask

# The learned path of each fusion layout, coarse to fine: (upsampling layer, the skip's score map joining after it).
FUSION_PATHS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "fcn32s": (("upscore", None),),
    "fcn16s": (("upscore2", "score_pool4"), ("upscore16", None)),
    "fcn8s": (("upscore2", "score_pool4"), ("upscore_pool4", "score_pool3"), ("upscore8", None)),
}
# The coarse map each upsampling layer reads.
LAYER_INPUTS = {"upscore": "score_fr", "upscore2": "score_fr", "upscore16": "fuse_pool4",
                "upscore_pool4": "fuse_pool4", "upscore8": "fuse_pool3"}
TERM_TITLES = {"score_fr": "conv7 (T7)", "score_pool4": "pool4 skip (T4)", "score_pool3": "pool3 skip (T3)"}
SKIP_TITLES = {"score_pool4": "pool4 skip", "score_pool3": "pool3 skip"}
FLIP_COLORS: dict[str, Color] = {"score_pool4": (230, 159, 0), "score_pool3": (204, 121, 167)}  # Okabe–Ito
NEGATIVE_COLOR = np.array((33, 102, 172), dtype=np.float32)  # blue below zero, white at zero, red above
POSITIVE_COLOR = np.array((178, 24, 43), dtype=np.float32)


def fusion_path(outputs: FCNOutputs) -> tuple[tuple[str, str | None], ...]:
    """The path of the net that made ``outputs``, told by its deconvolutions; an error if it kept none."""
    layers = outputs.deconvolutions
    if not layers:
        raise ValueError("these outputs carry no deconvolution weights, so the logits cannot be split into terms")
    fusion = "fcn8s" if "upscore_pool4" in layers else "fcn16s" if "upscore2" in layers else "fcn32s"
    return FUSION_PATHS[fusion]


def _cropped(outputs: FCNOutputs, source: str, tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` cropped as the pass cropped ``source`` (unchanged where the pass did not crop it)."""
    crop = next((c for c in outputs.crops if c.source == source), None)
    if crop is None:
        return tensor
    if tuple(tensor.shape[-2:]) != crop.source_size:
        raise ValueError(f"{source} is {tuple(tensor.shape[-2:])} here but was {crop.source_size} in the pass")
    (h, w), o = crop.size, crop.offset
    return tensor[..., o : o + h, o : o + w]


def _upsampled(tensor: torch.Tensor, layer: Deconvolution) -> torch.Tensor:
    return F.conv_transpose2d(tensor, layer.weight.to(tensor.device, tensor.dtype), stride=layer.stride, padding=layer.padding)


@dataclass(frozen=True)
class Contributions:
    """One image's final logits (C×H×W) and their additive terms, one per score map, coarse to fine."""

    stage: str
    logits: torch.Tensor
    terms: dict[str, torch.Tensor]

    @property
    def skips(self) -> tuple[str, ...]:
        """The skip score maps (``score_pool4``, ``score_pool3``) this net fuses."""
        return tuple(name for name in self.terms if name != "score_fr")

    def total(self, without: Sequence[str] = ()) -> torch.Tensor:
        """The sum of the terms, leaving out those named in ``without`` (the skip switches)."""
        kept = [term for name, term in self.terms.items() if name not in without]
        return torch.stack(kept).sum(0) if kept else torch.zeros_like(self.logits)

    def mask(self, without: Sequence[str] = ()) -> np.ndarray:
        """H×W uint8 argmax of :meth:`total`: the final mask with the skips in ``without`` switched off."""
        return self.total(without).argmax(0).to(torch.uint8).numpy()

    def max_error(self) -> float:
        """Largest ``|Σ terms − logits|``: float rounding only."""
        return float((self.total() - self.logits).abs().max())

    def sum_note(self) -> str | None:
        """How closely the terms add up to the logits, in words; None for a net without skips, whose one term is its
        logits."""
        if not self.skips:
            return None
        error = self.max_error()
        if error == 0:
            return "the terms sum exactly to the logits"
        return f"the terms sum to the logits within {error:.1e} (float rounding)"

    def class_maps(self, class_index: int | None = None) -> dict[str, np.ndarray]:
        """Each term's H×W value for ``class_index``, or (``None``) for the class the net predicts at each pixel."""
        if class_index is None:
            picked = self.logits.argmax(0, keepdim=True)
            return {name: term.gather(0, picked)[0].numpy() for name, term in self.terms.items()}
        return {name: term[class_index].numpy() for name, term in self.terms.items()}


@torch.inference_mode()
def split_logits(outputs: FCNOutputs, index: int = 0) -> Contributions:
    """The final logits of image ``index`` of a pass, split into one term per score map (float32, on the CPU).

    Each term is its score map carried alone through the rest of the net's own path: its deconvolutions and
    crops, exactly as :class:`~fcn_viewer.model.fcn.FCN` applied them; the terms are upsampled together.
    """
    path = fusion_path(outputs)
    maps = {name: tensor[index : index + 1].float().cpu() for name, tensor in outputs.tensors.items()}
    carried: list[tuple[str, torch.Tensor]] = [("score_fr", maps["score_fr"])]
    for layer, skip in path:
        joined = _upsampled(torch.cat([term for _, term in carried]), outputs.deconvolutions[layer])
        joined = _cropped(outputs, layer, joined)
        carried = [(name, joined[i : i + 1]) for i, (name, _) in enumerate(carried)]
        if skip is not None:
            carried.append((skip, _cropped(outputs, skip, maps[skip])))
    stage = outputs.final_stage
    return Contributions(stage, maps[f"logits_{stage}"][0], {name: term[0] for name, term in carried})


def skip_flips(contributions: Contributions, radius: float = DEFAULT_BOUNDARY_RADIUS) -> dict[str, MaskChange]:
    """Per skip, the pixels whose class changed when its term was added to those before it (conv7 first), and
    those of them within ``radius`` px of a class boundary of the mask after adding it."""
    flips: dict[str, MaskChange] = {}
    names = list(contributions.terms)
    for position in range(1, len(names)):
        before = contributions.mask(without=names[position:])
        after = contributions.mask(without=names[position + 1 :])
        flips[names[position]] = mask_change(after, before, radius)
    return flips


def flip_picture(flips: dict[str, MaskChange], level: np.ndarray) -> np.ndarray:
    """The dimmed grey photo (its ``level``, see :func:`~fcn_viewer.teaching.compare.dimmed_level`) with the pixels
    each skip flipped in that skip's colour (:data:`FLIP_COLORS`; the pool3 skip's on top)."""
    return marked_grey(level, [(change.changed, FLIP_COLORS[name]) for name, change in flips.items()])


def describe_flip(name: str, change: MaskChange) -> str:
    """E.g. ``pool3 skip flipped 1,234 px (5.6 %), 81 % of them within 3 px of a class boundary``."""
    near = f"{change.near_count / change.count:.0%}" if change.count else "–"
    return (f"{SKIP_TITLES[name]} flipped {change.count:,} px ({change.fraction:.1%}), {near} of them within "
            f"{change.radius:g} px of a class boundary")


@dataclass(frozen=True)
class SkipVariant:
    """The final mask with some skips switched off, how many pixels it changes, and with a label its scores."""

    without: tuple[str, ...]
    mask: np.ndarray
    changed: int
    truth: StageTruth | None = None

    @property
    def title(self) -> str:
        if not self.without:
            return "all skips on"
        if len(self.without) > 1:
            return "conv7 only (no skips)"
        return "without " + " and ".join(SKIP_TITLES[name] for name in self.without)


def skip_variants(
    contributions: Contributions,
    label: np.ndarray | None = None,
    num_classes: int = 0,
    ignore_index: int = 255,
    tolerance: float = DEFAULT_TOLERANCE,
) -> list[SkipVariant]:
    """Every combination of the skip switches (all on first); scored as `evaluate` scores when ``label`` is given."""
    skips = contributions.skips
    combinations = [tuple(name for bit, name in enumerate(skips) if mask_bits >> bit & 1)
                    for mask_bits in range(2 ** len(skips))]
    full = contributions.mask()
    variants = []
    for without in combinations:
        mask = contributions.mask(without)
        truth = score_mask(mask, label, num_classes, ignore_index, tolerance) if label is not None else None
        variants.append(SkipVariant(without, mask, int((mask != full).sum()), truth))
    return variants


@dataclass(frozen=True)
class BilinearStage:
    """The net's 32s stage beside the "conv7 only" switch setting: both are the conv7 scores alone, but the stage
    brings them to the image by a fixed bilinear ×32, the switch setting by the net's own upsamplings (``chain``,
    e.g. ×2, ×2, ×8; ``fixed`` marks those kept bilinear in training), so their masks, and their scores, differ."""

    chain: tuple[int, ...]
    fixed: tuple[bool, ...]
    mask: np.ndarray
    changed: int  # pixels that differ from the mask with all skips on, as each switch setting counts them
    truth: StageTruth | None = None

    title = "32s stage (bilinear ×32)"

    def note(self, conv7_only: SkipVariant) -> str:
        """Why the two differ, with this image's numbers."""
        differ = int((self.mask != conv7_only.mask).sum())
        scores = ""
        if self.truth is not None and conv7_only.truth is not None:
            scores = (f", {percent(conv7_only.truth.pixel_accuracy)} against {percent(self.truth.pixel_accuracy)} "
                      "pixel accuracy here")
        return (f"Conv7 only is not the 32s stage: both are the conv7 scores alone, but conv7 only goes through this "
                f"net's own {self.chain_in_words()}, the 32s stage (Stages, Compare, Ground Truth) through a "
                f"fixed bilinear ×32: {differ:,} px differ{scores}.")

    def chain_in_words(self) -> str:
        """E.g. ``×2/×2/×8 upsamplings (×2/×2 learned, ×8 fixed bilinear)``."""
        pairs = list(zip(self.chain, self.fixed, strict=True))
        chain = "/".join(f"×{factor}" for factor in self.chain)
        learned = "/".join(f"×{factor}" for factor, fixed in pairs if not fixed)
        kept = "/".join(f"×{factor}" for factor, fixed in pairs if fixed)
        if not kept:
            return f"learned {chain} upsamplings"
        if not learned:
            return f"{chain} upsamplings (all fixed bilinear)"
        return f"{chain} upsamplings ({learned} learned, {kept} fixed bilinear)"


def bilinear_stage(
    outputs: FCNOutputs,
    contributions: Contributions,
    label: np.ndarray | None = None,
    num_classes: int = 0,
    ignore_index: int = 255,
    tolerance: float = DEFAULT_TOLERANCE,
    index: int = 0,
) -> BilinearStage | None:
    """The 32s stage of a net with skips, which the pass upsampled by a fixed bilinear ×32; None for a net whose 32s
    stage is its own (FCN-32s: conv7 only is the stage itself)."""
    if not contributions.skips or outputs.upsampling.get("32s") != "bilinear":
        return None
    layers = [outputs.deconvolutions[layer] for layer, _ in fusion_path(outputs)]
    chain = tuple(layer.stride for layer in layers)
    fixed = tuple(is_bilinear(layer.weight) for layer in layers)
    mask = outputs.logits("32s")[index].float().cpu().argmax(0).to(torch.uint8).numpy()
    truth = score_mask(mask, label, num_classes, ignore_index, tolerance) if label is not None else None
    return BilinearStage(chain, fixed, mask, int((mask != contributions.mask()).sum()), truth)


def _layer(skip: str) -> str:
    """``score_pool3`` → ``pool3``."""
    return skip.removeprefix("score_")


def skip_drops(variants: Sequence[SkipVariant], skips: Sequence[str]) -> list[str]:
    """In words, wherever on this image switching skips on lowers a score: for every pair of scored switch settings
    where one adds skips to the other, a :func:`~fcn_viewer.teaching.ground_truth.drop_sentence` (single skips
    first, from conv7 alone up), then :data:`~fcn_viewer.teaching.ground_truth.AVERAGE_NOTE` once; nothing where
    none lowers a score.

    ``skips`` are the net's skip score maps, coarse to fine (:attr:`Contributions.skips`).
    """
    found: list[tuple[tuple[int, int, int], str]] = []
    for fewer in variants:
        for more in variants:
            added = [name for name in skips if name in fewer.without and name not in more.without]
            if not added or not set(more.without) <= set(fewer.without) or fewer.truth is None or more.truth is None:
                continue
            base = [_layer(name) for name in skips if name not in fewer.without]
            to = f"conv7 and {skip_words(base)}" if base else "conv7" if len(added) > 1 else "conv7 alone"
            change = f"adding {skip_words([_layer(name) for name in added])} to {to}"
            sentence = drop_sentence(change, fewer.truth.summary, more.truth.summary)
            if sentence is not None:
                found.append(((len(added), len(base), skips.index(added[0])), sentence))
    found.sort(key=lambda pair: pair[0])
    return [sentence for _, sentence in found] + ([AVERAGE_NOTE] if found else [])


def shared_limit(maps: dict[str, np.ndarray], percentile: float = 99.5) -> float:
    """One colour-scale half-width for all ``maps``: a high percentile of their absolute values (never 0)."""
    values = np.abs(np.concatenate([m.ravel() for m in maps.values()]))
    return max(float(np.percentile(values, percentile)), 1e-6) if values.size else 1.0


def diverging_picture(values: np.ndarray, limit: float) -> np.ndarray:
    """H×W values as RGB on a diverging scale: white at zero, blue down to ``-limit``, red up to ``+limit``."""
    share = np.clip(values / limit, -1.0, 1.0)[..., None].astype(np.float32)
    white = np.float32(255.0)
    toward = np.where(share >= 0, POSITIVE_COLOR, NEGATIVE_COLOR)
    return (white + (toward - white) * np.abs(share)).round().astype(np.uint8)


def diverging_bar(limit: float, width: int = 256) -> np.ndarray:
    """A 1×``width`` colour bar of :func:`diverging_picture` from ``-limit`` to ``+limit``."""
    return diverging_picture(np.linspace(-limit, limit, width)[None], limit)


@dataclass(frozen=True)
class ContributionAnalysis:
    """What the contributions view shows of one image that does not depend on the class chosen: the split, each
    skip's flips over the dimmed photo, and every skip-switch variant (scored with a label)."""

    contributions: Contributions
    flips: dict[str, MaskChange]
    flip_picture: np.ndarray
    variants: list[SkipVariant]
    bilinear: BilinearStage | None = None  # the 32s stage, beside "conv7 only"

    def variant(self, without: Sequence[str]) -> SkipVariant:
        """The variant with exactly the skips in ``without`` switched off."""
        wanted = set(without) & set(self.contributions.skips)
        return next(v for v in self.variants if set(v.without) == wanted)

    def drops(self) -> list[str]:
        """Where on this image switching skips on lowers a score, in words (:func:`skip_drops`)."""
        return skip_drops(self.variants, self.contributions.skips)


def analyse_contributions(
    contributions: Contributions,
    photo: np.ndarray,
    label: np.ndarray | None = None,
    num_classes: int = 0,
    ignore_index: int = 255,
    tolerance: float = DEFAULT_TOLERANCE,
    radius: float = DEFAULT_BOUNDARY_RADIUS,
    outputs: FCNOutputs | None = None,
) -> ContributionAnalysis:
    """Flips, switch variants and (given the pass's ``outputs``) the 32s stage beside conv7 only, scored against
    ``label`` when there is one."""
    flips = skip_flips(contributions, radius)
    variants = skip_variants(contributions, label, num_classes, ignore_index, tolerance)
    bilinear = (bilinear_stage(outputs, contributions, label, num_classes, ignore_index, tolerance)
                if outputs is not None else None)
    return ContributionAnalysis(contributions, flips, flip_picture(flips, dimmed_level(photo)), variants, bilinear)


TermScale = Literal["shared", "own"]


@dataclass(frozen=True)
class TermPictures:
    """Each term's map for one class (``None``: the predicted class per pixel) and its picture: all on one shared
    scale (``limit``), or (``scale`` "own") each on its own, so a small term such as pool3's is readable too."""

    class_index: int | None
    maps: dict[str, np.ndarray]
    limit: float
    pictures: dict[str, np.ndarray]
    scale: TermScale = "shared"
    limits: dict[str, float] = field(default_factory=dict)

    def limit_of(self, name: str) -> float:
        """The half-width of the scale term ``name`` is drawn on."""
        return self.limits.get(name, self.limit)

    def readout(self, row: int, column: int) -> dict[str, float]:
        """The terms at one pixel, by score map name."""
        return {name: float(values[row, column]) for name, values in self.maps.items()}


def term_pictures(contributions: Contributions, class_index: int | None = None,
                  scale: TermScale = "shared") -> TermPictures:
    """The terms of ``class_index`` as pictures: on one scale for all (``shared``), or each on its own (``own``:
    its own :func:`shared_limit`)."""
    maps = contributions.class_maps(class_index)
    limit = shared_limit(maps)
    limits = {name: shared_limit({name: m}) if scale == "own" else limit for name, m in maps.items()}
    pictures = {name: diverging_picture(m, limits[name]) for name, m in maps.items()}
    return TermPictures(class_index, maps, limit, pictures, scale, limits)
