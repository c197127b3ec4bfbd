"""Entry points: the `fcn-viewer` command with its subcommands, and the GUI launcher."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fcn_viewer import __version__
from fcn_viewer.cli.boundary import EXIT_USAGE, run_guarded
from fcn_viewer.device_choice import DEVICE_CHOICES
from fcn_viewer.options import LESSONS, SCREENSHOT_TABS

SCREENSHOT_SIZE = "1280x800"


def build_parser() -> argparse.ArgumentParser:
    from fcn_viewer.cli import evaluate, figure, models, segment, train
    from fcn_viewer.cli.common import add_model_arguments

    parser = argparse.ArgumentParser(prog="fcn-viewer", description="Fully Convolutional Networks, stage by stage.")
    parser.add_argument("--version", action="version", version=f"fcn-viewer {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error (also $FCN_VIEWER_DEBUG=1)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND",
                                       help="what to do; `fcn-viewer COMMAND --help` explains one")
    segment.add_parser(subparsers)
    evaluate.add_parser(subparsers)
    models.add_parsers(subparsers)
    train.add_parser(subparsers)
    figure.add_parser(subparsers)
    gui = subparsers.add_parser("gui", help="open the viewer")
    gui.add_argument("image", nargs="?", help="an image to open (default: the first sample photo)")
    add_model_arguments(gui)
    gui.add_argument("--device", choices=DEVICE_CHOICES, help="default: the last one used")
    gui.add_argument("--screenshot", metavar="PNG", help="save the window once IMAGE is shown, then exit")
    gui.add_argument("--size", metavar="WxH", help=f"window size for --screenshot ({SCREENSHOT_SIZE})")
    gui.add_argument("--teach-step", type=step_number, metavar="N",
                     help="with --screenshot: show step N of the fusion step-through; steps start at 1 "
                          "(conv7 scores) and end at the mask (12 for an FCN-8s)")
    gui.add_argument("--tab", choices=(*SCREENSHOT_TABS, "present"), metavar="TAB",
                     help=f"with --screenshot: the tab to show, one of {', '.join(SCREENSHOT_TABS)} (default stages); "
                          "or present: the presenter's slide of --teach-step (default 1) at --size")
    gui.add_argument("--lesson", choices=LESSONS,
                     help="with --screenshot --tab lessons: the lesson to show (default classifier)")
    gui.set_defaults(run=run_gui)
    for command in subparsers.choices.values():  # --debug after the command name too
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def step_number(text: str) -> int:
    """--teach-step's value: a whole number from 1; the upper end depends on the net and is checked once it runs."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a step number; steps start at 1") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{number} is not a step: steps start at 1 (the conv7 scores)")
    return number


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return EXIT_USAGE
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for the ranks --nproc starts
    return run_guarded(lambda: args.run(args), debug=args.debug)


def run_gui(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fcn_viewer.cli.common import check_model_arguments, does_nothing, source_from_args
    from fcn_viewer.gui.app import parse_size, run_viewer, save_screenshot
    from fcn_viewer.resources import sample_images
    from fcn_viewer.weights.loader import RegistrySource

    check_model_arguments(args)
    if args.screenshot is None:
        for option in ("size", "teach_step", "tab", "lesson"):
            if getattr(args, option) is not None:
                raise does_nothing(f"--{option.replace('_', '-')}", "without --screenshot")
    if args.lesson is not None and args.tab != "lessons":
        raise does_nothing("--lesson", "without --tab lessons")
    try:
        source = source_from_args(args, default=None)
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
    if isinstance(source, RegistrySource) and not source.entry.available and not args.download:
        print(f"error: model {args.model} is not here; add --download to fetch it", file=sys.stderr)
        return 1
    try:
        size = parse_size(args.size or SCREENSHOT_SIZE)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return save_screenshot(image, Path(args.screenshot), source, args.device, size, args.teach_step, args.tab,
                           args.lesson)


def gui_main() -> int:
    return main(["gui", *sys.argv[1:]])
