"""Entry points: the `fcn-viewer` command with its subcommands, and the GUI launcher."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fcn_viewer import __version__
from fcn_viewer.errors import FCNViewerError


def build_parser() -> argparse.ArgumentParser:
    from fcn_viewer.cli import evaluate, figure, models, segment, train
    from fcn_viewer.cli.common import add_model_arguments

    parser = argparse.ArgumentParser(prog="fcn-viewer", description="Fully Convolutional Networks, stage by stage.")
    parser.add_argument("--version", action="version", version=f"fcn-viewer {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    segment.add_parser(subparsers)
    evaluate.add_parser(subparsers)
    models.add_parsers(subparsers)
    train.add_parser(subparsers)
    figure.add_parser(subparsers)
    gui = subparsers.add_parser("gui", help="open the viewer")
    gui.add_argument("image", nargs="?", help="an image to open (default: the first sample photo)")
    add_model_arguments(gui)
    gui.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="default: the last one used")
    gui.add_argument("--screenshot", metavar="PNG", help="save the window once IMAGE is shown, then exit")
    gui.add_argument("--size", default="1280x800", metavar="WxH", help="window size for --screenshot (1280x800)")
    gui.add_argument("--teach-step", type=int, metavar="N", help="with --screenshot: show step N of the fusion step-through")
    gui.add_argument("--tab", choices=("stages", "steps", "compare", "truth"),
                     help="with --screenshot: the tab to show (default stages)")
    gui.set_defaults(run=run_gui)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return int(args.run(args))
    except FCNViewerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def run_gui(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fcn_viewer.gui.app import parse_size, run_viewer, save_screenshot
    from fcn_viewer.gui.worker import ModelSource
    from fcn_viewer.resources import sample_images
    from fcn_viewer.weights.registry import entry

    source = None
    if args.weights is not None:
        source = ModelSource(path=args.weights, arch=args.arch)
    elif args.model is not None:
        try:
            source = ModelSource(entry=entry(args.model), allow_download=args.download)
        except KeyError as error:
            print(f"error: {error.args[0]}", file=sys.stderr)
            return 2
    image = Path(args.image) if args.image else None
    if args.screenshot is None:
        return run_viewer(image, source, args.device)
    image = image or next(iter(sample_images()), None)
    if image is None:
        print("error: --screenshot needs an IMAGE to show (no sample photo is installed)", file=sys.stderr)
        return 2
    if source is not None and source.entry is not None and not source.entry.available and not args.download:
        print(f"error: model {args.model} is not here; add --download to fetch it", file=sys.stderr)
        return 1
    try:
        size = parse_size(args.size)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return save_screenshot(image, Path(args.screenshot), source, args.device, size, args.teach_step, args.tab)


def gui_main() -> int:
    return main(["gui", *sys.argv[1:]])
