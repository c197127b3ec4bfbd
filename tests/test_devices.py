"""Devices: Auto falls back to the CPU quietly, a missing device asked for by name is a clear error, and a
move to another device that fails half-way leaves the segmenter working where it was."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fcn_viewer.cli.main import main
from fcn_viewer.errors import DeviceError
from fcn_viewer.inference import Segmenter, resolve_device
from fcn_viewer.weights.loader import LoadedModel
from tests.helpers import gradient_image, random_model, tiny_meta, tiny_paper_config

TARGETS = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_auto_is_the_cpu_without_an_accelerator_and_a_named_one_must_exist(no_cuda: None) -> None:
    assert resolve_device("auto") == torch.device("cpu")
    for choice in ("cuda", "mps"):
        with pytest.raises(DeviceError, match=f"{choice.upper()} was asked for, but this machine has no"):
            resolve_device(choice)


def test_the_command_line_says_when_the_device_asked_for_is_missing(
    no_cuda: None, tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "photo.png"
    Image.fromarray(gradient_image(20, 24)).save(image)
    argv = ["segment", str(image), "--weights", str(tiny_weights), "--out", str(tmp_path / "out"), "--device", "cuda"]
    assert main(argv) == 1
    assert "error: CUDA was asked for, but this machine has no CUDA device" in capsys.readouterr().err
    assert main([*argv[:-1], "auto"]) == 0


@pytest.mark.parametrize("target", TARGETS)
def test_a_move_that_fails_half_way_leaves_the_segmenter_working(
    target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tiny_paper_config("fcn8s", 5)  # no BatchNorm: the segmenter runs the loaded net itself, not a copy
    segmenter = Segmenter(LoadedModel(random_model(config), tiny_meta(config), "test"), "cpu")
    image = gradient_image(40, 48)
    expected = segmenter.segment(image).mask()
    fc7 = segmenter.model.fc7
    real_apply = fc7._apply
    calls: list[int] = []

    def full_at_fc7(fn, recurse=True):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:  # the layers before fc7 have moved by now
            raise torch.OutOfMemoryError("out of memory (simulated, half-way through the move)")
        return real_apply(fn, recurse)

    monkeypatch.setattr(fc7, "_apply", full_at_fc7)
    with pytest.raises(torch.OutOfMemoryError):
        segmenter.moved_to(torch.device(target))
    assert len(calls) == 2  # the net was put back together where the segmenter runs it
    assert {parameter.device for parameter in segmenter.model.parameters()} == {torch.device("cpu")}
    np.testing.assert_array_equal(segmenter.segment(image).mask(), expected)
