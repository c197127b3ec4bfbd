"""`fcn-viewer segment`: masks, overlays and every stage tensor for images or folders of images; an overlay video
(and on request every frame's mask) for a video file."""

from __future__ import annotations

import argparse
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fcn_viewer.atomic import check_free_space, folder_lock, is_disk_full, prepare_output_folder
from fcn_viewer.cli.common import (
    add_batch_arguments,
    add_model_arguments,
    batch_size,
    check_model_arguments,
    clear_stale_temporaries,
    decode_workers,
    does_nothing,
    load_from_args,
)
from fcn_viewer.cli.launch import add_nproc_argument, run_ranks, wants_ranks
from fcn_viewer.cpu_threads import run_serially_here
from fcn_viewer.device_choice import DEVICE_CHOICES
from fcn_viewer.domain import mean_confidence, unfamiliar_note
from fcn_viewer.errors import DiskSpaceError, FCNViewerError, OutputExistsError, UsageError
from fcn_viewer.imageio import is_image_path, list_images, load_image
from fcn_viewer.outputs import (
    SCORES_DTYPES,
    expected_bytes,
    output_bytes,
    output_names,
    video_output_names,
    write_outputs,
    write_video_outputs,
)
from fcn_viewer.sharding import Shard, sharded
from fcn_viewer.videoio import VideoFrames, is_video_path

if TYPE_CHECKING:  # torch loads when the command runs, not when its arguments are parsed
    from fcn_viewer.batching import Decoded
    from fcn_viewer.inference import Segmenter

WRITE_THREADS = 2  # PNG and npz encoding, beside the forward passes


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("segment", help="segment images and save masks, overlays and score maps; "
                                   "segment a video and save an overlay video")
    parser.add_argument("inputs", nargs="+", type=Path, metavar="IMAGE_OR_DIR",
                        help="images, folders whose images are all segmented, or video files (MP4, MOV, AVI, MKV, "
                             "WebM)")
    add_model_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, help="output folder (created if needed)")
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    parser.add_argument("--save-scores", action="store_true",
                        help="also write every stage tensor to <stem>.npz (compressed; about 28 MB per 480×360 photo "
                             "at float32, 12 MB at float16)")
    parser.add_argument("--scores-dtype", choices=SCORES_DTYPES,
                        help="precision of the --save-scores tensors: float32 (default) or float16, which halves "
                             "the file")
    parser.add_argument("--masks", action="store_true",
                        help="for a video: also write every frame's mask to <stem>_masks/00001.png, … (an image's "
                             "mask is always written)")
    parser.add_argument("--overwrite", action="store_true", help="replace output files that already exist")
    add_batch_arguments(parser)
    add_nproc_argument(parser)
    parser.set_defaults(run=run)


def expand_inputs(inputs: list[Path]) -> Iterator[Path]:
    """Files as given; folders expanded to the images directly inside them."""
    for item in inputs:
        if item.is_dir() and not is_image_path(item):
            yield from list_images(item)
        else:
            yield item


@dataclass
class _Job:
    """One image on its way out: its outputs being written, or the error that stopped it."""

    path: Path
    seconds: float = 0.0  # decoding plus its share of the forward pass; the write adds its own
    notes: tuple[str, ...] = ()
    error: str | None = None
    write: Future[float] | None = None

    def done(self) -> bool:
        return self.write is None or self.write.done()


def run(args: argparse.Namespace) -> int:
    """Checks the options and --out first, then segments the images; with --nproc, or under torchrun, each rank
    takes its share of them (see fcn_viewer/sharding.py)."""
    check_model_arguments(args)
    if args.scores_dtype is not None and not args.save_scores:
        raise does_nothing("--scores-dtype", "without --save-scores")
    args.scores_dtype = args.scores_dtype or "float32"
    videos = [path for path in args.inputs if is_video_path(path) and not path.is_dir()]
    if args.masks and not videos:
        raise does_nothing("--masks", "without a video (an image's mask is always written)")
    if args.save_scores and videos:
        raise UsageError(f"--save-scores: not written for a video ({videos[0]}); it gets an overlay video "
                         "(and --masks)")
    prepare_output_folder(args.out)
    clear_stale_temporaries(args.out)  # what a killed run left (a file still being written is locked, and kept)
    if wants_ranks(args):
        return run_ranks(args.argv, args.nproc)
    with sharded() as shard:
        return _run(args, shard)


