"""Outputs that must not lie: masks past 256 classes, NaN scores, and flat memory over a long batch."""

from __future__ import annotations

import resource
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fcn_viewer.cli.main import main
from fcn_viewer.inference import Segmenter
from fcn_viewer.model import build_fcn
from fcn_viewer.weights.loader import LoadedModel
from fcn_viewer.weights.meta import ModelMeta, Preprocessing
from fcn_viewer.weights.native import save_native
from tests.helpers import gradient_image, tiny_compact_config

CLASSES = 300


def wide_model() -> LoadedModel:
    """A tiny FCN-8s with 300 classes whose every pixel is class 299."""
    config = tiny_compact_config("fcn8s", CLASSES)
    model = build_fcn(config)
    with torch.no_grad():
        model.score_fr.weight.zero_()
        model.score_fr.bias.zero_()
        model.score_fr.bias[CLASSES - 1] = 50.0
    palette = tuple((i % 256, (7 * i) % 256, (13 * i) % 256) for i in range(CLASSES))
    meta = ModelMeta("wide", "300 classes", config, tuple(f"c{i}" for i in range(CLASSES)), palette, Preprocessing())
    return LoadedModel(model.eval(), meta, "memory")


def test_masks_past_256_classes_keep_their_class_ids(tmp_path: Path) -> None:
    loaded = wide_model()
    segmentation = Segmenter(loaded, "cpu").segment(gradient_image(64, 64))
    mask = segmentation.mask()
    assert mask.dtype == np.uint16 and int(np.bincount(mask.ravel()).argmax()) == CLASSES - 1
    weights = save_native(tmp_path / "wide.safetensors", loaded.model.state_dict(), loaded.meta, half=False)
    image = tmp_path / "photo.png"
    Image.fromarray(gradient_image(64, 64)).save(image)
    assert main(["segment", str(image), "--weights", str(weights), "--out", str(tmp_path / "out"), "--device", "cpu"]) == 0
    written = np.asarray(Image.open(tmp_path / "out" / "photo_mask.png"))
    assert written.max() == CLASSES - 1  # a 16-bit PNG, not ids wrapped at 256


def test_nan_scores_are_reported_in_the_notes() -> None:
    loaded = wide_model()
    with torch.no_grad():
        loaded.model.score_fr.bias[0] = float("nan")
    segmentation = Segmenter(loaded, "cpu").segment(gradient_image(32, 32))
    assert any("NaN or infinite scores" in note for note in segmentation.notes)


def test_batch_memory_stays_flat_with_save_scores(tmp_path: Path, tiny_weights: Path) -> None:
    """At a small scale (CI): the peak RSS after 120 images is that after 20 (the README gives the 2,000 run)."""
    folder = tmp_path / "in"
    folder.mkdir()
    for index in range(140):
        Image.fromarray(gradient_image(96, 128, seed=index)).save(folder / f"{index:03}.png")
    first = [str(folder / f"{index:03}.png") for index in range(20)]
    argv = ["--weights", str(tiny_weights), "--save-scores", "--device", "cpu"]
    assert main(["segment", *first, "--out", str(tmp_path / "a"), *argv]) == 0
    after_few = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert main(["segment", str(folder), "--out", str(tmp_path / "b"), *argv]) == 0
    after_many = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert after_many - after_few < 64 * 1024  # KiB
    assert len(list((tmp_path / "b").glob("*.npz"))) == 140
