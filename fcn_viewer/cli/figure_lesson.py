"""`fcn-viewer figure --lesson classifier|commute|upsampling`: one of the paper's "why" lessons as a slide, and its
numbers as JSON (--json), headless."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fcn_viewer.atomic import check_output_file, write_atomically
from fcn_viewer.cli.boundary import printable
from fcn_viewer.cli.common import does_nothing
from fcn_viewer.errors import UsageError
from fcn_viewer.options import DEFAULT_TIME_CAP, DEFAULT_TOLERANCE, LESSONS

if TYPE_CHECKING:  # torch and matplotlib load when the command runs, not when its arguments are parsed
    import numpy as np

    from fcn_viewer.weights.loader import LoadedModel


def add_lesson_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lesson", choices=LESSONS,
                        help="draw one of the paper's lessons instead: classifier → FCN, why scores are summed "
                             "(commute), learned vs bilinear upsampling")
    parser.add_argument("--json", type=Path, metavar="FILE.json", help="with --lesson: also write its numbers here")
    parser.add_argument("--cell", type=_cell, metavar="ROW,COL",
                        help="with --lesson classifier: the conv7 cell to compare (default: an interior one near the "
                             "centre)")
    parser.add_argument("--time-cap", type=_seconds, metavar="SECONDS",
                        help=f"with --lesson classifier: run crops for this long, then extrapolate (default "
                             f"{DEFAULT_TIME_CAP:g})")


def _cell(text: str) -> tuple[int, int]:
    parts = text.split(",")
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        raise argparse.ArgumentTypeError(f"{text}: give a conv7 cell as ROW,COL (two whole numbers)")
    return int(parts[0]), int(parts[1])


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text}: not a number") from None
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{text}: must be a number of seconds from 0 to 3600")
    return value


def check_lesson_arguments(args: argparse.Namespace, label: Path | None) -> Path | None:
    """Refuses lesson options that would do nothing and a --json that cannot be written, before any work; returns
    the label to score (only the upsampling lesson scores one)."""
    if args.lesson is None:
        for option, value in (("--json", args.json), ("--cell", args.cell), ("--time-cap", args.time_cap)):
            if value is not None:
                raise does_nothing(option, "without --lesson")
        return label
    if args.contributions:
        raise UsageError("--lesson and --contributions draw different figures: give one of them")
    if args.lesson != "classifier":
        for option, value in (("--cell", args.cell), ("--time-cap", args.time_cap)):
            if value is not None:
                raise does_nothing(option, f"with --lesson {args.lesson}")
    if args.json is not None:
        check_output_file(args.json, "--json", (".json",))
        if (args.json.exists() or args.json.is_symlink()) and not args.overwrite:
            raise UsageError(f"--json {args.json}: already exists; pass --overwrite to replace it")
        if args.json.resolve() == args.out.resolve():
            raise UsageError(f"--json {args.json}: is the --out file too; give two names")
    if args.lesson == "upsampling":
        return label
    for option, value in (("--label", args.label), ("--tolerance", args.tolerance)):
        if value is not None:
            raise does_nothing(option, f"with --lesson {args.lesson}")
    return None


def run_lesson(args: argparse.Namespace, image: np.ndarray, loaded: LoadedModel, label: Path | None) -> int:
    """Computes the lesson on the loaded net's real tensors, writes its slide to --out and its numbers to --json."""
    from fcn_viewer.inference import DEFAULT_MAX_PIXELS, downscale, resolve_device
    from fcn_viewer.teaching.lessons.slides import save_figure

    meta = loaded.meta
    if image.shape[0] * image.shape[1] > DEFAULT_MAX_PIXELS:
        image = downscale(image, DEFAULT_MAX_PIXELS)
        print(f"note: downscaled to {image.shape[1]}×{image.shape[0]} to stay within "
              f"{DEFAULT_MAX_PIXELS / 1e6:g} MP", file=sys.stderr)
    device = resolve_device(args.device)
    title = f"{printable(args.image.name)} — {meta.title}"
    report: dict[str, Any] = {"lesson": args.lesson, "image": str(args.image), "model": meta.name,
                              "image_size": [int(image.shape[0]), int(image.shape[1])], "device": device.type}
    if args.lesson == "upsampling":
        figure, numbers, summary = _upsampling(args, image, loaded, label, device, title)
    elif args.lesson == "commute":
        figure, numbers, summary = _commute(image, loaded, device, title)
    else:
        figure, numbers, summary = _classifier(args, image, loaded, device, title)
    save_figure(figure, args.out)
    print(f"{summary}; figure saved to {args.out}", file=sys.stderr)
    if args.json is not None:
        from fcn_viewer.cli.evaluate import json_bytes

        write_atomically(args.json, json_bytes(_finite({**report, **numbers})))
        print(f"numbers saved to {args.json}", file=sys.stderr)
    return 0


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinity (a metric of a label with no valid pixel) as null, for strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def _net_and_input(image: np.ndarray, loaded: LoadedModel, device: Any) -> tuple[Any, Any]:
    """The loaded net (a copy on another device) in eval mode, fp32, and the image as its prepared input."""
    import copy

    import numpy as np
    import torch

    model = loaded.model.eval() if device.type == "cpu" else copy.deepcopy(loaded.model).to(device).eval()
    pixels = torch.from_numpy(np.ascontiguousarray(image[None])).to(device)
    return model, loaded.meta.preprocessing.from_uint8(pixels)