def _run(args: argparse.Namespace, shard: Shard) -> int:
    from fcn_viewer.inference import Segmenter

    loaded = load_from_args(args)
    segmenter = Segmenter(loaded, args.device, precision=args.precision, compile=args.compile)
    inputs = list(expand_inputs(args.inputs))
    videos = [path for path in inputs if is_video_path(path)]
    images = [path for path in inputs if not is_video_path(path)]
    if not inputs:
        print("error: no images found in the given paths", file=sys.stderr)
        return 2
    needed = expected_bytes(images, loaded.meta, args.save_scores, args.scores_dtype, segmenter.max_pixels)
    check_free_space(args.out, needed, f"--out {args.out}", f"{len(images)} image(s) need")
    with _output_lock(args.out, shard):
        code = _segment_all(args, segmenter, images, shard) if images else 0
        return max(code, _segment_videos(args, segmenter, videos, shard)) if videos else code


@contextmanager
def _output_lock(out: Path, shard: Shard) -> Iterator[None]:
    """One run at a time writes into a folder (a second one waits), so each image's mask, overlay and scores
    always come from the same net. Under torchrun the leader holds the lock for every rank."""
    if shard.leader:
        with folder_lock(out, lambda: print(f"note: another run is writing into {out}; waiting for it",
                                            file=sys.stderr)):
            shard.gather(None)  # the other ranks start writing once the folder is this run's
            yield
    else:
        shard.gather(None)
        yield


def _segment_all(args: argparse.Namespace, segmenter: Segmenter, images: list[Path], shard: Shard) -> int:
    from fcn_viewer.batching import Failed, load_batches

    loaded = segmenter.loaded
    stems = unique_stems(images)  # over all the images, so that names do not depend on the number of ranks
    images, stems = shard.take(images), shard.take(stems)
    print(f"{loaded.meta.title} on {segmenter.device}{shard.label()}: {len(images)} image(s) → {args.out}",
          file=sys.stderr)
    size = batch_size(args, segmenter.device)
    failures = finished = 0
    pending: deque[_Job] = deque()  # reported in this order; their outputs held until written
    # the decoding processes start here, before the write threads (forking a process with threads is fragile)
    batches = load_batches(images, load_image, lambda image: image.shape[:2], size, decode_workers(args, segmenter.device))
    with ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="fcn-viewer write",
                            initializer=run_serially_here) as writers:
        try:
            for batch in batches:
                if isinstance(batch, Failed):
                    pending.append(_Job(images[batch.index], error=batch.error))
                else:
                    pending.extend(_segment(segmenter, batch, images, stems, args, writers))
                while pending and (pending[0].done() or len(pending) > size + WRITE_THREADS):
                    finished += 1
                    failures += not _report(pending.popleft(), finished, len(images), args.out)
            while pending:
                finished += 1
                failures += not _report(pending.popleft(), finished, len(images), args.out)
        except BaseException:  # a full disk, Ctrl-C: the writes not started yet are dropped
            writers.shutdown(wait=True, cancel_futures=True)
            raise
    failures, total = (sum(counts) for counts in zip(*shard.gather((failures, len(images)))))
    if failures and shard.leader:
        print(f"{failures} of {total} image(s) failed", file=sys.stderr)
    return 1 if failures else 0


def _segment_videos(args: argparse.Namespace, segmenter: Segmenter, videos: list[Path], shard: Shard) -> int:
    """Each video's overlay video (and masks), one video per rank at a time, its frames one at a time."""
    stems = unique_stems(videos)
    videos, stems = shard.take(videos), shard.take(stems)
    failures = 0
    for number, (path, stem) in enumerate(zip(videos, stems), start=1):
        started = time.perf_counter()
        try:
            if not args.overwrite:
                refuse_existing_names(args.out, video_output_names(stem, args.masks))
            video = VideoFrames.open(path)
            print(f"[video {number}/{len(videos)}] {path}: {len(video)} frames at {float(video.fps):g} fps",
                  file=sys.stderr)
            target = write_video_outputs(args.out, stem, video, segmenter.segment, segmenter.meta, args.masks)
        except FCNViewerError as error:
            failures += 1
            print(f"[video {number}/{len(videos)}] error: {error}", file=sys.stderr)
            continue
        masks = f" and {args.out / f'{stem}_masks'}" if args.masks else ""
        print(f"[video {number}/{len(videos)}] wrote {target}{masks} ({time.perf_counter() - started:.1f} s)",
              file=sys.stderr)
    failures, total = (sum(counts) for counts in zip(*shard.gather((failures, len(videos)))))
    if failures and shard.leader:
        print(f"{failures} of {total} video(s) failed", file=sys.stderr)
    return 1 if failures else 0


