"""Sequence playback speed: how many frames per second the player can show with every stage panel live.

Prints numbers; it is not a pass/fail test. Examples:

    python benchmarks/bench_sequence.py                         # bundled camvid-fcn8s on the CPU, CamVid val frames
    python benchmarks/bench_sequence.py --frames 60 --rate 10 --threads 2

Two figures per run, through the player's own path (decode → segment every stage → draw every panel, see
fcn_viewer.teaching.sequence.segment_frame) on a job queue as the Sequence tab runs it (fcn_viewer.gui.jobs.JobQueue,
one key so the newest request wins, answers on the main thread's event loop):
- "sustained": frames back to back, nothing dropped: the most the net and the drawing allow;
- "playback at R fps": a clock makes frame i due at i/R s; the newest due frame is requested whenever it
  changes, late ones are dropped. It reports frames shown, dropped, and the achieved frames per second.
Frames are CamVid val photos when ../shared/data/camvid is there, else generated 480×360 pictures.
With the sustained figure come per-phase medians, so the next regression shows where it is: decode (reading the
frame), net (Segmenter.segment: the pass and the stages back on the host), pictures (masks, colours, overlays,
class shares, on the worker) and draw (every panel's pixels into a QPixmap on the main thread, as the tab does).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from PySide6.QtCore import QCoreApplication, QEventLoop, Qt, QTimer
from PySide6.QtGui import QGuiApplication

from fcn_viewer.cpu_threads import run_serially_here
from fcn_viewer.gui.jobs import Job, JobQueue
from fcn_viewer.gui.panels import pixmap_from_rgb
from fcn_viewer.inference import Segmenter
from fcn_viewer.options import Precision
from fcn_viewer.teaching.sequence import FramePictures, FrameSource, PlaybackClock, open_sequence, segment_frame
from fcn_viewer.view.outcome import JobCancelled, JobFailed
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


def frame_queue(source: FrameSource, segmenter: Segmenter) -> tuple[JobQueue, Callable[[int], int]]:
    """The player's queue and a function that requests frame ``index`` on it (replacing a request still waiting)."""
    queue = JobQueue("bench sequence")

    def request(index: int) -> int:
        def work(_: Job) -> object:
            return segment_frame(source, index, segmenter.segment, segmenter.meta.palette, 0.6)

        return queue.submit(work, key="frame")

    return queue, request


def draw(pictures: FramePictures) -> float:
    """Milliseconds to turn every panel of a frame into a QPixmap, as the Sequence tab does when it shows it."""
    started = time.perf_counter()
    for picture in (pictures.photo, *pictures.score_maps.values(), *pictures.masks.values()):
        pixmap_from_rgb(picture)
    return 1000 * (time.perf_counter() - started)


def sustained(source: FrameSource, segmenter: Segmenter) -> tuple[list[float], dict[str, list[float]]]:
    """Seconds per frame, each requested when the one before is shown, on the player's queue as in the viewer;
    and each phase's milliseconds per frame (decode, net, pictures, draw)."""
    app = application()
    queue, request = frame_queue(source, segmenter)
    answered: list[int] = []
    phases: dict[str, list[float]] = {"decode": [], "net": [], "pictures": [], "draw": []}

    def shown(number: int, value: object) -> None:
        report(value)
        if isinstance(value, FramePictures):
            phases["decode"].append(value.decode_ms)
            phases["net"].append(value.inference_ms)
            phases["pictures"].append(value.pictures_ms)
            phases["draw"].append(draw(value))
        answered.append(number)

    queue.finished.connect(shown)
    times = []
    for index in range(len(source)):
        started = time.perf_counter()
        number = request(index)
        wait_until(app, lambda number=number: bool(answered) and answered[-1] == number)
        times.append(time.perf_counter() - started)
    queue.shutdown()
    return times, phases


