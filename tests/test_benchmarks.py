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
    assert nets == ["FCN-8s CamVid (compact)"]  # the bundled net (the GPU run adds the paper net's runs)
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
    from fcn_viewer.teaching.sequence import open_sequence
    from tests.helpers import tiny_compact_config
    from tests.test_sequence import write_frames

    config = tiny_compact_config("fcn8s")
    loaded = LoadedModel(random_model(config), tiny_meta(config), "test")
    bench_sequence.bench(loaded, open_sequence(write_frames(tmp_path / "f", 6)), [100.0])
    out = capsys.readouterr().out
    for figure in ("6 frames of 44×36", "sustained:", "fps (per frame p50", "playback at 100 fps:", "achieved",
                   "per frame, median: decode", "net", "pictures", "draw", "the rest"):
        assert figure in out


def test_the_torchvision_benchmark_prints_every_row_and_the_rows_to_paste(tiny_weights: Path, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torchvision")  # a benchmark-only extra: pip install -e '.[bench]'
    from benchmarks import bench_vs_lraspp

    report = tmp_path / "lraspp.json"
    bench_vs_lraspp.main(["--runs", "1", "--model", str(tiny_weights), "--size", "64x80", "--json", str(report)])
    out = capsys.readouterr().out
    for figure in ("vs torchvision LR-ASPP and DeepLabV3 MobileNetV3-Large · 80×64 · batch 1", "threads",
                   "auto picked: fp32", "LR-ASPP fp32 NCHW", "DeepLabV3 fp32 channels-last", "FCN fp32 net pass",
                   "FCN fp32 segment()", "FCN auto segment()", "target (issue 24)", "Rows for benchmarks/README.md",
                   "| FCN auto segment() |", "command: `python benchmarks/bench_vs_lraspp.py --runs 1"):
        assert figure in out
    figures = json.loads(report.read_text())
    names = [row["name"] for row in figures["rows"]]
    expected = ["fp32", "bf16"] if bench_vs_lraspp.cpu_has_native_bf16() else ["fp32"]
    assert [n.split()[1] for n in names if n.startswith("FCN")] == [p for p in expected for _ in range(2)] + ["auto"]
    assert [n for n in names if n.startswith("DeepLabV3")] == [
        f"DeepLabV3 {p} {layout}" for p in expected for layout in ("NCHW", "channels-last")]
    for row in figures["rows"]:
        assert row["median_ms"] > 0 and len(row["samples_ms"]) == 1 and row["ratio_to_lraspp"] > 0
    assert figures["size"] == [64, 80] and figures["lraspp_layout"] in ("NCHW", "channels-last")


def test_the_paper_net_is_timed_against_pytorch_fcns_way(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torchvision")
    from benchmarks import bench_vs_lraspp

    config = tiny_paper_config("fcn8s", 5)
    figures = bench_vs_lraspp.compare_paper(1, (40, 40), loaded=LoadedModel(random_model(config), tiny_meta(config), "t"))
    out = capsys.readouterr().out
    assert "| pytorch-fcn FCN8s, eager fp32 (final output) |" in out and "| paper FCN-8s fp32 net pass" in out
    assert [row["speedup"] > 0 for row in figures["rows"]] == [True] * len(figures["rows"])  # type: ignore[union-attr]


def test_the_folder_benchmark_prints_images_per_second_of_each_side(tiny_weights: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import bench_segment_folder

    rates = bench_segment_folder.compare(str(tiny_weights), (36, 44), count=2, rounds=1, work=tmp_path)
    out = capsys.readouterr().out
    assert "2 JPEG photos of 44×36" in out
    for label in ("one by one, eager fp32", "segment --precision auto", "segment --precision fp32"):
        assert label in out and rates[label] > 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.name.endswith("_mask.png")) == [
        "photo000_mask.png", "photo001_mask.png"]