def _segment(
    segmenter: Segmenter,
    batch: list[Decoded[np.ndarray]],
    paths: Sequence[Path],
    stems: Sequence[str],
    args: argparse.Namespace,
    writers: ThreadPoolExecutor,
) -> list[_Job]:
    """One forward pass for the images of ``batch`` whose outputs may be written, then their writes queued."""
    jobs = {item.index: _Job(paths[item.index], item.seconds) for item in batch}
    if not args.overwrite:
        for index, job in jobs.items():
            try:
                refuse_existing(args.out, stems[index], args.save_scores)
            except OutputExistsError as error:
                job.error = str(error)
    todo = [item for item in batch if jobs[item.index].error is None]
    started = time.perf_counter()
    try:
        results = segmenter.segment_batch([item.value for item in todo])
    except FCNViewerError as error:
        for item in todo:
            jobs[item.index].error = str(error)
    except Exception as error:  # e.g. out of memory: report, go on with the next images
        for item in todo:
            jobs[item.index].error = f"{paths[item.index]}: inference failed ({error})"
    else:
        share = (time.perf_counter() - started) / max(len(todo), 1)
        for item, result in zip(todo, results):
            job = jobs[item.index]
            job.seconds += share
            note = unfamiliar_note(segmenter.meta, mean_confidence(result.confidence()), "command line")
            result.notes = (*result.notes, note) if note else result.notes  # into the log and info_json
            job.notes = result.notes
            need = output_bytes(result.image_size[0] * result.image_size[1], segmenter.meta, args.save_scores,
                                args.scores_dtype)
            check_free_space(args.out, need, f"--out {args.out}", f"stopped before {job.path}: its outputs need")
            job.write = writers.submit(
                _timed, write_outputs, args.out, stems[item.index], result, segmenter.meta, args.save_scores,
                args.scores_dtype,
            )
    return list(jobs.values())


def _timed(function: Callable[..., None], *arguments: object) -> float:
    started = time.perf_counter()
    function(*arguments)
    return time.perf_counter() - started


def _report(job: _Job, number: int, total: int, out: Path) -> bool:
    """Prints ``[number/total]`` and how the image went, once its outputs are written; whether it succeeded.
    A full disk stops the run (DiskSpaceError): every image after this one would fail the same way."""
    error, seconds = job.error, job.seconds
    if job.write is not None:
        try:
            seconds += job.write.result()
        except FCNViewerError as failure:
            error = str(failure)
        except Exception as failure:  # e.g. a read-only file
            if is_disk_full(failure):
                raise DiskSpaceError(f"--out {out}: the disk is full ({getattr(failure, 'strerror', failure)}): "
                                     f"stopped at image {number} of {total}, {job.path}") from None
            error = f"{job.path}: writing its outputs failed ({type(failure).__name__}: {failure})"
    if error is not None:
        print(f"[{number}/{total}] error: {error}", file=sys.stderr)
        return False
    notes = "".join(f"; {note}" for note in job.notes)
    print(f"[{number}/{total}] {job.path} ({seconds * 1000:.0f} ms{notes})", file=sys.stderr)
    return True


def unique_stems(paths: Sequence[Path]) -> list[str]:
    """Each path's stem, with -2, -3, … after the second and later uses of a name, in input order."""
    used: set[str] = set()
    stems = []
    for path in paths:
        stem, suffix = path.stem, 2
        while stem in used:
            stem, suffix = f"{path.stem}-{suffix}", suffix + 1
        used.add(stem)
        stems.append(stem)
    return stems


def refuse_existing(out: Path, stem: str, save_scores: bool) -> None:
    refuse_existing_names(out, output_names(stem, save_scores))


def refuse_existing_names(out: Path, names: Sequence[str]) -> None:
    existing = [name for name in names if (out / name).exists()]
    if existing:
        raise OutputExistsError(f"{out / existing[0]}: already exists; pass --overwrite to replace it")
