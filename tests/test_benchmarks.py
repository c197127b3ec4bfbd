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


def test_the_start_up_benchmark_times_a_command_and_names_its_heavy_imports() -> None:
    from benchmarks import bench_cli_startup

    seconds, heavy = bench_cli_startup.time_case(["models"], runs=1)
    assert len(seconds) == 1 and seconds[0] > 0
    assert heavy == ""  # `models` imports neither torch, Qt nor matplotlib
