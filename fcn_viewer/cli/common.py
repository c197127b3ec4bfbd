"""Arguments and helpers shared by the subcommands that need a model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fcn_viewer.model.config import VARIANTS
from fcn_viewer.weights.download import Progress
from fcn_viewer.weights.loader import LoadedModel, load_entry, load_weights_file
from fcn_viewer.weights.registry import DEFAULT_MODEL


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--model", help=f"registry name (default {DEFAULT_MODEL}); see `fcn-viewer models`")
    group.add_argument("--weights", type=Path, help="a weights file: .safetensors, .caffemodel or .pth")
    parser.add_argument(
        "--arch", choices=VARIANTS, help="architecture of a .caffemodel/.pth (inferred from its layers if omitted)"
    )
    parser.add_argument("--download", action="store_true", help="download a registry model if it is not cached")


def load_from_args(args: argparse.Namespace) -> LoadedModel:
    if args.weights is not None:
        return load_weights_file(args.weights, arch=args.arch)
    return load_entry(args.model or DEFAULT_MODEL, allow_download=args.download, progress=print_progress)


def print_progress(progress: Progress) -> None:
    """A one-line byte counter on stderr."""
    done = progress.done / 1e6
    if progress.total:
        text = f"\r{done:8.1f} / {progress.total / 1e6:.1f} MB ({100 * progress.done / progress.total:5.1f} %)"
    else:
        text = f"\r{done:8.1f} MB"
    end = "\n" if progress.total and progress.done >= progress.total else ""
    print(text, end=end, file=sys.stderr, flush=True)
