"""`fcn-viewer figure`: one image's stages, masks and (with a label) their scores as a slide figure, headless."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from fcn_viewer.atomic import check_free_space, check_output_file, prepare_output_folder
from fcn_viewer.cli.boundary import printable
from fcn_viewer.cli.common import (
    add_model_arguments,
    check_model_arguments,
    clear_stale_temporaries,
    does_nothing,
    load_from_args,
)
from fcn_viewer.cli.figure_lesson import add_lesson_arguments, check_lesson_arguments, run_lesson
from fcn_viewer.device_choice import DEVICE_CHOICES
from fcn_viewer.errors import UsageError
from fcn_viewer.imageio import load_image
from fcn_viewer.options import DEFAULT_TOLERANCE

if TYPE_CHECKING:  # torch and matplotlib load when the command runs, not when its arguments are parsed
    from fcn_viewer.inference import Segmentation
    from fcn_viewer.teaching.image_analysis import GroundTruth
    from fcn_viewer.weights.meta import ModelMeta

FIGURE_BYTES = 2_000_000  # about the largest slide written (a 1920×1080 PNG of photos and masks); SVG and PDF less
STEPS_AT_MOST = 12  # an FCN-8s's Step-Through; shorter nets write fewer slides
GIF_BYTES = 12 * 1_500_000  # the GIF of the slides, a 1920×1080 frame each


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("figure", help="write a slide figure of one image's stages (PNG, SVG or PDF)")
    parser.add_argument("image", type=Path, metavar="IMAGE", help="the photo to segment and show")
    parser.add_argument("--out", type=Path, required=True,
                        help="the figure file: .png, .svg or .pdf (with --steps: the folder of the slides)")
    parser.add_argument("--overwrite", action="store_true", help="replace the figure file(s) if they already exist")
    add_model_arguments(parser)
    parser.add_argument("--label", type=Path, metavar="LABEL.png",
                        help="ground-truth label (default: the CamVid or VOC label beside IMAGE, if there is one)")
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    parser.add_argument("--tolerance", type=_tolerance, metavar="PX",
                        help=f"with a label: boundary F1 distance tolerance in pixels (default {DEFAULT_TOLERANCE:g})")
    parser.add_argument("--contributions", action="store_true",
                        help="show what each skip adds: the exact additive terms, flips and the mask without each skip")
    parser.add_argument("--steps", action="store_true",
                        help="write every Step-Through step as a numbered 1920×1080 PNG (step-01.png, ...) and an "
                             "animated GIF of them (steps.gif) into the folder --out")
    parser.add_argument("--class", dest="class_name", metavar="NAME",
                        help="with --contributions: the class whose terms to show (default: the predicted one per "
                             "pixel); with --steps: the class whose score the slides show (default: the class "
                             "predicted on the most pixels)")
    add_lesson_arguments(parser)
    parser.set_defaults(run=run)


def _tolerance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text}: not a number") from None
    if not 0 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"{text}: must be a number of pixels from 0 to 1000")
    return value


def run(args: argparse.Namespace) -> int:
    """Checks every option and --out before any work (see :func:`_check`), then draws the figure."""
    from fcn_viewer.inference import Segmenter
    from fcn_viewer.teaching.figure import save_slide  # matplotlib and torch load only for this command
    from fcn_viewer.teaching.ground_truth import ignore_index_for
    from fcn_viewer.teaching.image_analysis import GroundTruth

    label = _check(args)
    image = load_image(args.image)
    loaded = load_from_args(args)
    if args.lesson is not None:
        return run_lesson(args, image, loaded, label)
    segmentation = Segmenter(loaded, args.device).segment(image)
    meta = loaded.meta
    ground_truth = None
    if label is not None:
        print(f"ground truth: {label}", file=sys.stderr)
        void = ignore_index_for(label, meta.classes)
        tolerance = DEFAULT_TOLERANCE if args.tolerance is None else args.tolerance
        ground_truth = GroundTruth(label, meta.config.num_classes, void, tolerance)
    title = f"{printable(args.image.name)} — {meta.title}"
    if args.contributions:
        return _contributions(args, segmentation, meta, title, ground_truth)
    if args.steps:
        return _steps(args, segmentation, meta, title)
    save_slide(args.out, args.image, segmentation, meta, meta.palette, title, ground_truth)
    print(f"figure saved to {args.out}", file=sys.stderr)
    return 0


def _check(args: argparse.Namespace) -> Path | None:
    """Refuses options that would do nothing, an --out that cannot be written, exists (without --overwrite) or
    has too little room, before any work; removes what a killed run left beside it. Returns the label to score."""
    from fcn_viewer.teaching.figure import FIGURE_FORMATS
    from fcn_viewer.teaching.ground_truth import find_label

    check_model_arguments(args)
    if args.class_name is not None and not (args.contributions or args.steps):
        raise does_nothing("--class", "without --contributions or --steps")
    if args.steps and (args.contributions or args.lesson is not None):
        raise UsageError("--steps, --contributions and --lesson draw different figures: give one of them")
    if args.steps:
        check_lesson_arguments(args, None)
        if args.label is not None or args.tolerance is not None:
            raise does_nothing("--label" if args.label is not None else "--tolerance", "with --steps (no scores)")
        _check_steps_folder(args)
        return None
    label: Path | None = check_lesson_arguments(args, args.label or find_label(args.image))
    if args.tolerance is not None and label is None:
        raise does_nothing("--tolerance", "without a label: none was given (--label) or found beside IMAGE")
    if args.out.suffix.lower() not in FIGURE_FORMATS:
        raise UsageError(f"{args.out}: use a .png, .svg or .pdf file name")
    check_output_file(args.out, "--out")
    if (args.out.exists() or args.out.is_symlink()) and not args.overwrite:
        raise UsageError(f"--out {args.out}: already exists; pass --overwrite to replace it")
    folder = args.out.parent
    clear_stale_temporaries(folder)
    check_free_space(folder, FIGURE_BYTES, f"--out {args.out}", "the figure needs")
    return label


_NO_SUCH_CLASS = -1


def _class_index(args: argparse.Namespace, meta: ModelMeta) -> int | None:
    """The index of ``--class`` in the model's classes (None without it), or _NO_SUCH_CLASS after saying why."""
    if args.class_name is None:
        return None
    if args.class_name not in meta.classes:
        print(f"error: {meta.name} has no class {args.class_name!r}; its classes: {', '.join(meta.classes)}",
              file=sys.stderr)
        return _NO_SUCH_CLASS
    return meta.classes.index(args.class_name)


