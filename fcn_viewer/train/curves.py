"""The learning-curves PNG: training loss and the checked mean IoU per stage (val or held-out train images), per run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

STAGE_COLOURS = {"32s": "#d95f02", "16s": "#7570b3", "8s": "#1b9e77"}


def plot_curves(path: Path, runs: list[list[dict[str, Any]]]) -> None:
    """One row per run (e.g. fcn32s, fcn16s, fcn8s): loss on the left, mIoU per stage on the right."""
    runs = [run for run in runs if run]
    if not runs:
        return
    figure, axes = plt.subplots(len(runs), 2, figsize=(10, 3 * len(runs)), squeeze=False)
    for row, history in zip(axes, runs):
        variant = history[0]["variant"]
        epochs = [h["epoch"] for h in history]
        row[0].plot(epochs, [h["train_loss"] for h in history], color="#333333")
        row[0].set(title=f"{variant}: training loss", xlabel="epoch")
        split = "holdout" if any(key.startswith("holdout_miou_") for h in history for key in h) else "val"
        for stage, colour in STAGE_COLOURS.items():
            key = f"{split}_miou_{stage}"
            points = [(h["epoch"], 100 * h[key]) for h in history if key in h]
            if points:
                row[1].plot(*zip(*points), marker="o", color=colour, label=f"{stage} stage")
        row[1].set(title=f"{variant}: {split} mean IoU (%)", xlabel="epoch")
        if row[1].lines:
            row[1].legend(loc="lower right")
        for axis in row:
            axis.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
