"""The inference benchmark runs end to end on a tiny net (its numbers are not checked: speed is not a test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks import bench_inference
from fcn_viewer.weights.loader import LoadedModel, load_weights_file
from tests.helpers import random_model, tiny_meta, tiny_paper_config

ROOT = Path(__file__).resolve().parents[1]


def test_the_inference_benchmark_prints_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    config = tiny_paper_config("fcn8s", 5)
    loaded = LoadedModel(random_model(config), tiny_meta(config), "test")
    bench_inference.bench(loaded, (40, 48), torch.device("cpu"), batch=2, runs=2, precision="auto", compile=False)
    out = capsys.readouterr().out
    for figure in ("batch 1   optimised p50", "baseline p50", "speed-up ×", "batch 2", "img/s",
                   "argmax agreement with the fp32 baseline: 100.00 %", "GFLOP per image"):
        assert figure in out


def test_the_gpu_session_script_runs_end_to_end_on_the_cpu_with_smoke(tmp_path: Path) -> None:
    """`device_run.py --smoke`: train the family at once, export, evaluate and benchmark, all on the CPU."""
    out = tmp_path / "smoke"
    command = [sys.executable, str(ROOT / "benchmarks" / "device_run.py"), "--smoke", "--out", str(out),
               "--work", str(tmp_path / "work")]
    # The GPU machine has no PySide6: train, evaluate and the benchmark must not import Qt.
    (tmp_path / "no-qt" / "PySide6").mkdir(parents=True)
    (tmp_path / "no-qt" / "PySide6" / "__init__.py").write_text("raise ImportError('no Qt on the GPU machine')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "no-qt"), str(ROOT)]))
    finished = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=360)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    returned = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert returned == ["log.txt", "models/camvid-fcn16s.safetensors", "models/camvid-fcn32s.safetensors",
                        "models/camvid-fcn8s.safetensors", "report.json"]  # the device tool returns ≤ 8 files
    report = json.loads((out / "report.json").read_text())
    assert [(step["name"], step["status"]) for step in report["steps"]] == [
        ("train", "ok"), ("evaluate", "ok"), ("bench-0", "ok")]
    assert set(report["models"]) == {"camvid-fcn32s", "camvid-fcn16s", "camvid-fcn8s"}
    for name, model in report["models"].items():
        assert model["config"]["padding"] == "paper" and model["metrics"]["val"], name
        assert model["provenance"]["command"].startswith("fcn-viewer train")
    assert all(report["training"][variant] for variant in ("fcn32s", "fcn16s", "fcn8s"))
    assert report["evaluate"]["images"] == 2
    nets = [result["net"] for result in report["benchmarks"][0]["results"]]
    assert nets == ["FCN-8s CamVid (compact)", "paper FCN-8s (VGG16)"]
    loaded = load_weights_file(out / "models" / "camvid-fcn8s.safetensors")
    with torch.no_grad():
        crops = loaded.model.forward_stages(torch.zeros(1, 3, 40, 48)).crops
    assert [c.offset for c in crops if c.source in ("score_pool4", "score_pool3", "upscore8")] == [5, 9, 31]


def test_the_start_up_benchmark_times_a_command_and_names_its_heavy_imports() -> None:
    from benchmarks import bench_cli_startup

    seconds, heavy = bench_cli_startup.time_case(["models"], runs=1)
    assert len(seconds) == 1 and seconds[0] > 0
    assert heavy == ""  # `models` imports neither torch, Qt nor matplotlib


def test_the_sequence_benchmark_prints_every_figure(capsys: pytest.CaptureFixture[str], tmp_path, qapp) -> None:  # type: ignore[no-untyped-def]
    # qapp: the benchmark's job queue answers through the running Qt application (else it would make a core one)
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