def _classifier(args: argparse.Namespace, image: np.ndarray, loaded: LoadedModel, device: Any, title: str
                ) -> tuple[Any, dict[str, Any], str]:
    from fcn_viewer.teaching.lessons.classifier import compare_cell, conv7_size, default_cell, sliding_comparison
    from fcn_viewer.teaching.lessons.slides import classifier_slide

    config = loaded.meta.config
    size = (int(image.shape[0]), int(image.shape[1]))
    rows, columns = conv7_size(config, *size)
    cell = args.cell if args.cell is not None else default_cell(config, size)
    if not (cell[0] < rows and cell[1] < columns):
        raise UsageError(f"--cell {cell[0]},{cell[1]}: outside this image's {rows}×{columns} conv7 map "
                         f"(rows 0–{rows - 1}, columns 0–{columns - 1})")
    model, x = _net_and_input(image, loaded, device)
    cap = DEFAULT_TIME_CAP if args.time_cap is None else args.time_cap
    sliding = sliding_comparison(model, x, cap)
    comparison = compare_cell(model, x, cell, sliding.fcn_scores)
    figure = classifier_slide(image, comparison, sliding, loaded.meta.classes, loaded.meta.preprocessing, title)
    extrapolated = f", extrapolated from {sliding.crops_run}" if sliding.extrapolated else ""
    summary = (f"{sliding.crops} crops ({rows}×{columns}); one FCN pass {sliding.seconds_fcn:.3g} s against "
               f"{sliding.seconds_crops:.3g} s for the crops{extrapolated}; {sliding.flops_fcn / 1e9:.3g} against "
               f"{sliding.flops_crops / 1e9:.3g} GFLOPs; classes agree at {sliding.agreement:.0%}")
    return figure, {**sliding.numbers(), "cell": comparison.numbers()}, summary


def _commute(image: np.ndarray, loaded: LoadedModel, device: Any, title: str) -> tuple[Any, dict[str, Any], str]:
    from fcn_viewer.teaching.lessons.commute import commute_lesson
    from fcn_viewer.teaching.lessons.slides import commute_slide

    if loaded.meta.config.fusion == "fcn32s":
        raise UsageError(f"{loaded.meta.name} is an FCN-32s: it fuses no pool4 skip; use an FCN-16s or FCN-8s")
    model, x = _net_and_input(image, loaded, device)
    lesson = commute_lesson(model, x)
    summary = (f"max |difference| {lesson.max_abs_difference:.2g} (score range {lesson.score_range:.3g}); "
               f"{lesson.bytes_concatenated:,} bytes concatenated against {lesson.bytes_summed:,} summed")
    return commute_slide(lesson, loaded.meta.palette, title), lesson.numbers(), summary


def _upsampling(args: argparse.Namespace, image: np.ndarray, loaded: LoadedModel, label: Path | None, device: Any,
                title: str) -> tuple[Any, dict[str, Any], str]:
    from fcn_viewer.inference import Segmenter
    from fcn_viewer.teaching.ground_truth import ignore_index_for, load_truth
    from fcn_viewer.teaching.lessons.slides import upsampling_slide
    from fcn_viewer.teaching.lessons.upsampling import upsampling_lesson

    meta = loaded.meta
    segmentation = Segmenter(loaded, device, precision="fp32").segment(image)
    truth, void = None, 255
    if label is not None:
        print(f"ground truth: {label}", file=sys.stderr)
        truth = load_truth(label, segmentation.image_size)
        void = ignore_index_for(label, meta.classes)
    tolerance = DEFAULT_TOLERANCE if args.tolerance is None else args.tolerance
    lesson = upsampling_lesson(segmentation.outputs, truth, meta.config.num_classes, void, tolerance)
    summary = (f"{lesson.kernels_in_words()}; bilinear kernels change "
               f"{lesson.changed_pixels:,} px ({lesson.changed_fraction:.1%})")
    return upsampling_slide(lesson, meta.palette, title), lesson.numbers(), summary
