"""Sequence playback speed: how many frames per second the player can show with every stage panel live.

Prints numbers; it is not a pass/fail test. Examples:

    python benchmarks/bench_sequence.py                         # bundled camvid-fcn8s on the CPU, CamVid val frames
    python benchmarks/bench_sequence.py --frames 60 --rate 10 --threads 2

Two figures per run, through the player's own path (decode → segment every stage → draw every panel, see
fcn_viewer.sequence.segment_frame) on its newest-request-only thread (fcn_viewer.latest.LatestOnly):
- "sustained": frames back to back, nothing dropped: the most the net and the drawing allow;
- "playback at R fps": a clock makes frame i due at i/R s; the newest due frame is requested whenever it
  changes, late ones are dropped. It reports frames shown, dropped, and the achieved frames per second.
Frames are CamVid val photos when ../shared/data/camvid is there, else generated 480×360 pictures.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fcn_viewer.inference import Segmenter
from fcn_viewer.latest import LatestOnly
from fcn_viewer.sequence import FramePictures, FrameSource, PlaybackClock, open_sequence, segment_frame
from fcn_viewer.weights.loader import LoadedModel, load_entry

CAMVID_VAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "camvid" / "val"


def frames_folder(count: int, folder: Path) -> Path:
    """CamVid val frames (their first ``count``, in order) or generated ones, copied into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    photos = sorted(CAMVID_VAL.glob("*.jpg"))[:count] if CAMVID_VAL.is_dir() else []
    rng = np.random.default_rng(0)
    for index in range(count):
        if index < len(photos):
            (folder / photos[index].name).write_bytes(photos[index].read_bytes())
        else:
            Image.fromarray(rng.integers(0, 256, (360, 480, 3), dtype=np.uint8)).save(folder / f"g{index:04d}.png")
    return folder


def sustained(source: FrameSource, segmenter: Segmenter) -> list[float]:
    """Seconds per frame, each requested when the one before is done, on the player's thread as in the viewer."""
    times = []
    runner: LatestOnly[int, FramePictures] = LatestOnly(
        lambda index: segment_frame(source, index, segmenter.segment, segmenter.meta.palette, 0.6),
        lambda _, __: None, lambda _, error: print(f"  frame failed: {error}"))
    for index in range(len(source)):
        started = time.perf_counter()
        runner.submit(index)
        runner.wait_idle()
        times.append(time.perf_counter() - started)
    runner.close()
    return times


def playback(source: FrameSource, segmenter: Segmenter, rate: float) -> tuple[int, int, float]:
    """Plays ``source`` at ``rate`` as the viewer does; returns (shown, dropped, achieved fps)."""
    shown: list[int] = []
    finished = threading.Event()
    last = len(source) - 1

    def delivered(_: int, pictures: FramePictures) -> None:
        shown.append(pictures.index)
        if pictures.index == last:
            finished.set()

    runner: LatestOnly[int, FramePictures] = LatestOnly(
        lambda index: segment_frame(source, index, segmenter.segment, segmenter.meta.palette, 0.6),
        delivered, lambda _, error: finished.set())
    clock = PlaybackClock(rate, 0, time.perf_counter())
    requested, skipped = -1, 0
    started = time.perf_counter()
    while not finished.is_set():
        due = min(clock.due(time.perf_counter()), last)
        if due > requested:
            skipped += due - requested - 1
            requested = due
            runner.submit(due)
        time.sleep(min(0.005, 0.5 / rate))
    elapsed = time.perf_counter() - started
    runner.close()
    return len(shown), skipped + runner.dropped, len(shown) / elapsed


def bench(loaded: LoadedModel, source: FrameSource, rates: list[float]) -> None:
    segmenter = Segmenter(loaded, "cpu")
    segment_frame(source, 0, segmenter.segment, segmenter.meta.palette, 0.6)  # warm-up
    height, width = source.frame(0).shape[:2]
    print(f"{loaded.meta.title} on the CPU ({torch.get_num_threads()} threads), {len(source)} frames of {width}×{height}")
    times = sustained(source, segmenter)
    print(f"  sustained: {1 / statistics.mean(times):.2f} fps (per frame p50 {1000 * statistics.median(times):.0f} ms, "
          f"max {1000 * max(times):.0f} ms)")
    for rate in rates:
        shown, dropped, achieved = playback(source, segmenter, rate)
        print(f"  playback at {rate:g} fps: {shown} shown, {dropped} dropped, achieved {achieved:.2f} fps")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="camvid-fcn8s")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--rate", type=float, action="append", help="playback rates to try (default 2 and 10)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        source = open_sequence(frames_folder(args.frames, Path(folder) / "frames"))
        bench(load_entry(args.model), source, args.rate or [2.0, 10.0])


if __name__ == "__main__":
    main()