def wait_until(app: QCoreApplication, done: Callable[[], bool]) -> None:
    """Runs the event loop until ``done()``, asleep between events as the viewer's is (a loop that polls every
    half millisecond takes a core's slices from the net's threads: on 2 cores it slowed the pass by half)."""
    keep_awake = QTimer()  # wakes the loop now and then, should ``done`` turn true without an event
    keep_awake.start(50)
    while not done():
        app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)
    keep_awake.stop()


def playback(source: FrameSource, segmenter: Segmenter, rate: float) -> tuple[int, int, float]:
    """Plays ``source`` at ``rate`` as the viewer does; returns (shown, dropped, achieved fps)."""
    app = application()
    queue, request = frame_queue(source, segmenter)
    shown: list[int] = []
    overtaken = 0
    finished = False
    last = len(source) - 1

    def answered(_: int, value: object) -> None:
        nonlocal overtaken, finished
        if isinstance(value, JobCancelled):
            overtaken += 1
            return
        report(value)
        if isinstance(value, FramePictures):
            shown.append(value.index)
        finished = isinstance(value, JobFailed) or shown[-1:] == [last]

    queue.finished.connect(answered)
    clock = PlaybackClock(rate, 0, time.perf_counter())
    requested, skipped = -1, 0

    def tick() -> None:
        nonlocal requested, skipped
        due = min(clock.due(time.perf_counter()), last)
        if due > requested:
            skipped += due - requested - 1
            requested = due
            request(due)

    timer = QTimer()  # as the Sequence tab ticks: twice a frame, so a due frame waits at most half a frame
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(tick)
    timer.start(max(1, round(1000 / rate / 2)))
    started = time.perf_counter()
    tick()
    wait_until(app, lambda: finished)
    timer.stop()
    elapsed = time.perf_counter() - started
    queue.shutdown()
    return len(shown), skipped + overtaken, len(shown) / elapsed


def report(value: object) -> None:
    if isinstance(value, JobFailed):
        print(f"  frame failed: {value.message}")


def application() -> QCoreApplication:
    """The running Qt application (the viewer's, or pytest-qt's), else a new GUI one (pixmaps need it; offscreen
    unless QT_QPA_PLATFORM says otherwise, the calling thread then running torch alone): the queue answers through it."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    existing = QCoreApplication.instance()
    if existing is not None:
        return existing
    run_serially_here()  # as the viewer's GUI thread does (fcn_viewer.gui.app): it keeps no OpenMP team
    return QGuiApplication([])


def bench(loaded: LoadedModel, source: FrameSource, rates: list[float], precision: Precision = "auto") -> None:
    segmenter = Segmenter(loaded, "cpu", precision=precision)
    segment_frame(source, 0, segmenter.segment, segmenter.meta.palette, 0.6)  # warm-up
    height, width = source.frame(0).shape[:2]
    print(f"{loaded.meta.title} on the CPU ({torch.get_num_threads()} threads), {len(source)} frames of {width}×{height}, "
          f"{segmenter.precision_note}")
    times, phases = sustained(source, segmenter)
    print(f"  sustained: {1 / statistics.mean(times):.2f} fps (per frame p50 {1000 * statistics.median(times):.0f} ms, "
          f"max {1000 * max(times):.0f} ms)")
    medians = {phase: statistics.median(values) for phase, values in phases.items() if values}
    print("  per frame, median: " + " · ".join(f"{phase} {ms:.1f} ms" for phase, ms in medians.items())
          + f" · the rest (queue, event loop) {1000 * statistics.median(times) - sum(medians.values()):.1f} ms")
    for rate in rates:
        shown, dropped, achieved = playback(source, segmenter, rate)
        print(f"  playback at {rate:g} fps: {shown} shown, {dropped} dropped, achieved {achieved:.2f} fps")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="camvid-fcn8s")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--rate", type=float, action="append", help="playback rates to try (default 2 and 10)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                        help="the net's precision (default auto, as the viewer)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        source = open_sequence(frames_folder(args.frames, Path(folder) / "frames"))
        bench(load_entry(args.model), source, args.rate or [2.0, 10.0], args.precision)


if __name__ == "__main__":
    main()
