"""Entry points: the `fcn-viewer` command with its subcommands, and the GUI launcher."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fcn_viewer import __version__
from fcn_viewer.errors import FCNViewerError


def build_parser() -> argparse.ArgumentParser:
    from fcn_viewer.cli import evaluate, models, segment, train

    parser = argparse.ArgumentParser(prog="fcn-viewer", description="Fully Convolutional Networks, stage by stage.")
    parser.add_argument("--version", action="version", version=f"fcn-viewer {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    segment.add_parser(subparsers)
    evaluate.add_parser(subparsers)
    models.add_parsers(subparsers)
    train.add_parser(subparsers)
    gui = subparsers.add_parser("gui", help="open the viewer")
    gui.add_argument("image", nargs="?", help="an image to open")
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
    print("The viewer window is not built yet (it is the next milestone); use `fcn-viewer segment`.", file=sys.stderr)
    return 2


def gui_main() -> int:
    return main(["gui", *sys.argv[1:]])
