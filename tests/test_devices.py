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
    assert main(argv) == 2  # an environment error (see "What the app guarantees")
    assert "error: CUDA was asked for, but this machine has no CUDA device" in capsys.readouterr().err
    assert main([*argv[:-1], "auto"]) == 0


@pytest.mark.parametrize("target", TARGETS)
def test_a_move_that_fails_half_way_leaves_the_segmenter_and_the_loaded_model_working(
    target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tiny_paper_config("fcn8s", 5)
    loaded = LoadedModel(random_model(config), tiny_meta(config), "test")
    segmenter = Segmenter(loaded, "cpu")
    image = gradient_image(40, 48)
    expected = segmenter.segment(image).mask()
    real_apply = torch.nn.Conv2d._apply
    calls: list[int] = []

    def full_after_a_few_layers(module, fn, recurse=True):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 4:  # three layers have moved by now
            raise torch.OutOfMemoryError("out of memory (simulated, half-way through the move)")
        return real_apply(module, fn, recurse)

    monkeypatch.setattr(torch.nn.Conv2d, "_apply", full_after_a_few_layers)
    with pytest.raises(torch.OutOfMemoryError):
        segmenter.moved_to(torch.device(target))
    monkeypatch.undo()
    assert {(p.device, p.dtype) for p in loaded.model.parameters()} == {(torch.device("cpu"), torch.float32)}
    np.testing.assert_array_equal(segmenter.segment(image).mask(), expected)
    np.testing.assert_array_equal(Segmenter(loaded, "cpu").segment(image).mask(), expected)
