"""`segment` and `evaluate` as two CPU processes (gloo), under torchrun or started by `--nproc`: each rank takes its
share of the files, the outputs and the metrics are those of a one-process run, and `--nproc` ends with our one
summary and exit code."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fcn_viewer.cli.main import main
from fcn_viewer.sharding import Shard
from tests.helpers import gradient_image
from tests.hostile import HANG_LIMIT_S

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


def test_nproc_runs_the_ranks_itself_and_ends_with_one_summary_and_our_exit_code(
    camvid_like: Path, tiny_weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """torchrun ends an ordinary exit 1 or 2 of a rank with its 40-line ChildFailedError and exit code 1; --nproc
    ends with the ranks' own summary and exit code."""
    (camvid_like / "val" / "broken.png").write_bytes(b"not a picture")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    common = ["--weights", str(tiny_weights), "--device", "cpu"]
    assert main(["segment", str(camvid_like / "val"), "--out", str(tmp_path / "one"), *common]) == 1
    capsys.readouterr()
    assert main(["segment", str(camvid_like / "val"), "--out", str(tmp_path / "two"), *common, "--nproc", "2"]) == 1
    err = capsys.readouterr().err
    assert "(rank 1 of 2)" in err and "Traceback" not in err and "ChildFailedError" not in err
    assert err.strip().splitlines()[-1] == "1 of 6 image(s) failed"
    assert err.count("broken.png: not an image") == 1
    names = sorted(path.name for path in (tmp_path / "one").iterdir())
    assert len(names) == 10 and names == sorted(path.name for path in (tmp_path / "two").iterdir())
    evaluate = ["evaluate", "--data", str(camvid_like), "--split", "val", *common, "--nproc", "2"]
    (camvid_like / "val" / "broken.png").unlink()
    assert main([*evaluate, "--json", str(tmp_path / "scores.json")]) == 0
    assert json.loads((tmp_path / "scores.json").read_text())["images"] == 5
    assert main(["evaluate", "--data", str(camvid_like), "--split", "val", "--weights", str(tmp_path / "gone"),
                 "--device", "cpu", "--nproc", "2"]) == 1
    err = capsys.readouterr().err
    assert err.count("gone: not a file") == 1, err  # each rank meets it; it is said once


def fake_ranks(code: str) -> list[str]:
    """A program for ``launch.run_ranks`` that runs ``code`` with ``rank`` (from RANK) in each rank."""
    return [sys.executable, "-c", f"import os, sys, time\nrank = int(os.environ['RANK'])\n{code}"]


@pytest.mark.parametrize("code, expected, lines", [
    ("if rank == 1:\n    print('error: --out x: the disk is full', file=sys.stderr); sys.exit(2)\n"
     "time.sleep(0.5); sys.exit(4)",  # rank 0 then loses its peer (EXIT_RANK_LOST), and says nothing
     2, ["error: --out x: the disk is full"]),
    ("print('error: w.pth: not a file', file=sys.stderr); sys.exit(1)", 1, ["error: w.pth: not a file"]),
    ("print(f'[1/1] image {rank}', file=sys.stderr); sys.exit(0)", 0, ["[1/1] image 0", "[1/1] image 1"]),
    ("if rank == 0:\n    os.kill(os.getpid(), 9)\ntime.sleep(0.5); sys.exit(4)", 3,
     ["error: rank 0 of 2 was killed by SIGKILL"]),
    ("if rank == 0:\n    time.sleep(60)\nsys.exit(2)", 2, []),  # the hung rank is stopped after the grace time
])
def test_the_job_exit_code_is_the_first_failing_ranks_and_each_error_is_said_once(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, code: str, expected: int, lines: list[str]
) -> None:
    from fcn_viewer.cli import launch

    monkeypatch.setattr(launch, "GRACE_S", 1.0)
    started = time.monotonic()
    assert launch.run_ranks([], 2, fake_ranks(code)) == expected
    assert time.monotonic() - started < HANG_LIMIT_S
    assert sorted(capsys.readouterr().err.splitlines()) == lines


def test_sigterm_stops_every_rank_and_is_said_once(tiny_weights: Path, tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for index in range(400):
        Image.fromarray(gradient_image(24, 32, seed=index)).save(folder / f"{index:03}.png")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    argv = ["segment", str(folder), "--weights", str(tiny_weights), "--out", str(tmp_path / "out"), "--device", "cpu",
            "--nproc", "2"]
    job = subprocess.Popen([sys.executable, "-m", "fcn_viewer", *argv], env=env, stderr=subprocess.PIPE, text=True)
    assert job.stderr is not None
    seen = []
    for line in job.stderr:  # the ranks are running once one has written an image
        seen.append(line)
        if line.startswith("[1/200]"):
            break
    job.send_signal(signal.SIGTERM)
    rest = job.stderr.read()
    assert job.wait(HANG_LIMIT_S) == 143, "".join(seen) + rest
    assert rest.count("terminated") == 1 and rest.strip().endswith("terminated") and "Traceback" not in rest
    assert not list((tmp_path / "out").glob(".*.tmp"))
