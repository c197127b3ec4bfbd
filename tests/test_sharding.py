"""`segment` and `evaluate` under torchrun with two CPU processes (gloo): each rank takes its share of the files,
and the outputs and the metrics are those of a one-process run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fcn_viewer.cli.main import main
from fcn_viewer.sharding import Shard
from tests.helpers import gradient_image

REPO = Path(__file__).resolve().parent.parent


def test_a_shard_takes_every_world_th_item() -> None:
    items = list(range(7))
    shares = [Shard(rank, 3).take(items) for rank in range(3)]
    assert shares == [[0, 3, 6], [1, 4], [2, 5]]
    assert Shard().take(items) == items and Shard().gather("x") == ["x"]


def run_cli(args: list[str], cwd: Path, ranks: int) -> subprocess.CompletedProcess[str]:
    """``torchrun --standalone --nproc-per-node RANKS -m fcn_viewer ARGS`` on this machine's CPU."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks),
                "-m", "fcn_viewer"]
    return subprocess.run([*launcher, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180)


@pytest.fixture
def camvid_like(tmp_path: Path) -> Path:
    """A tiny CamVid-layout split: five photos of two sizes with labels."""
    root = tmp_path / "data"
    (root / "val").mkdir(parents=True)
    (root / "valannot").mkdir()
    rng = np.random.default_rng(0)
    for index in range(5):
        height, width = (40, 56) if index % 2 else (48, 64)
        Image.fromarray(gradient_image(height, width, seed=index)).save(root / "val" / f"f{index}.png")
        Image.fromarray(rng.integers(0, 12, (height, width), dtype=np.uint8)).save(root / "valannot" / f"f{index}.png")
    return root


def test_two_ranks_segment_and_evaluate_like_one_process(camvid_like: Path, tiny_weights: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    segment = ["segment", str(camvid_like / "val"), "--weights", str(tiny_weights), "--save-scores", "--device", "cpu"]
    evaluate = ["evaluate", "--data", str(camvid_like), "--split", "val", "--weights", str(tiny_weights),
                "--device", "cpu"]
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each rank runs (OMP_NUM_THREADS=1): float sums then add up in the same order
    try:
        assert main([*segment, "--out", "seg1"]) == 0  # the one-process run, in this process
        assert main([*evaluate, "--json", "eval1.json"]) == 0
    finally:
        torch.set_num_threads(threads)
    for args in ([*segment, "--out", "seg2"], [*evaluate, "--json", "eval2.json"]):
        done = run_cli(args, tmp_path, ranks=2)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "(rank 1 of 2)" in done.stderr
    one, two = tmp_path / "seg1", tmp_path / "seg2"
    names = sorted(path.name for path in one.iterdir())
    assert len(names) == 15 and names == sorted(path.name for path in two.iterdir())
    for name in names:
        if name.endswith(".png"):
            assert np.array_equal(np.asarray(Image.open(one / name)), np.asarray(Image.open(two / name))), name
        else:
            with np.load(one / name) as a, np.load(two / name) as b:
                for key in a.files:
                    assert np.array_equal(a[key], b[key]), (name, key)
    single = json.loads((tmp_path / "eval1.json").read_text())
    sharded = json.loads((tmp_path / "eval2.json").read_text())
    assert sharded["images"] == single["images"] == 5
    for name, model in single["models"].items():
        for stage, scores in model["stages"].items():
            other = dict(sharded["models"][name]["stages"][stage])
            # confusion-matrix metrics are sums of counts: exact; boundary F1 sums per-image floats in another order
            assert other.pop("boundary_f1") == pytest.approx(scores.pop("boundary_f1"), rel=1e-12)
            assert other == scores, (name, stage)
