"""The SegNet-layout dataset and the joint augmentation that must keep image and label aligned."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from fcn_viewer.data.folder import SegmentationFolder
from fcn_viewer.errors import DatasetError
from fcn_viewer.train.augment import AugmentConfig, ResidentSplit, augment_batch
from tests.helpers import CAMVID, requires_camvid


def _write_split(root: Path, split: str, stems: dict[str, str], size: tuple[int, int] = (12, 16)) -> None:
    (root / split).mkdir(parents=True)
    (root / f"{split}annot").mkdir()
    for index, (stem, suffix) in enumerate(stems.items()):
        label = np.full(size, index % 11, dtype=np.uint8)
        label[0, :] = 11  # a void row
        Image.fromarray(label).save(root / f"{split}annot" / f"{stem}.png")
        Image.fromarray(np.full((*size, 3), index * 20, dtype=np.uint8)).save(root / split / f"{stem}{suffix}")


def test_pairs_by_stem_with_any_image_extension(tmp_path: Path) -> None:
    _write_split(tmp_path, "val", {"b": ".png", "a": ".jpg", "c": ".bmp"})
    (tmp_path / "val" / "orphan.png").write_bytes((tmp_path / "val" / "b.png").read_bytes())
    (tmp_path / "val" / "notes.txt").write_text("x")
    dataset = SegmentationFolder(tmp_path, "val")
    assert [s.stem for s in dataset.samples] == ["a", "b", "c"]
    image, label = dataset[1]
    assert image.shape == (12, 16, 3) and image.dtype == np.uint8
    assert label.shape == (12, 16) and (label[0] == 11).all() and (label[1:] == 0).all()


def test_missing_split_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="test: missing"):
        SegmentationFolder(tmp_path, "test")


def test_size_mismatch_names_the_label(tmp_path: Path) -> None:
    _write_split(tmp_path, "val", {"a": ".png"})
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "valannot" / "a.png")
    with pytest.raises(DatasetError, match=r"a.png: label is"):
        SegmentationFolder(tmp_path, "val")[0]


@requires_camvid()
def test_camvid_splits_have_the_documented_sizes() -> None:
    assert len(SegmentationFolder(CAMVID, "train")) == 367
    val = SegmentationFolder(CAMVID, "val")
    assert len(val) == 101
    image, label = val[0]
    assert image.shape == (360, 480, 3) and label.max() <= 11


def _coded_pair(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A label of random blocks and an image whose red channel encodes the label (20 × class)."""
    rng = np.random.default_rng(seed)
    label = np.kron(rng.integers(1, 11, (6, 8)), np.ones((16, 16), dtype=np.int64)).astype(np.uint8)
    image = np.zeros((3, *label.shape), dtype=np.uint8)
    image[0] = label * 20
    return torch.from_numpy(image), torch.from_numpy(label)


def augment_pair(
    image: torch.Tensor, label: torch.Tensor, config: AugmentConfig, generator: torch.Generator, ignore_index: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """One photo through the batched augmentation."""
    split = ResidentSplit.stack([(image, label)], ignore_index)
    pixels, labels = augment_batch(split, torch.tensor([0]), config, generator, ignore_index)
    return pixels[0], labels[0]


@pytest.mark.parametrize("seed", range(6))
def test_augmentation_keeps_image_and_label_aligned(seed: int) -> None:
    image, label = _coded_pair(seed)
    config = AugmentConfig(crop=48, min_scale=0.5, max_scale=2.0, brightness=0, contrast=0, saturation=0)
    generator = torch.Generator().manual_seed(seed)
    pixels, labels = augment_pair(image, label, config, generator, ignore_index=11)
    assert pixels.shape == (3, 48, 48) and labels.shape == (48, 48)
    assert set(labels.unique().tolist()) <= set(range(12))  # nearest: no invented classes
    # Away from block edges (where bilinear blends colours) the image still encodes the label.
    uniform = F.max_pool2d(labels[None, None].float(), 5, 1, 2) == -F.max_pool2d(-labels[None, None].float(), 5, 1, 2)
    inside = uniform[0, 0] & (labels != 11)
    inside[:2], inside[-2:], inside[:, :2], inside[:, -2:] = False, False, False, False  # crop edges: unknown neighbours
    decoded = torch.round(pixels[0] * 255 / 20).long()
    assert inside.sum() > 100
    assert torch.equal(decoded[inside], labels[inside])


def test_padding_outside_the_image_is_void() -> None:
    image, label = _coded_pair(0)
    config = AugmentConfig(crop=200, min_scale=1.0, max_scale=1.0, flip=False)
    _, labels = augment_pair(image, label, config, torch.Generator().manual_seed(0), ignore_index=11)
    assert (labels[96:, :] == 11).all() and (labels[:, 128:] == 11).all()


def test_photometric_jitter_changes_only_the_image() -> None:
    image, label = _coded_pair(1)
    plain = AugmentConfig(crop=32, brightness=0, contrast=0, saturation=0)
    jitter = replace(plain, brightness=0.5, contrast=0.5, saturation=0.5)
    a = augment_pair(image, label, plain, torch.Generator().manual_seed(3), 11)
    b = augment_pair(image, label, jitter, torch.Generator().manual_seed(3), 11)
    assert torch.equal(a[1], b[1]) and not torch.equal(a[0], b[0])


def test_a_batch_of_photos_of_different_sizes_keeps_each_photo_with_its_own_label() -> None:
    pairs = [_coded_pair(seed) for seed in range(3)]
    pairs[1] = (pairs[1][0][:, :64, :80], pairs[1][1][:64, :80])  # a smaller photo: padded in the split
    split = ResidentSplit.stack(pairs, 11)
    config = AugmentConfig(crop=40, min_scale=1.0, max_scale=1.0, flip=False, brightness=0, contrast=0, saturation=0)
    pixels, labels = augment_batch(split, torch.tensor([2, 1, 0]), config, torch.Generator().manual_seed(5), 11)
    assert pixels.shape == (3, 3, 40, 40) and labels.shape == (3, 40, 40)
    valid = labels != 11
    assert torch.equal(torch.round(pixels[:, 0] * 255 / 20).long()[valid], labels[valid])
    assert valid.float().mean() > 0.9  # at scale 1 a 40-px crop fits inside every photo


def test_a_seeded_generator_draws_the_same_batch_again() -> None:
    split = ResidentSplit.stack([_coded_pair(seed) for seed in range(4)], 11)
    config = AugmentConfig(crop=32)
    first = augment_batch(split, torch.tensor([3, 0]), config, torch.Generator().manual_seed(9), 11)
    second = augment_batch(split, torch.tensor([3, 0]), config, torch.Generator().manual_seed(9), 11)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
