"""The inference benchmark runs end to end on a tiny net (its numbers are not checked: speed is not a test)."""

from __future__ import annotations

import pytest
import torch

from benchmarks import bench_inference
from fcn_viewer.weights.loader import LoadedModel
from tests.helpers import random_model, tiny_meta, tiny_paper_config


def test_the_inference_benchmark_prints_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    config = tiny_paper_config("fcn8s", 5)
    loaded = LoadedModel(random_model(config), tiny_meta(config), "test")
    bench_inference.bench(loaded, (40, 48), torch.device("cpu"), batch=2, runs=2, precision="auto", compile=False)
    out = capsys.readouterr().out
    for figure in ("batch 1   optimised p50", "baseline p50", "speed-up ×", "batch 2", "img/s",
                   "argmax agreement with the fp32 baseline: 100.00 %", "GFLOP per image"):
        assert figure in out


def test_the_sequence_benchmark_prints_every_figure(capsys: pytest.CaptureFixture[str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    from benchmarks import bench_sequence
    from fcn_viewer.sequence import open_sequence
    from tests.helpers import tiny_compact_config
    from tests.test_sequence import write_frames

    config = tiny_compact_config("fcn8s")
    loaded = LoadedModel(random_model(config), tiny_meta(config), "test")
    bench_sequence.bench(loaded, open_sequence(write_frames(tmp_path / "f", 6)), [100.0])
    out = capsys.readouterr().out
    for figure in ("6 frames of 44×36", "sustained:", "fps (per frame p50", "playback at 100 fps:", "achieved"):
        assert figure in out
