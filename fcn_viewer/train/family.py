"""The family recipes (the paper's staged 32s → 16s → 8s, or 8s at once then 32s and 16s from it); export to the bundle."""

from __future__ import annotations

import datetime
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from fcn_viewer.classes import CAMVID_CLASSES, CAMVID_PALETTE, VOC_CLASSES, VOC_PALETTE
from fcn_viewer.domain import DOMAINS
from fcn_viewer.model.config import Variant
from fcn_viewer.train.checkpoint import load_checkpoint
from fcn_viewer.train.config import TrainConfig
from fcn_viewer.train.curves import plot_curves
from fcn_viewer.train.trainer import RunResult, train
from fcn_viewer.weights.meta import ModelMeta
from fcn_viewer.weights.native import save_native

STAGED: tuple[Variant, ...] = ("fcn32s", "fcn16s", "fcn8s")
Recipe = Literal["staged", "at-once"]
RECIPES: tuple[Recipe, ...] = ("staged", "at-once")

# Each recipe as (net, the net it starts from): the paper's staged 32s → 16s → 8s; or FCN-8s trained at once
# with every stage's loss (deep supervision), then FCN-32s and FCN-16s fine-tuned from it, each starting
# exactly as that net's own 32s or 16s stage (the same layers, the same fixed bilinear upsampling).
RECIPE_ORDER: dict[Recipe, tuple[tuple[Variant, Variant | None], ...]] = {
    "staged": (("fcn32s", None), ("fcn16s", "fcn32s"), ("fcn8s", "fcn16s")),
    "at-once": (("fcn8s", None), ("fcn32s", "fcn8s"), ("fcn16s", "fcn8s")),
}


def train_family(
    base: TrainConfig, epochs: dict[str, int], command: str, finetune_lr_scale: float = 0.25,
    recipe: Recipe = "staged", budgets: dict[str, float] | None = None,
) -> list[RunResult]:
    """Trains the three nets in the recipe's order, each initialised from its source's last checkpoint (the
    first from ``base.init``, if any); resumable at any point. ``budgets``: minutes per net (see --time-budget).

    As in the paper, a net that starts from another fine-tunes at a lower learning rate (``finetune_lr_scale`` ×
    lr): a full-size rate would first undo much of what the other net learned.
    """
    results: list[RunResult] = []
    for variant, source in RECIPE_ORDER[recipe]:
        init = base.init if source is None else base.out / source / "last.pt"
        lr = base.lr if source is None else base.lr * finetune_lr_scale
        budget = budgets[variant] if budgets else base.time_budget_min
        config = replace(base, variant=variant, epochs=epochs[variant], init=init, lr=lr, time_budget_min=budget)
        result = train(config, command)
        results.append(result)
        plot_curves(base.out / "curves.png", [r.history for r in results])
        if not result.finished:
            break
    return results


def export_run(run_dir: Path, destination: Path, name: str, title: str, dataset: str) -> Path:
    """Writes a run's final weights as fp16 safetensors with metadata (classes, palette, provenance)."""
    state = load_checkpoint(run_dir / "last.pt")
    train_config = TrainConfig(**_config_args(state["config"]))
    config = train_config.fcn_config()
    classes, palette = (CAMVID_CLASSES, CAMVID_PALETTE) if dataset == "camvid" else (VOC_CLASSES, VOC_PALETTE)
    meta = ModelMeta(
        domain=DOMAINS["camvid" if dataset == "camvid" else "voc"],
        name=name,
        title=title,
        config=config,
        classes=classes[: config.num_classes],
        palette=palette[: config.num_classes],
        preprocessing=train_config.preprocessing(),
        provenance={
            "command": state.get("command", ""),
            "commit": git_commit(),
            "trained_epochs": int(state["epoch"]),
            "exported": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "dataset": dataset,
        },
    )
    destination.parent.mkdir(parents=True, exist_ok=True)
    return save_native(destination, state["model"], meta, half=True)


def attach_metrics(path: Path, data: Path, split: str, device: str = "auto") -> dict[str, Any]:
    """Evaluates an exported model file exactly as `fcn-viewer evaluate` does and stores the numbers in it."""
    from fcn_viewer.data import open_dataset
    from fcn_viewer.evaluation import evaluate_model
    from fcn_viewer.weights.loader import FileSource, load_model
    from fcn_viewer.weights.native import load_native

    dataset = open_dataset(data, split)
    scores = evaluate_model(load_model(FileSource(path)), dataset, device=device)
    clean = {stage: {k: _finite(v) for k, v in summary.items()} for stage, summary in scores.items()}
    state, meta = load_native(path)
    metrics = {**meta.metrics, split: clean, "images": {split: len(dataset)}}
    save_native(path, state, replace(meta, metrics=metrics), half=True)
    return clean


def attach_familiarity(path: Path, data: Path, split: str, device: str = "auto") -> dict[str, Any]:
    """Measures the model's own familiarity threshold on ``split`` (fcn_viewer/domain.py) and stores it, with
    its domain, in the file's metadata; the weights are written back unchanged."""
    from fcn_viewer.data import open_dataset
    from fcn_viewer.domain import domain_of, measure_familiarity
    from fcn_viewer.inference import Segmenter
    from fcn_viewer.weights.loader import load_weights_file
    from fcn_viewer.weights.native import load_native

    measured = measure_familiarity(Segmenter(load_weights_file(path), device), open_dataset(data, split), split)
    state, meta = load_native(path)
    save_native(path, state, replace(meta, domain=domain_of(meta), familiarity=measured), half=True)
    return measured


def _finite(value: Any) -> Any:
    """NaN (a class absent from the split) as None, so the stored JSON stays strict."""
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return None if isinstance(value, float) and value != value else value


def _config_args(stored: dict[str, Any]) -> dict[str, Any]:
    args = dict(stored)
    args.setdefault("padding", "same")  # checkpoints from before the paper geometry became the default
    for key in ("data", "out", "init"):
        if args.get(key) is not None:
            args[key] = Path(args[key])
    for key in ("widths", "depths", "aux_weights"):
        args[key] = tuple(args[key])
    return args


def git_commit() -> str:
    """The commit the code was at (with '+dirty' for uncommitted changes), or 'unknown'."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
