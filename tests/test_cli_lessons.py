"""`fcn-viewer figure --lesson`: each lesson's slide and JSON numbers from a tiny model, and its usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fcn_viewer.cli.main import main
from tests.helpers import gradient_image


def _photo(tmp_path: Path, height: int = 64, width: int = 96) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(gradient_image(height, width)).save(path)
    return path


def _run(tmp_path: Path, weights: Path, lesson: str, *extra: str) -> dict:  # type: ignore[type-arg]
    out, numbers = tmp_path / f"{lesson}.png", tmp_path / f"{lesson}.json"
    command = ["figure", str(_photo(tmp_path)), "--weights", str(weights), "--device", "cpu", "--lesson", lesson,
               "--out", str(out), "--json", str(numbers), *extra]
    assert main(command) == 0
    with Image.open(out) as slide:
        assert slide.size == (1920, 1080)
    report: dict = json.loads(numbers.read_text())  # type: ignore[type-arg]
    assert report["lesson"] == lesson and report["image_size"] == [64, 96]
    return report


def test_the_commute_lesson_reports_equal_scores_and_the_memory_both_ways(tmp_path: Path, tiny_weights: Path) -> None:
    report = _run(tmp_path, tiny_weights, "commute")
    assert report["max_abs_difference"] <= 1e-4 * report["score_range"]
    assert report["bytes_concatenated"] > report["bytes_summed"] > 0


def test_the_classifier_lesson_reports_crops_flops_seconds_and_agreement(tmp_path: Path, tiny_weights: Path) -> None:
    report = _run(tmp_path, tiny_weights, "classifier", "--time-cap", "0", "--cell", "1,1")
    assert report["crops"] == 2 * 3 and report["grid"] == [2, 3]  # 'same' padding: one cell per 32 px
    assert report["crops_run"] == 1 and report["seconds_crops_extrapolated"]
    assert report["flops_crops"] > report["flops_fcn"] > 0 and 0.0 <= report["argmax_agreement"] <= 1.0
    assert report["cell"]["cell"] == [1, 1] and report["cell"]["crop"]["size"] == 96


def test_the_upsampling_lesson_scores_both_masks_against_a_label(tmp_path: Path, tiny_weights: Path) -> None:
    label = tmp_path / "label.png"
    Image.fromarray(np.full((64, 96), 3, np.uint8)).save(label)
    report = _run(tmp_path, tiny_weights, "upsampling", "--label", str(label))
    assert [k["layer"] for k in report["kernels"]] == ["upscore2", "upscore_pool4", "upscore8"]
    assert all(k["relative_difference"] > 0 for k in report["kernels"])
    assert 0 <= report["changed_pixels"] <= report["pixels"] == 64 * 96
    assert set(report["metrics"]) == {"learned", "bilinear"}


@pytest.mark.parametrize(("extra", "message"), [
    (["--json", "x.json"], "--json does nothing without --lesson"),
    (["--lesson", "commute", "--cell", "1,1"], "--cell does nothing with --lesson commute"),
    (["--lesson", "commute", "--contributions"], "give one of them"),
    (["--lesson", "classifier", "--cell", "9,0"], "outside this image's 2×3 conv7 map"),
])
def test_lesson_options_that_cannot_work_are_refused_in_one_line(
    tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    command = ["figure", str(_photo(tmp_path)), "--weights", str(tiny_weights), "--device", "cpu",
               "--out", str(tmp_path / "f.png"), *extra]
    assert main(command) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "f.png").exists()
