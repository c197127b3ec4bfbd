"""What a model was trained on, in words, and a simple signal for a photo that looks unlike it (no Qt).

The signal is the mean max-softmax of the finest stage: the share of its probability a net puts on its
chosen class, averaged over the pixels. On photos like its training data a net is confident over most of
the image; on a photo from elsewhere (a portrait for a road-scene net, noise) that mean drops. A model
stores, when it is exported, the 5th percentile of this number over its own validation images; a photo
below it gets a note. About one in twenty of the model's own validation photos gets the note too: it is a
hint, never a verdict.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from fcn_viewer.classes import CAMVID_CLASSES, VOC_CLASSES

if TYPE_CHECKING:
    from fcn_viewer.data import SegmentationDataset
    from fcn_viewer.inference import Segmenter
    from fcn_viewer.weights.meta import ModelMeta

DOMAINS = {
    "camvid": "CamVid: dashcam road scenes, Cambridge UK, 11 classes",
    "pascal-voc": "PASCAL VOC 2011: 20 object classes + background",  # the paper's nets
    "voc": "PASCAL VOC 2012: 20 object classes + background",  # nets trained here on VOCdevkit/VOC2012
}
FAMILIARITY_PERCENTILE = 5.0
FAMILIARITY_STATISTIC = "mean max-softmax of the finest stage"


def domain_of(meta: ModelMeta) -> str:
    """The model's domain as stored in its metadata; for files without it, recognised by the class list."""
    if meta.domain:
        return meta.domain
    if tuple(meta.classes) == tuple(VOC_CLASSES):
        return DOMAINS["pascal-voc"]
    if tuple(meta.classes) == tuple(CAMVID_CLASSES):
        return DOMAINS["camvid"]
    return f"{len(meta.classes)} classes; training data not recorded"


def mean_confidence(confidence: np.ndarray) -> float:
    """The signal: an H×W max-softmax map (e.g. ``Segmentation.confidence()``) averaged over its pixels."""
    return float(np.mean(confidence, dtype=np.float64))


def familiarity(confidences: Iterable[float], split: str) -> dict[str, Any]:
    """What :attr:`ModelMeta.familiarity` stores: the threshold (5th percentile of the per-image signal over
    ``split``) and how it was measured."""
    values = np.asarray(list(confidences), dtype=np.float64)
    if values.size == 0:
        raise ValueError("no images to measure the familiarity threshold on")
    return {
        "statistic": FAMILIARITY_STATISTIC,
        "percentile": FAMILIARITY_PERCENTILE,
        "threshold": round(float(np.percentile(values, FAMILIARITY_PERCENTILE)), 4),
        "median": round(float(np.median(values)), 4),
        "split": split,
        "images": int(values.size),
    }


def threshold_of(meta: ModelMeta) -> float | None:
    value = meta.familiarity.get("threshold")
    return float(value) if isinstance(value, (int, float)) else None


PAPER_VOC_MODEL = "fcn8s-heavy-pascal"  # what the command line's note suggests for everyday photos
Where = Literal["viewer", "command line"]


def unfamiliar_note(meta: ModelMeta, confidence: float, where: Where = "viewer") -> str | None:
    """A short note when ``confidence`` (:func:`mean_confidence` of a photo) is below the model's stored
    threshold; None when it is not, or when the model stores no threshold. A non-VOC model's note suggests the
    paper's VOC models the way ``where`` reaches them: the viewer's Model menu, or the command line's --model."""
    threshold = threshold_of(meta)
    if threshold is None or confidence >= threshold:
        return None
    split = meta.familiarity.get("split", "validation")
    domain = domain_of(meta)
    how = ("(Model menu)" if where == "viewer"
           else f"(--model {PAPER_VOC_MODEL}, with --download the first time; `fcn-viewer models` lists them)")
    suggestion = (
        f" For everyday photos of people, animals and objects try the paper's PASCAL VOC models {how}."
        if not domain.startswith("PASCAL VOC")
        else ""
    )
    return (
        f"This photo looks unlike {meta.name}'s training data ({domain}): mean confidence {confidence:.1%}, "
        f"below {threshold:.1%}, the {FAMILIARITY_PERCENTILE:g}th percentile of its own {split} images. "
        f"Read its masks with care.{suggestion}"
    )


def measure_familiarity(segmenter: Segmenter, dataset: SegmentationDataset, split: str) -> dict[str, Any]:
    """Runs the net on every image of ``dataset`` and returns :func:`familiarity` of their signals."""
    confidences = []
    for index in range(len(dataset)):
        image, _ = dataset[index]
        confidences.append(mean_confidence(segmenter.segment(image).confidence()))
    return familiarity(confidences, split)