def _contributions(args: argparse.Namespace, segmentation: Segmentation, meta: ModelMeta, title: str,
                   ground_truth: GroundTruth | None) -> int:
    from fcn_viewer.teaching.contributions import split_logits
    from fcn_viewer.teaching.contributions_figure import save_contributions_slide

    class_index = _class_index(args, meta)
    if class_index == _NO_SUCH_CLASS:
        return 2
    contributions = split_logits(segmentation.outputs)
    save_contributions_slide(args.out, segmentation.image, contributions, meta, meta.palette, title, class_index,
                             ground_truth)
    note = contributions.sum_note()
    print(f"contributions figure saved to {args.out}" + (f" ({note})" if note else ""), file=sys.stderr)
    return 0


def _check_steps_folder(args: argparse.Namespace) -> None:
    """--out with --steps: a folder (created if needed) that is writable, holds no slides of an earlier run unless
    --overwrite, and has room for them."""
    from fcn_viewer.teaching.step_slides import step_file_names

    folder: Path = args.out
    prepare_output_folder(folder, "--out")
    if not args.overwrite:
        existing = [name for name in step_file_names(STEPS_AT_MOST) if (folder / name).exists()]
        if existing:
            raise UsageError(f"--out {folder}: already holds {existing[0]}; pass --overwrite to replace the slides")
    clear_stale_temporaries(folder)
    check_free_space(folder, STEPS_AT_MOST * FIGURE_BYTES + GIF_BYTES, f"--out {folder}", "the slides need")


def _steps(args: argparse.Namespace, segmentation: Segmentation, meta: ModelMeta, title: str) -> int:
    from fcn_viewer.teaching.step_slides import save_step_slides

    class_index = _class_index(args, meta)
    if class_index == _NO_SUCH_CLASS:
        return 2
    slides = save_step_slides(args.out, segmentation.outputs, segmentation.image, meta.palette, meta.classes, title,
                              class_index)
    scale = slides.scale
    print(f"{len(slides.pngs)} step slides ({slides.pngs[0].name} … {slides.pngs[-1].name}) and {slides.gif.name} "
          f"saved to {args.out}; score of {meta.classes[scale.class_index]} on one scale, "
          f"{scale.low:.2f} … {scale.high:.2f}", file=sys.stderr)
    return 0
