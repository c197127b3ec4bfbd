"""Arguments and helpers shared by the subcommands that need a model, so each names and loads one the same way."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from fcn_viewer.atomic import remove_stale_temporaries
from fcn_viewer.errors import UsageError
from fcn_viewer.model.config import VARIANTS
from fcn_viewer.options import PRECISIONS
from fcn_viewer.weights.download import Progress
from fcn_viewer.weights.registry import DEFAULT_MODEL, entry

if TYPE_CHECKING:  # torch loads when a command runs a model, not when its arguments are parsed
    import torch

    from fcn_viewer.weights.loader import LoadedModel, ModelSource


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--model", help=f"registry name (default {DEFAULT_MODEL}); see `fcn-viewer models`")
    group.add_argument("--weights", type=Path, help="a weights file: .safetensors, .caffemodel or .pth")
    parser.add_argument(
        "--arch", choices=VARIANTS, help="architecture of a .caffemodel/.pth (inferred from its layers if omitted)"
    )
    parser.add_argument("--download", action="store_true", help="download a registry model if it is not cached")


def does_nothing(option: str, unless: str) -> UsageError:
    """The usage error for an option given where it would do nothing: ``--class does nothing without --contributions``."""
    return UsageError(f"{option} does nothing {unless}")


def check_model_arguments(args: argparse.Namespace) -> None:
    """Refuses --arch without --weights (a registry model knows its own) and --download with --weights."""
    if args.arch is not None and args.weights is None:
        raise does_nothing("--arch", "without --weights")
    if args.download and args.weights is not None:
        raise does_nothing("--download", "with --weights")


def clear_stale_temporaries(folder: Path) -> None:
    """Removes the temporary files a killed run left in ``folder`` (see atomic.remove_stale_temporaries), and says so."""
    removed = remove_stale_temporaries(folder)
    if removed:
        names = ", ".join(removed[:3]) + (f" and {len(removed) - 3} more" if len(removed) > 3 else "")
        print(f"note: removed {len(removed)} temporary file(s) left in {folder} by an interrupted run: {names}",
              file=sys.stderr)


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    """--batch-size, --workers, --precision and --compile, for commands that run many images."""
    parser.add_argument("--batch-size", type=positive_count, metavar="N",
                        help="images of one size per forward pass (default 8 on CUDA, else 1)")
    parser.add_argument("--workers", type=non_negative_count, metavar="N",
                        help="processes decoding images while the device runs (default on CUDA "
                             f"min(4, CPUs − 1) = {gpu_feeding_workers()}; on the CPU 0: decoding on a thread of this "
                             "process, ahead of the network, which leaves the cores to it)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="auto = bf16 on CUDA, and on a CPU with native bf16 for a net measured to agree "
                             "with fp32 (≥ 99.5 %% of pixels) that runs faster in bf16 there; exact fp32 elsewhere")
    parser.add_argument("--compile", action="store_true",
                        help="compile the network once per image size (torch.compile): for many images of one size")


def gpu_feeding_workers() -> int:
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def batch_size(args: argparse.Namespace, device: torch.device) -> int:
    """--batch-size, or its default for ``device``: 8 on CUDA, else 1."""
    if args.batch_size is not None:
        return int(args.batch_size)
    return 8 if device.type == "cuda" else 1


def decode_workers(args: argparse.Namespace, device: torch.device) -> int:
    """--workers, or its default for ``device``: processes that keep a GPU fed; none on the CPU."""
    if args.workers is not None:
        return int(args.workers)
    return gpu_feeding_workers() if device.type == "cuda" else 0


def non_negative_count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text}: must be a count ≥ 0")
    return value


def positive_count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be a positive count")
    return value


def source_from_args(args: argparse.Namespace, default: str | None = DEFAULT_MODEL) -> ModelSource | None:
    """--weights (with --arch) or --model (with --download), else the ``default`` model; an unknown name raises
    KeyError naming it."""
    from fcn_viewer.weights.loader import FileSource, RegistrySource

    if args.weights is not None:
        return FileSource(Path(args.weights), args.arch)
    name = args.model or default
    return RegistrySource(entry(name), args.download) if name is not None else None


def load_from_args(args: argparse.Namespace) -> LoadedModel:
    from fcn_viewer.weights.loader import load_model

    source = source_from_args(args)
    assert source is not None
    with byte_counter() as counter:
        return load_model(source, progress=counter)


class ByteCounter:
    """A one-line byte counter on stderr, rewritten in place as a download goes on."""

    def __init__(self) -> None:
        self.open = False  # whether the counter's line waits for its end

    def __call__(self, progress: Progress) -> None:
        done = progress.done / 1e6
        if progress.total:
            text = f"\r{done:8.1f} / {progress.total / 1e6:.1f} MB ({100 * progress.done / progress.total:5.1f} %)"
        else:
            text = f"\r{done:8.1f} MB"
        self.open = not (progress.total and progress.done >= progress.total)
        print(text, end="" if self.open else "\n", file=sys.stderr, flush=True)

    def end(self) -> None:
        """Ends the counter's line, if it is still open."""
        if self.open:
            print(file=sys.stderr, flush=True)
            self.open = False


@contextmanager
def byte_counter() -> Iterator[ByteCounter]:
    """A :class:`ByteCounter` whose line is ended however the download ends, so that what is printed next (an
    error) stands on a line of its own."""
    counter = ByteCounter()
    try:
        yield counter
    finally:
        counter.end()
